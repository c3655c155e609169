"""Shard tasks: a conversion's items split into whole shards of a fixed number of items.

With ``shard_samples=N`` the items are listed once and cut into shard tasks: shard ``i`` is
made of items ``i*N .. i*N+N-1`` (those that are not skipped), named ``<stem>-0000i.msgpack``.
The plan depends on the items and ``N`` only, never on timing or on the number of workers, so
every engine writes the same samples into the same shards: the local engine
(:func:`~shardstream.write.conversion.convert` ends a shard every ``N`` items) and the Ray
engine (:mod:`shardstream.write.ray_engine`, one task per shard) give equal files, byte for byte.

A shard task (:func:`write_shard`) loads, checks or transcodes and packs its items in its own
process and writes the shard with :class:`~shardstream.write.RawWriter` (atomic) into a staging
folder next to the manifest; it then records its result (samples, bytes, md5, skipped sources)
in ``<shard>.done.json`` there. Workers run groups of consecutive tasks (:func:`plan_groups`,
:func:`write_shards`): each shard is written as alone, but the group's data files are hashed
together at the end, several md5 streams side by side (:mod:`shardstream.write.md5lanes`).
:func:`commit_shards` moves every shard into place and writes the manifest last, as :class:`~shardstream.write.ShardedWriter` does. The staging folder's name
is derived from the plan (:func:`plan_fingerprint`), so a resumed run finds the shards a killed
run finished; :func:`finished_shard` accepts one only when its result record and every md5 of
its files check out.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ..errors import ShardstreamError
from ..format.atomic import StagedFiles, write_file_atomically
from ..format.codec import make_packer
from ..format.integrity import load_md5file, md5_file
from ..format.manifest import ShardEntry, manifest_bytes
from ..format.paths import SIDECAR_SUFFIXES, DatasetPaths
from ..format.set_offsets import SetOffsets, set_offsets_of_shards, set_offsets_path
from .conversion import Item, SkippedSource
from .loaders import read_file
from .md5lanes import LANES, LANES_AVAILABLE, file_hexdigests
from .pool import Output
from .sample_conversion import (
    _convert_in_place,
    _convert_one,
    _Failure,
    _in_place_source,
    _Options,
)
from .shard_writer import InPlaceWriter
from .sharded import shard_name

__all__ = [
    "ShardResult",
    "ShardTask",
    "commit_shards",
    "finished_shard",
    "plan_fingerprint",
    "plan_groups",
    "plan_shards",
    "write_shard",
    "write_shards",
]

_DONE_SUFFIX = ".done.json"
_RECORD_FORMAT = "shardstream.shard-task"
#: the keyword arguments of a read_file load that a task pickled as columns keeps
_MAX_ONLY = frozenset({"max_bytes"})
#: a read_file load without max_bytes (its default applies)
_NO_LIMIT = -1
#: Seconds a shard task waits for another writer of its shard (a killed run's task) to end.
_WAIT = 60.0


@dataclass(frozen=True, kw_only=True)
class ShardTask:
    """One shard of the plan: its index, file name and items (in output order).

    Attributes:
        index: the shard's number (0-based).
        name: its data file name, ``<stem>-00000.msgpack``.
        items: the items it is made of.
    """

    index: int
    name: str
    items: tuple[Item, ...]

    def __reduce__(self) -> tuple[Any, tuple]:
        """Pickled as columns when every item is a file read with ``read_file`` (what a folder
        scan gives): the driver pickles such a task ~4x (pickle) to ~10x (Ray's cloudpickle)
        faster, and the worker unpickles it ~2x faster, in two thirds of the bytes."""
        columns = _file_columns(self.items)
        if columns is None:
            return _task, (self.index, self.name, self.items)
        return _task_of_files, (self.index, self.name, *columns)


def _task(index: int, name: str, items: tuple[Item, ...]) -> ShardTask:
    return ShardTask(index=index, name=name, items=items)


def _file_columns(items: Sequence[Item]) -> tuple | None:
    """``(keys, labels, sources, max_bytes, fields)`` of items whose ``load`` is
    ``functools.partial(read_file, item.source[, max_bytes=M])``; ``None`` for any other."""
    limits = []
    for item in items:
        load = item.load
        if (
            type(load) is not functools.partial
            or load.func is not read_file
            or load.args != (item.source,)
            or type(item.source) is not str
            or not _MAX_ONLY.issuperset(load.keywords)
        ):
            return None
        limits.append(load.keywords.get("max_bytes", _NO_LIMIT))
    fields = None
    if any(item.fields for item in items):
        fields = tuple(item.fields for item in items)
    keys = tuple(item.key for item in items)
    labels = tuple(item.label for item in items)
    sources = tuple(item.source for item in items)
    same = len(set(limits)) == 1
    return keys, labels, sources, limits[0] if same and limits else tuple(limits), fields


def _task_of_files(
    index: int,
    name: str,
    keys: tuple[str, ...],
    labels: tuple[int | None, ...],
    sources: tuple[str, ...],
    limits: tuple[int, ...] | int,
    fields: tuple[Any, ...] | None,
) -> ShardTask:
    """The :class:`ShardTask` that :meth:`ShardTask.__reduce__` packed as columns."""
    every = limits if isinstance(limits, tuple) else (limits,) * len(keys)
    items = tuple(
        Item(
            key,
            label,
            source,
            functools.partial(read_file, source)
            if limit == _NO_LIMIT
            else functools.partial(read_file, source, max_bytes=limit),
            {} if fields is None else fields[position],
        )
        for position, (key, label, source, limit) in enumerate(zip(keys, labels, sources, every))
    )
    return ShardTask(index=index, name=name, items=items)


@dataclass(frozen=True, kw_only=True)
class ShardResult:
    """What a shard task wrote.

    Attributes:
        index: the shard's number.
        name: its data file name.
        samples: samples written.
        bytes: bytes of packed samples written.
        md5: the data file's md5.
        skipped: the sources left out (``on_error="skip"``), in item order.
        pid: the process that wrote it (0 when read back from a record).
    """

    index: int
    name: str
    samples: int
    bytes: int
    md5: str
    skipped: tuple[SkippedSource, ...]
    pid: int = 0


def plan_shards(items: Sequence[Item], stem: str, shard_samples: int) -> list[ShardTask]:
    """Cut ``items`` into shard tasks of ``shard_samples`` items each (the last may be shorter).

    Args:
        items: every item, in output order.
        stem: the shards' name stem (see :func:`~shardstream.write.sharded.shard_name`).
        shard_samples: items per shard (at least 1).
    """
    return [
        ShardTask(
            index=index,
            name=shard_name(stem, index),
            items=tuple(items[start : start + shard_samples]),
        )
        for index, start in enumerate(range(0, len(items), shard_samples))
    ]


def plan_fingerprint(
    items: Sequence[Item], shard_samples: int, options: _Options, on_error: str
) -> str:
    """A digest of what decides the output: options, and every item's key, label, source and
    fields (64 hex digits). Runs with the same fingerprint write the same shards."""
    digest = hashlib.sha256()
    head = [shard_samples, options.image_field, options.max_side, options.quality, on_error]
    digest.update(json.dumps(head).encode())
    for item in items:
        digest.update(repr((item.key, item.label, item.source, dict(item.fields))).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def plan_groups(tasks: Sequence[ShardTask], workers: int) -> list[tuple[ShardTask, ...]]:
    """Cut ``tasks`` into runs of consecutive tasks, one worker task each: as few as give each
    of ``workers`` the same number of groups of at most
    :data:`~shardstream.write.md5lanes.LANES` shards (20 shards on 2 workers: 4 groups of 5),
    sizes differing by one at most; single tasks where the md5 lanes do not run here (nothing
    to gain from hashing shards together)."""
    if not LANES_AVAILABLE:
        return [(task,) for task in tasks]
    per_worker = -(-len(tasks) // (max(1, workers) * LANES))
    count = min(len(tasks), max(1, workers) * per_worker)
    size, extra = divmod(len(tasks), max(1, count))
    groups = []
    start = 0
    for index in range(count):
        end = start + size + (index < extra)
        groups.append(tuple(tasks[start:end]))
        start = end
    return groups


def write_shard(
    task: ShardTask, options: _Options, on_error: str, staging: str
) -> ShardResult | ShardstreamError | OSError:
    """Convert one shard task's items and write the shard into ``staging`` (runs in a worker).

    Returns:
        The :class:`ShardResult`; or, instead of raising, the error that stops the conversion
        (the first bad source with ``on_error="raise"``, a converter fault, or an ``OSError``
        writing the shard such as a full disk), for the driver to raise as it is.
    """
    return write_shards((task,), options, on_error, staging)[0]


def write_shards(
    group: Sequence[ShardTask], options: _Options, on_error: str, staging: str
) -> list[ShardResult | ShardstreamError | OSError]:
    """Write a group of shard tasks into ``staging``, one after the other (runs in a worker),
    as :func:`write_shard` writes each; with two or more where the md5 lanes run, the data
    files are hashed together once all are written (:mod:`shardstream.write.md5lanes`: several
    times one stream's md5 throughput) instead of each on its writer's md5 thread.

    Returns:
        One outcome per task, in order, as :func:`write_shard` returns them; an error ends the
        list (the tasks after it are not run; an ``OSError`` while the group's shards wait for
        their md5 drops them and stands first).
    """
    lanes = LANES_AVAILABLE and len(group) > 1
    outcomes: list[ShardResult | ShardstreamError | OSError] = []
    held: list[tuple[ShardTask, InPlaceWriter, list[SkippedSource]]] = []
    try:
        try:
            for task in group:
                filled = _fill_shard(task, options, on_error, staging, hash_data=not lanes)
                if not isinstance(filled, tuple):
                    outcomes.append(filled)
                    break
                writer, skipped = filled
                if lanes:
                    writer.close_data()
                    held.append((task, writer, skipped))
                else:
                    writer.close()
                    md5 = load_md5file(DatasetPaths(writer.path).md5)[writer.path.name]
                    outcomes.append(_finish_shard(task, writer, md5, skipped))
            if held:  # every outcome so far is the error that ended the group, if any
                failed, outcomes = outcomes, []
                digests = file_hexdigests([writer.close_data() for _, writer, _ in held])
                for md5 in digests:
                    task, writer, skipped = held.pop(0)
                    writer.close(data_md5=md5)  # aborts itself if it fails
                    outcomes.append(_finish_shard(task, writer, md5, skipped))
                outcomes += failed
        finally:
            for _, writer, _ in held:
                writer.abort()
    except (ShardstreamError, OSError) as error:
        outcomes.append(error)
    return outcomes


def _fill_shard(
    task: ShardTask, options: _Options, on_error: str, staging: str, *, hash_data: bool
) -> tuple[InPlaceWriter, list[SkippedSource]] | ShardstreamError:
    """Convert ``task``'s items into an open writer of its shard in ``staging``: the writer
    (to close) and the skipped sources, or the error that stops the conversion (the writer is
    aborted then).

    Raises:
        ShardstreamError, OSError: opening or writing the shard failed.
    """
    path = Path(staging) / task.name
    packer = make_packer()
    output = Output()  # no shared block: samples come back as bytes
    skipped: list[SkippedSource] = []
    # wait: a task of a killed driver may still be finishing this shard
    writer = InPlaceWriter(path, overwrite=True, disable=True, wait=_WAIT, hash_data=hash_data)
    try:
        for item in task.items:
            result: Any = False
            source = _in_place_source(item, options)
            if source is not None:  # a file kept as is: read straight into the writer
                result = _convert_in_place(item, *source, options, writer, packer)
                if result is True:
                    continue
            if result is False:
                result = _convert_one(item, options, output, packer)
            if type(result) is _Failure:
                if on_error == "raise":
                    writer.abort()
                    return result.error_type(
                        result.source,
                        result.reason,
                        "; pass on_error='skip' (--on-error skip) to leave bad sources out",
                    )
                skipped.append(SkippedSource(result.source, result.reason))
                continue
            # Output() without a shared block hands the packed sample back as bytes
            key, packed = result[0], cast(bytes, result[1])
            writer.write(key, packed)
    except BaseException:
        writer.abort()
        raise
    return writer, skipped


def _finish_shard(
    task: ShardTask, writer: InPlaceWriter, md5: str, skipped: list[SkippedSource]
) -> ShardResult:
    """The result of ``task``, whose ``writer`` is closed, recorded next to its shard."""
    path = writer.path
    done = ShardResult(
        index=task.index,
        name=task.name,
        samples=writer.written,
        bytes=writer.bytes_written,
        md5=md5,
        skipped=tuple(skipped),
        pid=os.getpid(),
    )
    record = {
        "format": _RECORD_FORMAT,
        "index": done.index,
        "name": done.name,
        "samples": done.samples,
        "bytes": done.bytes,
        "md5": done.md5,
        "keys": _keys_digest(task),
        "skipped": [list(entry) for entry in skipped],
    }
    write_file_atomically(path.with_name(path.name + _DONE_SUFFIX), json.dumps(record).encode())
    return done


def finished_shard(task: ShardTask, staging: Path) -> ShardResult | None:
    """The result of ``task`` if a previous run finished it in ``staging`` and it verifies.

    A shard counts when its result record names the same items and every file its ``.md5``
    lists (the data and index files) has that md5; anything else (missing, partial, damaged)
    gives ``None``, and the task is run again.
    """
    path = staging / task.name
    try:
        record = json.loads((staging / (task.name + _DONE_SUFFIX)).read_bytes())
        if record.get("format") != _RECORD_FORMAT or record.get("keys") != _keys_digest(task):
            return None
        listed = load_md5file(DatasetPaths(path).md5)
        if listed.get(task.name) != record["md5"]:
            return None
        for name, expected in listed.items():
            if md5_file(staging / name) != expected:
                return None
        return ShardResult(
            index=task.index,
            name=task.name,
            samples=int(record["samples"]),
            bytes=int(record["bytes"]),
            md5=str(record["md5"]),
            skipped=tuple(SkippedSource(str(s), str(r)) for s, r in record["skipped"]),
        )
    except (OSError, ValueError, KeyError, TypeError, ShardstreamError):
        return None


def commit_shards(
    manifest: Path, staging: Path, results: Sequence[ShardResult], previous: set[str]
) -> list[Path]:
    """Move the finished shards from ``staging`` into place and write the manifest, as one
    commit (manifest last; shards only the ``previous`` manifest listed are deleted after it).

    The caller holds the manifest's lock. Returns the shards' final paths, in order.
    """
    directory = manifest.parent
    entries = [ShardEntry(r.name, r.samples, r.bytes, r.md5) for r in results]
    staged = StagedFiles(anchor=manifest, locked=True)
    for result in results:
        source = DatasetPaths(staging / result.name)
        target = DatasetPaths(directory / result.name)
        staged.adopt(source.data, target.data)
        for suffix in SIDECAR_SUFFIXES:  # as ShardedWriter stages them: md5 file after index
            if source.sidecar(suffix).exists():
                staged.adopt(source.sidecar(suffix), target.sidecar(suffix))
            else:
                staged.remove_on_commit(target.sidecar(suffix))
    offsets = set_offsets_of_shards(staging, [r.name for r in results])
    listed = None
    if offsets is not None:
        staged.write_bytes(set_offsets_path(manifest), offsets)
        listed = SetOffsets.of(set_offsets_path(manifest).name, offsets)
    staged.write_bytes(manifest, manifest_bytes(manifest, entries, listed))
    current = {entry.path for entry in entries}
    for name in sorted(previous - current):
        paths = DatasetPaths(directory / name)
        if paths.data.parent == directory:
            for path in (paths.data, *(paths.sidecar(s) for s in SIDECAR_SUFFIXES)):
                staged.remove_on_commit(path)
    try:
        staged.commit(last=manifest)
    except BaseException:
        if not staged.committed:
            staged.abort()
        raise
    return [directory / result.name for result in results]


def _keys_digest(task: ShardTask) -> str:
    digest = hashlib.sha256()
    for item in task.items:
        digest.update(repr((item.key, item.label, item.source, dict(item.fields))).encode())
        digest.update(b"\0")
    return digest.hexdigest()
