"""The ``.md5`` file: writing, parsing, and verifying data and index files against it."""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

from ..errors import ChecksumMismatchError, CorruptIndexError, MissingIndexError
from .paths import INDEX_SUFFIXES, SUFFIX_LEGACY_INDEX, DatasetPaths

__all__ = [
    "ChecksumWarning",
    "md5_hex",
    "md5_file",
    "format_md5_file",
    "load_md5file",
    "verify_data",
    "verify_index",
    "verify_files",
]

READ_SIZE = 1 << 20


class ChecksumWarning(UserWarning):
    """Issued by verify functions for every file whose md5 does not match (or is not recorded)."""


def md5_hex(data: bytes | bytearray | memoryview) -> str:
    """Hex md5 of an in-memory buffer."""
    return hashlib.md5(data).hexdigest()


def md5_file(path: str | os.PathLike, read_size: int = READ_SIZE, progress: bool = False) -> str:
    """Hex md5 of a file, read in ``read_size`` chunks, optionally with a tqdm progress bar."""
    path = Path(path)
    digest = hashlib.md5()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=path.name)
    buffer = bytearray(read_size)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
            if bar is not None:
                bar.update(n)
    if bar is not None:
        bar.close()
    return digest.hexdigest()


def format_md5_file(entries: Iterable[tuple[str, str]]) -> str:
    """md5 file text: one ``<hex>  <file name>`` line per ``(name, hex)`` entry."""
    return "".join(f"{digest}  {name}\n" for name, digest in entries)


def load_md5file(path: str | os.PathLike) -> dict[str, str]:
    """Parse an md5 file into ``{file name: hex md5}``.

    Raises:
        MissingIndexError: the md5 file does not exist.
        CorruptIndexError: a line is not ``<32 hex digits>  <name>``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MissingIndexError(path, "md5 file not found; cannot verify") from None
    except UnicodeDecodeError as e:
        raise CorruptIndexError(path, f"md5 file is not UTF-8 text ({e})") from e
    hashes = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 32 or not all(c in "0123456789abcdefABCDEF" for c in digest):
            raise CorruptIndexError(
                path, f"line {number} is not '<md5 hex>  <file name>': {line!r}"
            )
        hashes[name] = digest.lower()
    return hashes


def verify_files(
    paths: Iterable[Path], md5_path: Path, read_size: int = READ_SIZE, progress: bool = False
) -> list[ChecksumMismatchError]:
    """Check each file against the md5 file; return one error per mismatching or unrecorded file."""
    recorded = load_md5file(md5_path)
    faults = []
    for path in paths:
        expected = recorded.get(path.name)
        if expected is None:
            faults.append(ChecksumMismatchError(path, f"no md5 recorded in {md5_path.name}"))
            continue
        actual = md5_file(path, read_size, progress)
        if actual != expected:
            faults.append(
                ChecksumMismatchError(
                    path, f"md5 {actual} != {expected} recorded in {md5_path.name}"
                )
            )
    return faults


def _report(faults: list[ChecksumMismatchError]) -> bool:
    for fault in faults:
        warnings.warn(str(fault), ChecksumWarning, stacklevel=3)
    return not faults


def verify_data(
    path: str | os.PathLike, read_size: int = READ_SIZE, progress: bool = False
) -> bool:
    """Hash the data file and compare with its md5 file entry.

    Returns:
        True if it matches; False otherwise, after a :class:`ChecksumWarning` naming the file.

    Raises:
        MissingIndexError: no md5 file.
    """
    paths = DatasetPaths.of(path)
    return _report(verify_files([paths.data], paths.md5, read_size, progress))


def verify_index(
    path: str | os.PathLike, read_size: int = READ_SIZE, progress: bool = False
) -> bool:
    """Hash every index file present (new-style and legacy) and compare with the md5 file.

    Returns:
        True if all match; False otherwise, after one :class:`ChecksumWarning` per bad file.

    Raises:
        MissingIndexError: no md5 file, or no index file at all.
    """
    paths = DatasetPaths.of(path)
    present = [
        p for p in (paths.sidecar(s) for s in (*INDEX_SUFFIXES, SUFFIX_LEGACY_INDEX)) if p.exists()
    ]
    if not present:
        raise MissingIndexError(paths.data, "no index files found to verify")
    return _report(verify_files(present, paths.md5, read_size, progress))
