"""Where a dataset argument becomes a reader: the one dispatch every entry point uses.

A dataset argument is

- a :class:`~shardstream.read.Reader`: used as it is;
- a ``*.manifest``: its shards opened as one :class:`~shardstream.read.ShardedReader`;
- a glob pattern (``*``, ``?`` or ``[`` and no file of that exact name): the data files it matches
  (files with a ``.offsets`` or legacy ``.index`` next to them; a matched sidecar stands for its
  data file), sorted, opened as one :class:`~shardstream.read.ShardedReader`;
- any other path: one packed data file (or any of its sidecar files), a
  :class:`~shardstream.read.MsgpackReader`;
- a URL (``s3://``, ``gs://``, ``https://``, an fsspec chain; see
  :mod:`shardstream.read.remote`): a remote manifest or data file, read through the node-local
  shard cache (``file://`` URLs are plain paths).

:func:`open_files` also accepts what is not packed yet (a folder, a ZIP file, a file pattern or a
list file), for commands that read plain images as well as packed sets.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import TypedDict

from ..errors import ConfigTypeError, DatasetNotFoundError
from ..format.manifest import is_manifest, load_manifest
from ..format.paths import DatasetPaths
from .directory import LABEL, DirectoryReader
from .msgpack import MsgpackReader
from .reader import Reader
from .remote.reader import open_remote
from .remote.url import is_url, local_path_of
from .sharded import ShardedReader
from .zipfile import ZipFileReader

__all__ = ["data_files", "is_glob", "open_dataset", "open_files"]

#: What a dataset argument may be.
Source = Reader | str | os.PathLike


def is_glob(spec: str | os.PathLike) -> bool:
    """Whether ``spec`` is read as a glob pattern: it has ``*?[`` and no file has that exact name."""
    text = os.fspath(spec)
    if is_url(text):
        return False
    return any(c in text for c in "*?[") and not os.path.exists(text)


def data_files(spec: str | os.PathLike) -> list[Path]:
    """The data files a dataset argument stands for, in dataset order.

    Args:
        spec: a data file (or sidecar), a ``*.manifest`` or a glob pattern.

    Returns:
        One path for a single data file; the shards in order for a manifest or glob.

    Raises:
        DatasetNotFoundError: the glob matches no data file.
        CorruptIndexError: a malformed manifest.
    """
    if is_url(spec):
        local = local_path_of(os.fspath(spec))
        if local is None:
            raise DatasetNotFoundError(spec, "a URL has no local data files")
        spec = local
    if is_manifest(spec):
        return load_manifest(spec).shard_paths()
    if is_glob(spec):
        found = {DatasetPaths.of(match) for match in glob.glob(os.fspath(spec))}
        matches = sorted(p.data for p in found if p.offsets.exists() or p.legacy_index.exists())
        if not matches:
            raise DatasetNotFoundError(
                spec, "glob pattern matches no data file (one with a .offsets or .index file)"
            )
        return matches
    return [DatasetPaths.of(spec).data]


def open_dataset(
    source: Source,
    *,
    caller: str = "",
    storage_options: dict | None = None,
    cache_dir: str | os.PathLike | None = None,
    cache_limit: int | None = None,
    prefetch_shards: int = 4,
) -> Reader:
    """Open a packed dataset argument as one reader (see the module docstring for what it accepts).

    Args:
        source: a reader, a data file, a manifest, a glob of shards or a URL of one.
        caller: the API name put in front of a type error's message (e.g. ``"Loader"``).
        storage_options, cache_dir, cache_limit, prefetch_shards: for a URL, see
            :func:`shardstream.read.remote.open_remote` (ignored for local paths).

    Returns:
        ``source`` itself when it is a reader, else a newly opened reader the caller closes.

    Raises:
        ConfigTypeError: ``source`` is neither a reader nor a path.
        DatasetNotFoundError, MissingIndexError, NotADatasetFileError, CorruptIndexError,
        IndexMismatchError: the path is missing or not a readable dataset.
        RemoteStorageError, MissingDependencyError: a URL cannot be read.
    """
    if isinstance(source, Reader):
        return source
    if not isinstance(source, (str, os.PathLike)):
        where = f"{caller}: " if caller else ""
        raise ConfigTypeError(
            f"{where}source must be a Reader or a dataset path, got {type(source).__name__}"
        )
    if is_url(source):
        local = local_path_of(os.fspath(source))
        if local is None:
            return open_remote(
                os.fspath(source),
                storage_options=storage_options,
                cache_dir=cache_dir,
                cache_limit=cache_limit,
                prefetch_shards=prefetch_shards,
            )
        source = local
    if is_manifest(source):
        return ShardedReader(source)
    if is_glob(source):
        return ShardedReader([MsgpackReader(path) for path in data_files(source)])
    return MsgpackReader(source)


def open_files(
    path: str,
    *,
    separator: str = "\t",
    root_dir: str = "",
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    storage_options: dict | None = None,
) -> Reader:
    """Open a packed set or plain image files: whatever reader ``path``'s kind calls for.

    A manifest, a packed data file or a glob of shards opens as :func:`open_dataset` does; a
    directory is read as ``PATH/{LABEL}/**``; a ``.zip`` file with a :class:`ZipFileReader`; any
    other file or pattern with a :class:`DirectoryReader` (a list file or a file pattern).

    Args:
        path: packed file, manifest, glob of shards, ZIP file, folder, pattern or list file.
        separator, root_dir, include, exclude: passed to the file readers.
        storage_options: for a URL ``path`` (see :func:`open_dataset`).

    Returns:
        The reader (the caller closes it).

    Raises:
        DatasetNotFoundError: nothing found at ``path``.
        ShardstreamError: the reader cannot open the data (see each reader).
    """
    tree = _TreeOptions(separator=separator, include=include, exclude=exclude)
    if is_url(path):
        if local_path_of(path) is None:
            return open_dataset(path, storage_options=storage_options)
        path = local_path_of(path) or path
    if is_manifest(path):
        return ShardedReader(path)
    if os.path.isdir(path):
        return _non_empty(DirectoryReader(os.path.join(path, LABEL, "**"), **tree), path)
    if os.path.isfile(path):
        paths = DatasetPaths.of(path)
        if paths.offsets.exists() or paths.legacy_index.exists():
            return MsgpackReader(path)
        if path.lower().endswith(".zip"):
            return _non_empty(ZipFileReader(path, **tree), path)
        return _non_empty(DirectoryReader(path, root_dir=root_dir, **tree), path)
    if LABEL not in path and glob.glob(path):
        try:
            return ShardedReader([MsgpackReader(p) for p in data_files(path)])
        except DatasetNotFoundError:
            pass  # the glob matches plain files, not shards: a DirectoryReader pattern
    return _non_empty(DirectoryReader(path, root_dir=root_dir, **tree), path)


class _TreeOptions(TypedDict):
    """The file readers' options :func:`open_files` passes on."""

    separator: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]


def _non_empty(reader: Reader, path: str) -> Reader:
    if len(reader) == 0:
        reader.close()
        raise DatasetNotFoundError(path, "no files found")
    return reader
