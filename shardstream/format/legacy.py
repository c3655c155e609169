"""Converting a legacy ``X.index`` (one msgpack map of key to offset) to the new index files."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CorruptIndexError, DatasetNotFoundError, MissingIndexError
from .atomic import StagedFiles
from .index import encode_index_files, legacy_index_len, load_legacy_index
from .integrity import format_md5_file, load_md5file, md5_file, md5_hex
from .paths import INDEX_SUFFIXES, DatasetPaths

__all__ = ["convert_legacy_index"]


def convert_legacy_index(
    path: str | os.PathLike, outdir: str | os.PathLike | None = None
) -> list[Path]:
    """Write ``.offsets``, ``.keys``, ``.key_hashes`` and ``.filter`` from a legacy ``.index``.

    The md5 file is rewritten (atomically, like the index files) keeping its lines for other files
    and adding lines for the four new ones; without an md5 file one is created that also covers
    the data file. The legacy index itself is left in place.

    Args:
        path: the data file, or its ``.index`` file.
        outdir: where to write the new files (default: next to the data file).

    Returns:
        The paths written, index files first, md5 file last.

    Raises:
        DatasetNotFoundError: no data file; MissingIndexError: no legacy index;
        CorruptIndexError, TruncatedDataError, IndexMismatchError: the legacy index is bad
            (including keys that are not str, or duplicates).
    """
    source = DatasetPaths.of(path)
    if not source.data.is_file():
        raise DatasetNotFoundError(source.data)
    if not source.legacy_index.is_file():
        raise MissingIndexError(source.legacy_index, "legacy index file not found")
    data_size = source.data.stat().st_size
    count = legacy_index_len(source.legacy_index, data_size=data_size)
    keys, offsets = load_legacy_index(source.legacy_index, count, source.data, data_size)
    bad = next((key for key in keys if type(key) is not str), None)
    if bad is not None:
        raise CorruptIndexError(
            source.legacy_index, f"holds a {type(bad).__name__} key {bad!r:.60}; keys must be str"
        )
    if len(set(keys)) != len(keys):
        raise CorruptIndexError(source.legacy_index, "holds duplicate keys")
    target = DatasetPaths(Path(outdir) / source.data.name) if outdir is not None else source
    target.data.parent.mkdir(parents=True, exist_ok=True)
    index_files = encode_index_files(target, keys, offsets)
    md5_source = source.md5 if source.md5.exists() else None
    entries: list[tuple[str, str]] = []
    if md5_source is not None:
        entries = [
            (name, digest)
            for name, digest in load_md5file(md5_source).items()
            if not any(name.endswith(suffix) for suffix in INDEX_SUFFIXES)
        ]
    else:
        entries = [(source.data.name, md5_file(source.data))]
    entries += [(p.name, md5_hex(content)) for p, content in index_files]
    staged = StagedFiles()
    try:
        for p, content in index_files:
            staged.write_bytes(p, content)
        staged.write_bytes(target.md5, format_md5_file(entries).encode("utf-8"))
        staged.commit(last=target.md5)
    except BaseException:
        staged.abort()
        raise
    return [p for p, _ in index_files] + [target.md5]
