"""The conversion engine: source items read (and optionally transcoded) in parallel, one writer.

A converter describes each sample as an :class:`Item` whose ``load`` reads the encoded image.
:func:`convert` runs ``load``, checks or transcodes the image and packs the sample in a pool of
worker processes (:class:`~shardstream.write.pool.OrderedPool`, which hands packed samples back
through shared memory), while the calling process only appends the packed bytes to one writer
(whose md5 runs on its own thread). Output order is item order, whatever the number of workers.

By default the number of processes is chosen from the first items: when their work (load,
check or transcode, pack) costs less than hashing their bytes, as for copying JPEG files, md5 is
the bound and the work runs in the calling process; otherwise (transcoding, rendering, slow
storage) on every core. On the 2-core benchmark machine, copying 20,000 ~100 KB JPEGs runs at
85-90 % of the md5 bound in one process (5,900-6,300 samples/s) and at 5,300-5,500 samples/s
with 2 worker processes, whose hand-offs take CPU from md5 (``benchmarks/bench_convert.py``).
With ``shard_samples`` (shards planned up front), each worker process instead writes whole
shards, md5 and index included, and the calling process only commits them, so md5 runs on every
core (:mod:`shardstream.write.whole_shards`, the code the Ray engine runs too); the files are
the same, byte for byte.

Error policy (``on_error``):

- ``"raise"`` (default): the first bad source stops the conversion with
  :class:`~shardstream.errors.BadSourceError` naming the source and the fault, and no output is
  left (the writers are atomic: a previous dataset of the same name stays as it was).
- ``"skip"``: bad sources are left out and every one is listed, with the reason, in the report
  ``<output>.skipped.tsv`` (a header line ``source<TAB>reason``, then one line per skipped
  source; ``<output>`` is the data file, or the manifest when sharded). The report is written by
  every ``"skip"`` conversion, also when nothing was skipped, so it always describes the dataset
  next to it (and replaces an older one); ``"raise"`` conversions write none. When every source
  was skipped, no dataset is written but the report is.

Bad sources are: unreadable ones (missing, a dangling link, a directory or special file where a
file is expected), empty files, data that is not an image, corrupt images (see
:mod:`shardstream.write.transcode` for what is detected without transcoding) and unsafe archive
member names. A source set with no items at all, or one where every item was skipped, raises
:class:`~shardstream.errors.NothingToConvertError` and writes no dataset.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from ..checks import OnError, check_int, check_on_error
from ..errors import ConfigError, NothingToConvertError
from ..format.atomic import StagedFiles
from ..format.codec import RESERVED_FIELDS
from ..read.remote.url import local_path_of
from .pool import OrderedPool, Output
from .remote import RemoteFileWriter, RemoteShardedWriter, is_remote_output, put_bytes
from .sample_conversion import _convert_chunk, _Failure, _Options
from .sharded import ShardedWriter
from .writer import RawWriter

__all__ = [
    "ConvertReport",
    "Item",
    "LoadFunction",
    "SizedItems",
    "SkippedSource",
    "convert",
    "default_workers",
    "skipped_report_path",
]

#: The byte limit of shards planned by count (``shard_samples``): never reached.
_NO_BYTE_LIMIT = 1 << 62

#: Suffix appended to the output path to name the skipped report.
SKIPPED_REPORT_SUFFIX = ".skipped.tsv"
#: Items handed to a worker at once, at most (fewer when there are few items).
_MAX_CHUNK = 32
#: Chunks in flight per worker: keeps workers busy while bounding memory.
_CHUNKS_PER_WORKER = 4
#: Items converted in this process to choose between it and worker processes (workers=None).
_PROBE_ITEMS = 16
_WORK_MARGIN = 3.0  # see _choose_workers
#: Bytes the writer gathers per write and md5 call: large enough that it joins them into one
#: buffer, so the md5 thread takes the GIL once per 8 MiB instead of once per sample.
_BUFFERING = 8 << 20


#: what an :class:`Item`'s ``load`` is: the encoded image bytes, or a whole sample after its key
LoadFunction = Callable[[], bytes | dict[str, Any]]


@dataclass(frozen=True)
class Item:
    """One source sample for :func:`convert`.

    Attributes:
        key: the unique sample key, e.g. ``"n01440764/n01440764_10026.JPEG"``.
        label: the numeric label, or ``None`` for an unlabelled sample (no ``"label"`` field).
        source: where the item came from, for error reports: a path, or ``"archive.tar:member"``.
        load: a picklable callable (a module-level function or a :func:`functools.partial` of
            one, e.g. from :mod:`shardstream.write.loaders`) returning the encoded image bytes;
            it runs in a worker process. It may instead return a ``dict``: the whole sample
            after its key, written as ``{"key": key, **dict}`` in the dict's order (``label``
            and ``fields`` are then not used; bytes in the image field are still checked).
        fields: extra fields stored in the sample (not ``key``, ``label``, the image field, or
            the reserved ``nd`` / ``complex``).
    """

    key: str
    label: int | None
    source: str
    load: LoadFunction
    fields: Mapping[str, Any] = field(default_factory=dict)


class SkippedSource(NamedTuple):
    """A source left out by ``on_error="skip"``, and why."""

    source: str
    reason: str


@dataclass(frozen=True)
class ConvertReport:
    """What :func:`convert` wrote.

    Attributes:
        path: what to open: the data file, or the manifest when the output is sharded (a URL
            string for an object-storage output).
        files: the data files written (one, or the shards in order; URLs for a URL output).
        written: samples written.
        skipped: the sources left out (``on_error="skip"``), in item order.
        report: the skipped report (``None`` for ``on_error="raise"``; a URL for a URL output).
        bytes: bytes of packed samples written.
        seconds: wall-clock time of the whole conversion.
        workers: the worker processes used (1: the work ran in the calling process).
    """

    path: Path | str
    files: tuple[Path | str, ...]
    written: int
    skipped: tuple[SkippedSource, ...]
    report: Path | str | None
    bytes: int
    seconds: float
    workers: int

    @property
    def samples_per_s(self) -> float:
        """Samples written per second."""
        return self.written / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class SizedItems:
    """Items produced lazily whose number is known up front (gives progress bars a total).

    Attributes:
        count: how many items ``items`` yields.
        items: the items (iterated once).
    """

    count: int
    items: Iterable[Item]

    def __len__(self) -> int:
        """The number of items."""
        return self.count

    def __iter__(self) -> Iterator[Item]:
        """Iterate over the items."""
        return iter(self.items)


def skipped_report_path(output: str | os.PathLike) -> Path:
    """The skipped report of an output: ``<output>.skipped.tsv`` (``output`` as passed to convert)."""
    output = Path(output)
    return output.with_name(output.name + SKIPPED_REPORT_SUFFIX)


def _report_target(target: Path | str) -> Path | str:
    """The skipped report next to ``target`` (a path, or the URL of an object-storage output)."""
    if isinstance(target, str):
        return target + SKIPPED_REPORT_SUFFIX
    return skipped_report_path(target)


def default_workers() -> int:
    """The number of CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def convert(
    items: Iterable[Item],
    output: str | os.PathLike,
    *,
    workers: int | None = None,
    shard_size: int | None = None,
    max_side: int | None = None,
    quality: int | None = None,
    on_error: OnError = "raise",
    overwrite: bool = False,
    progress: bool = True,
    image_field: str = "image",
    shard_samples: int | None = None,
    engine: Literal["local", "ray"] = "local",
    ray_address: str | None = None,
    resume: bool = False,
    storage_options: dict[str, Any] | None = None,
    whole_shards: bool | None = None,
) -> ConvertReport:
    """Write ``items`` as one dataset (or as shards with a manifest), reading in parallel.

    Each sample written is ``{"key": item.key, image_field: <bytes>, "label": item.label,
    **item.fields}`` (no ``"label"`` when it is ``None``). The image bytes are the source's own
    bytes, checked cheaply, unless ``max_side`` or ``quality`` ask for transcoding (see
    :func:`~shardstream.write.transcode.transcode_image`).

    Args:
        items: the samples, in output order; a sized collection gives the progress bar a total.
        output: the data file (``out/name.msgpack``); with ``shard_size``, the shards are
            ``out/name-00000.msgpack``, ... and the manifest ``out/name.manifest``. A URL
            (``s3://bucket/prefix/name.msgpack``, any fsspec URL) writes to object storage (see
            :mod:`shardstream.write.remote`): each shard is uploaded as it completes, in the
            background, and the manifest last, as the commit point.
        workers: processes that load, check/transcode and pack; 1 works in this process.
            ``None`` (default) chooses from the first 16 items: every core when their work
            costs more than hashing their bytes (transcoding, rendering, slow storage), else
            this process alone, because with cheap items md5 on the writer's thread is the
            bound and handing samples between processes would only take CPU from it (and
            fewer than 16 items are always converted here).
        shard_size: roll to a new shard before a shard would exceed this many bytes (see
            :class:`~shardstream.write.sharded.ShardedWriter`); ``None`` writes one file.
        max_side: downscale images whose longer side exceeds this (aspect kept) and re-encode
            them as JPEG.
        quality: re-encode every image as JPEG at this quality (1-100).
        on_error: ``"raise"`` stops at the first bad source; ``"skip"`` leaves bad sources out
            and lists them in ``<output>.skipped.tsv`` (see the module docstring).
        overwrite: replace an existing output; otherwise ask on a terminal, or raise
            :class:`~shardstream.errors.DatasetExistsError`.
        progress: show a progress bar (rate, and ETA when the number of items is known).
        image_field: the field that holds the image bytes.
        shard_samples: write shards of this many items each (the last may be shorter; skipped
            sources leave gaps) plus a manifest, planned up front (see
            :mod:`shardstream.write.shard_plan`): the Ray engine then writes the same files.
            Not with ``shard_size``.
        engine: ``"local"`` (worker processes on this machine) or ``"ray"`` (Ray tasks on a
            cluster, see :mod:`shardstream.write.ray_engine`; needs the ``ray`` extra). With
            ``shard_samples`` each Ray task writes whole shards; otherwise the driver writes
            what the tasks pack. The files are the same as the local engine's either way.
        ray_address: the Ray cluster: ``None`` starts a local one for the run, ``"auto"`` the
            running cluster of this machine, or ``"host:port"`` of a head node.
        resume: (``shard_samples``, or a URL output) keep the shards an interrupted run with
            the same items and options finished and verified (for a URL: the objects whose
            size and md5 equal the shard written now are not uploaded again); write the rest.
        storage_options: the filesystem's options of a URL output (credentials, endpoint).
        whole_shards: (local engine, ``shard_samples``, a local output) each worker process
            writes whole shards, md5 and index included, and this process only commits them
            (see :mod:`shardstream.write.whole_shards`); ``False``: workers convert chunks of
            items and this process writes them. ``None`` (default): whole shards when the plan
            has at least as many shards as workers (or with ``resume``). Same files either way.

    Returns:
        A :class:`ConvertReport`.

    Raises:
        ConfigError: an argument is out of range or a combination is not supported, or an
            item's fields clash with the sample's own fields.
        MissingDependencyError: ``engine="ray"`` without Ray installed, or the URL's protocol
            package (s3fs, gcsfs, ...) missing.
        RemoteStorageError: an upload failed (no manifest is written).
        BadSourceError: a bad source with ``on_error="raise"`` (no output is written).
        NothingToConvertError: no items, or every item was skipped (no output is written).
        DatasetExistsError: the output exists and may not be replaced.
        DuplicateKeyError, InvalidKeyError, ReservedKeyError, SampleTooLargeError: an item's
            key or fields cannot be written (a converter fault; no output is written).
    """
    started = time.perf_counter()
    _check_options(workers, shard_size, max_side, quality, on_error, image_field)
    remote = is_remote_output(output)
    _check_engine(shard_size, shard_samples, engine, resume and not remote)
    if remote:
        output = os.fspath(output)
    else:
        output = Path(local_path_of(os.fspath(output)) or output)
    total = len(items) if isinstance(items, Sized) else None
    if total == 0:
        raise NothingToConvertError(f"{output}: nothing to convert: no source items were given")
    options = _Options(
        image_field=image_field,
        transcode=max_side is not None or quality is not None,
        max_side=max_side,
        quality=quality,
    )
    if engine == "ray" and shard_samples is not None:  # whole shards per Ray task
        from .ray_engine import convert_shards_on_ray  # delayed: ray (imported by it)

        return convert_shards_on_ray(
            items,
            output,
            shard_samples=shard_samples,
            options=options,
            on_error=on_error,
            overwrite=overwrite,
            progress=progress,
            resume=resume,
            ray_address=ray_address,
            storage_options=storage_options,
        )
    if (shard_samples is not None and engine == "local" and not remote) or whole_shards:
        from .whole_shards import convert_locally  # delayed: it imports this module

        items = items if isinstance(items, list) else list(items)
        done = convert_locally(
            items, output, shard_samples=shard_samples, options=options, on_error=on_error,
            overwrite=overwrite, progress=progress, resume=resume, workers=workers,
            whole_shards=whole_shards, local=engine == "local" and not remote,
        )  # fmt: skip
        if done is not None:
            return done
    if shard_samples is not None:
        shard_size = _NO_BYTE_LIMIT  # shards end every shard_samples items instead
    writer, append, target = _open_writer(
        output, shard_size, overwrite, resume=resume, storage_options=storage_options
    )
    skipped: list[SkippedSource] = []
    written_bytes = 0
    bar = None
    session = contextlib.ExitStack()
    try:
        remaining = iter(items)
        probe: list = []
        make_pool: Callable[[int], Any] = OrderedPool
        if engine == "ray":  # Ray tasks pack, this process writes (the same files)
            make_pool, workers = _ray_pool(session, ray_address)
        if workers is None:  # writers start no thread before their first write
            workers, probe = _choose_workers(remaining, options)
        seen = 0  # items whose result was taken (shard_samples: a shard ends every N)
        with make_pool(workers) as pool:  # starts its processes before any thread
            bar = _progress_bar(progress, total, _name_of(target))
            chunks = _chunks(remaining, _chunk_size(total, workers))
            for results in itertools.chain(probe, pool.map(_convert_chunk, chunks, options)):
                for result in results:
                    if shard_samples is not None and seen and seen % shard_samples == 0:
                        writer.end_shard()  # the plan's next shard starts with this item
                    seen += 1
                    if type(result) is _Failure:
                        if on_error == "raise":
                            raise result.error_type(
                                result.source,
                                result.reason,
                                "; pass on_error='skip' (--on-error skip) to leave bad sources out",
                            )
                        skipped.append(SkippedSource(result.source, result.reason))
                    else:
                        packed = pool.take(result[1])
                        append(result[0], packed)
                        written_bytes += len(packed)
                if bar is not None:
                    bar.update(len(results))
                    if skipped:
                        bar.set_postfix(skipped=len(skipped), refresh=False)
        if writer.written == 0:
            if skipped:
                _write_report(_report_target(target), skipped, storage_options)
                raise NothingToConvertError(
                    f"{target}: nothing to convert: all {len(skipped)} sources were skipped "
                    f"(see {_report_target(target)})"
                )
            raise NothingToConvertError(f"{target}: nothing to convert: no source items")
        if shard_samples is not None:
            writer.end_shard()  # also when its items were all skipped, as a shard task does
        writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
        session.close()
    report = None
    if on_error == "skip":
        report = _report_target(target)
        _write_report(report, skipped, storage_options)
    files: tuple[Path | str, ...] = (target,)
    if shard_size is not None:
        files = tuple(writer.shard_urls if remote else writer.shard_paths)
    return ConvertReport(
        path=target,
        files=files,
        written=writer.written,
        skipped=tuple(skipped),
        report=report,
        bytes=written_bytes,
        seconds=time.perf_counter() - started,
        workers=workers,
    )


def _check_engine(
    shard_size: int | None, shard_samples: object, engine: object, resume: object
) -> None:
    if shard_samples is not None:
        _positive("shard_samples", shard_samples)
        if shard_size is not None:
            raise ConfigError("give shard_size (bytes) or shard_samples (items), not both")
    if engine not in ("local", "ray"):
        raise ConfigError(f"engine must be 'local' or 'ray', got {engine!r}")
    if resume and shard_samples is None:
        raise ConfigError(
            "resume needs shard_samples (--shard-samples N): only shards planned up front can "
            "be found again"
        )


def _ray_pool(session: contextlib.ExitStack, address: str | None) -> tuple[Any, int]:
    """A pool of Ray tasks on the cluster at ``address`` (kept open by ``session``), and the
    cluster's CPUs as the number of workers."""
    from .ray_engine import RayPool, cluster_cpus, ray_session  # delayed: ray (imported by it)

    ray = session.enter_context(ray_session(address))
    cpus = cluster_cpus(ray)
    return (lambda workers: RayPool(ray=ray, window=2 * workers)), cpus


def _open_writer(
    output: Path | str,
    shard_size: int | None,
    overwrite: bool,
    *,
    resume: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> tuple[Any, Callable[[str, bytes], None], Path | str]:
    """The writer, its append-packed-bytes method, and the path (or URL) to open the result
    with. A URL ``output`` (a ``str``) gets an uploading writer."""
    if isinstance(output, str):
        options: dict[str, Any] = {
            "storage_options": storage_options,
            "overwrite": overwrite,
            "resume": resume,
        }
        if shard_size is None:
            single = RemoteFileWriter(output, disable=True, buffering=_BUFFERING, **options)
            return single, single.write, single.url
        remote = RemoteShardedWriter(
            output, shard_size=shard_size, disable=True, buffering=_BUFFERING, **options
        )
        return remote, remote.write_raw, remote.url
    if shard_size is None:
        writer = RawWriter(output, overwrite=overwrite, disable=True, buffering=_BUFFERING)
        return writer, writer.write, output
    sharded = ShardedWriter(
        output, shard_size=shard_size, overwrite=overwrite, disable=True, buffering=_BUFFERING
    )
    return sharded, sharded.write_raw, sharded.path


def _choose_workers(items: Iterator[Item], options: _Options) -> tuple[int, list[list]]:
    """Pick the number of processes from a first few items converted here.

    Worker processes pay off when loading, checking and packing an item costs more than
    hashing its bytes, which the writer does on its own thread in this process (so with cheap
    items md5 is the bound, and handing samples between processes only takes CPU from it).
    The probe is one timing of each on a shared machine, so processes need the work to cost
    clearly more (_WORK_MARGIN times the hashing): plain copies measured 0.2-0.8x the hashing
    (near 1x when the machine is busy), re-encoding ~270x.
    Returns the choice and the probe's results (to be written first).
    """
    cores = default_workers()
    chunk = list(itertools.islice(items, _PROBE_ITEMS))
    if cores == 1 or len(chunk) < _PROBE_ITEMS:  # a single core, or nothing left for workers
        return 1, [_convert_chunk(chunk, options, Output())] if chunk else []
    started = time.perf_counter()
    results = _convert_chunk(chunk, options, Output())
    work = time.perf_counter() - started
    # Output() without a block returns every packed sample as bytes
    packed = [ref for r in results if not isinstance(r, _Failure) and type(ref := r[1]) is bytes]
    started = time.perf_counter()
    digest = hashlib.md5()
    for data in packed:
        digest.update(data)
    hashing = time.perf_counter() - started
    return (cores if work > _WORK_MARGIN * hashing else 1), [results]


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _chunk_size(total: int | None, workers: int) -> int:
    """Large enough to amortise process hand-offs, small enough to keep every worker busy."""
    if workers <= 1 or total is None:
        return _MAX_CHUNK
    return max(1, min(_MAX_CHUNK, math.ceil(total / (workers * _CHUNKS_PER_WORKER))))


# ---------------------------------------------------------------------------------------------
# Options, progress and the report


def _check_options(
    workers: object,
    shard_size: object,
    max_side: object,
    quality: object,
    on_error: object,
    image_field: object,
) -> None:
    if workers is not None:
        _positive("workers", workers)
    if shard_size is not None:
        _positive("shard_size", shard_size)
    if max_side is not None:
        _positive("max_side", max_side)
    if quality is not None and (_positive("quality", quality) > 100):
        raise ConfigError(f"quality must be in 1..100, got {quality!r}")
    check_on_error(on_error)
    if (
        not isinstance(image_field, str)
        or image_field in ("key", "label")
        or (image_field in RESERVED_FIELDS)
    ):
        raise ConfigError(
            f"image_field must be a str other than 'key', 'label', 'nd', 'complex', got "
            f"{image_field!r}"
        )


def _positive(name: str, value: object) -> int:
    return check_int(value, name, low=1, message="{name} must be a positive int, got {value!r}")


def _progress_bar(enabled: bool, total: int | None, name: str) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit=" samples", smoothing=0.1)


def _name_of(target: Path | str) -> str:
    return target.name if isinstance(target, Path) else target.rsplit("/", 1)[-1]


def _write_report(
    path: Path | str, skipped: list[SkippedSource], storage_options: dict[str, Any] | None = None
) -> None:
    """Write the skipped report at ``path`` (a URL string: uploaded in one request)."""
    text = io.StringIO()
    writer = csv.writer(text, delimiter="\t", lineterminator="\n")
    writer.writerow(["source", "reason"])
    writer.writerows(skipped)
    if isinstance(path, str):
        put_bytes(path, text.getvalue().encode("utf-8"), storage_options=storage_options)
        return
    staged = StagedFiles()
    try:
        staged.write_bytes(path, text.getvalue().encode("utf-8"))
        staged.commit()
    except BaseException:
        staged.abort()
        raise
