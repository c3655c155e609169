"""datadings' ``sets.tools``: open and decode the metadata files that ship in the ``sets`` package.

Data-set writers keep their metadata (class names, synsets, colour maps, counts) next to their
modules, often compressed (``ADE20k_counts.json.xz``, ``Places365_classes.json.gz``).
:func:`open_comp` opens such a file by its name in this package (an absolute path is used as it
is, as ``os.path.join`` does), picking the codec from the name's ending; :func:`load_json` decodes
one. Behaviour follows datadings 3.4.7 with two differences, both where datadings fails:

- writing ``.gz`` with ``level=None`` uses gzip's default level (datadings passes ``None`` on to
  zlib, which raises ``TypeError``);
- ``.zip`` files (one member) are read, as datadings documents for :func:`load_json` (its code
  reads them as plain files and fails to decode them).

A missing file raises :class:`~shardstream.errors.MetadataNotFoundError` (a
``FileNotFoundError``); :func:`load_json` raises :class:`~shardstream.errors.CorruptMetadataError`
(a ``ValueError``) for content it cannot decode.
"""

from __future__ import annotations

import gzip
import io
import json
import lzma
import os
import zipfile
from typing import IO, Any

from ..errors import ConfigError, CorruptMetadataError, MetadataNotFoundError

__all__ = ["ROOT_DIR", "load_json", "open_comp"]

#: the folder of the ``sets`` package, where relative metadata file names are looked up
ROOT_DIR = os.path.abspath(os.path.dirname(__file__))


def open_comp(
    name: str | os.PathLike,
    mode: str = "rb",
    level: int | None = None,
    encoding: str | None = None,
) -> IO[Any] | gzip.GzipFile:
    """Open a file of the ``sets`` package, compressed or not, as datadings' ``open_comp`` does.

    The codec comes from the name: ``.gz`` gzip, ``.xz`` xz (lzma), ``.zip`` the one member of a
    zip archive (reading only), anything else a plain file.

    Args:
        name: the file's name relative to :data:`ROOT_DIR` (an absolute path is used as it is).
        mode: an ``open`` mode (``"rb"``, ``"rt"``, ``"wb"``, ``"wt"``, ...).
        level: compression level (gzip) or preset (xz) for writing; ``None``: the codec's
            default. Ignored for plain files.
        encoding: the text encoding in text mode (must be ``None`` in binary mode).

    Returns:
        An open file object (binary or text, as ``mode`` says); the caller closes it.

    Raises:
        MetadataNotFoundError: the file does not exist and ``mode`` reads.
        ConfigError: a ``.zip`` file is opened for writing, or a zip archive does not hold
            exactly one file.
        CorruptMetadataError: a ``.zip`` file is not a zip archive.
        ValueError: ``mode`` and ``encoding`` do not fit together (Python's own error, as in
            datadings). A broken gzip or xz stream raises its codec's error when read.
    """
    path = os.path.join(ROOT_DIR, name)
    try:
        if path.endswith(".gz"):
            # gzip.open rejects compresslevel=None; its default is 9
            return gzip.open(path, mode, 9 if level is None else level, encoding=encoding)
        if path.endswith(".xz"):
            return lzma.open(path, mode, preset=level, encoding=encoding)
        if path.endswith(".zip"):
            return _open_zip_member(path, mode, encoding)
        return open(path, mode, encoding=encoding)  # noqa: SIM115 (returned to the caller)
    except FileNotFoundError as error:
        if "r" not in mode:
            raise  # a missing folder when writing: Python's error names it
        raise MetadataNotFoundError(path) from error


def load_json(name: str | os.PathLike) -> Any:
    """Decode a JSON file of the ``sets`` package (plain, ``.gz``, ``.xz`` or ``.zip``), as UTF-8.

    Args:
        name: the file's name relative to :data:`ROOT_DIR` (an absolute path is used as it is).

    Returns:
        The decoded JSON (dicts, lists, strings, numbers, booleans, ``None``).

    Raises:
        MetadataNotFoundError: the file does not exist.
        CorruptMetadataError: the compressed stream is broken, the text is not UTF-8, or it is
            not JSON; the message names the file and the fault.
        ConfigError: a zip archive does not hold exactly one file.
    """
    path = os.path.join(ROOT_DIR, name)
    try:
        with open_comp(path, mode="rt", encoding="utf-8") as f:
            return json.load(f)
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile, ValueError) as error:
        if isinstance(error, (FileNotFoundError, CorruptMetadataError, ConfigError)):
            raise
        raise CorruptMetadataError(path, f"cannot decode JSON metadata: {error}") from error


def _open_zip_member(path: str, mode: str, encoding: str | None) -> IO[Any]:
    """The single member of the zip archive at ``path``, opened for reading."""
    if not mode.startswith("r") or "+" in mode:
        raise ConfigError(f"{path}: .zip files can only be read, got mode {mode!r}")
    if "t" not in mode and encoding is not None:
        raise ValueError("binary mode doesn't take an encoding argument")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise CorruptMetadataError(path, f"not a zip archive: {error}") from error
    members = [info for info in archive.infolist() if not info.is_dir()]
    if len(members) != 1:
        archive.close()
        raise ConfigError(f"{path}: a zip archive must hold exactly one file, holds {len(members)}")
    member = archive.open(members[0])
    archive.close()  # the file stays open until the member is closed (zipfile counts its users)
    if "t" in mode:
        return io.TextIOWrapper(member, encoding=encoding)
    return member
