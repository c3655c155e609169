"""The Ray engine of :func:`~shardstream.write.conversion.convert` (``engine="ray"``).

Ray core tasks (``ray.remote``), not Ray Data's ``map_batches``: each unit of work here is one
whole shard with side effects on files (written atomically, then a result record), the results
are small and must be consumed in plan order, and a task killed with its worker is simply run
again (``max_retries``). Ray Data would add its executor's start-up, its own progress bars and
Arrow blocks around the same tasks without changing what runs where.

Two modes:

- **whole shards** (``shard_samples=N``): the items are listed once in the driver and cut into
  shard tasks by :mod:`shardstream.write.shard_plan`; each Ray task reads, checks or transcodes,
  packs and writes a group of consecutive shards (as the local engine's workers do, see
  :func:`~shardstream.write.shard_plan.plan_groups`) into a staging folder next to the manifest
  (a shared file system on a cluster). The driver shows one progress bar, merges the skipped sources in item order
  and commits every shard and the manifest last. For a URL output (``s3://...``), each task
  writes its shard in a local temporary folder and uploads it (sidecars, then the data file),
  and the driver uploads the manifest last, as the commit point (see
  :mod:`shardstream.write.remote`). The output equals the local engine's with the
  same options, byte for byte. ``resume=True`` keeps the shards a killed run finished (checked
  by their md5s) and runs the others.
- **streamed** (one file, or ``shard_size`` in bytes, whose shard ends depend on packed sizes):
  Ray tasks convert chunks of items and return the packed samples to the driver, which writes
  them as the local engine does (same bytes; the driver's md5 is then the bound).

``ray_address``: ``None`` starts a local cluster for the run (shut down after it; its workers
run at the driver's priority, see :func:`local_cluster_options`), ``"auto"``
joins the cluster of this machine, ``"host:port"`` a head node. A driver that already called
``ray.init`` keeps its session.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import (
    ConfigError,
    MissingDependencyError,
    NothingToConvertError,
    ShardstreamError,
)
from ..format.manifest import ShardEntry, manifest_bytes
from ..format.paths import SUFFIX_OFFSETS, DatasetPaths
from ..format.set_offsets import SetOffsets, encode_set_offsets, set_offsets_path
from ..read.remote.retry import call_with_retries
from ..read.remote.url import url_filesystem, url_join, url_parent
from .conversion import ConvertReport, Item, _report_target, _write_report
from .pool import Output
from .remote import (
    ShardUploader,
    _remote_listed_shards,
    check_remote_output,
    is_remote_output,
    put_bytes,
    remote_sharded_target,
)
from .sample_conversion import _Options
from .shard_plan import ShardResult, ShardTask, plan_shards, write_shards
from .sharded import shard_name
from .whole_shards import TASK_RETRIES, check_unique_keys, convert_whole_shards, run_shard_tasks

__all__ = [
    "TASK_RETRIES",
    "RayPool",
    "RayRunner",
    "cluster_cpus",
    "convert_shards_on_ray",
    "import_ray",
    "local_cluster_options",
    "ray_runner",
    "ray_session",
    "upload_shards",
]

_ray: ModuleType | None
try:  # optional: this module is only imported for engine="ray"
    import ray as _ray
except ImportError:
    _ray = None

#: Shard tasks in flight per CPU of the cluster (bounds the object store's load).
_TASKS_PER_CPU = 2


def import_ray() -> ModuleType:
    """The ``ray`` module.

    Raises:
        MissingDependencyError: Ray is not installed (``pip install 'shardstream[ray]'``).
    """
    if _ray is None:
        raise MissingDependencyError(
            "engine='ray' (--engine ray) needs Ray Data: pip install 'shardstream[ray]'"
        )
    return _ray


@contextmanager
def ray_session(address: str | None) -> Iterator[ModuleType]:
    """Connect to Ray for one conversion; yields the ``ray`` module.

    Args:
        address: ``None``: start a local cluster (shut down on exit); ``"auto"``: the running
            cluster of this machine; ``"host:port"``: that head node. Ignored when this process
            is connected already (the session is kept).

    Raises:
        MissingDependencyError: Ray is not installed.
        ConfigError: no cluster answers at ``address``.
    """
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address is None:
            options.update(local_cluster_options())
        try:
            ray.init(address="local" if address is None else address, **options)
        except ConnectionError as error:
            raise ConfigError(
                f"--ray-address {address!r}: no Ray cluster there ({error})"
            ) from None
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def local_cluster_options() -> dict[str, Any]:
    """``ray.init`` options of a local cluster started for a conversion: its workers run at
    this process' priority. (Ray's default, niceness 15, gives them a fraction of the CPU that
    the local engine's workers get whenever anything else runs on the machine.)"""
    return {"_system_config": {"worker_niceness": os.nice(0)}}


def cluster_cpus(ray: ModuleType) -> int:
    """The CPUs of the connected cluster (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


class RayPool:
    """:class:`~shardstream.write.pool.OrderedPool`'s interface on Ray tasks (streamed mode).

    Args:
        ray: the connected ``ray`` module.
        window: chunks in flight at most.
    """

    def __init__(self, *, ray: ModuleType, window: int) -> None:
        self._ray = ray
        self._window = max(1, window)
        self._remote = ray.remote(max_retries=TASK_RETRIES)(_run_chunk)

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        return None

    @staticmethod
    def take(ref: Any) -> bytes:
        """The packed bytes of a sample (they travel as bytes)."""
        return ref

    def map(
        self, function: Callable[[list, Any, Output], list], chunks: Iterable[list], options: Any
    ) -> Iterator[list]:
        """Yield ``function(chunk, options, Output())`` run as a Ray task, for each chunk in order."""
        pending: deque[Any] = deque()
        chunks = iter(chunks)
        try:
            while True:
                while len(pending) < self._window:
                    chunk = next(chunks, None)
                    if chunk is None:
                        break
                    pending.append(self._remote.remote(function, chunk, options))
                if not pending:
                    return
                yield self._ray.get(pending.popleft())
        finally:
            for ref in pending:
                self._ray.cancel(ref, force=True)


def _run_chunk(function: Callable[[list, Any, Output], list], chunk: list, options: Any) -> list:
    return function(chunk, options, Output())


def convert_shards_on_ray(
    items: Iterable[Item],
    output: str | os.PathLike,
    *,
    shard_samples: int,
    options: _Options,
    on_error: str,
    overwrite: bool,
    progress: bool,
    resume: bool,
    ray_address: str | None,
    storage_options: dict[str, Any] | None = None,
) -> ConvertReport:
    """Write ``items`` as shards of ``shard_samples`` items, one Ray task per shard.

    Arguments and errors as :func:`~shardstream.write.conversion.convert` (``engine="ray"``);
    ``resume`` keeps the verified shards of an interrupted run with the same plan.
    """
    if is_remote_output(output):
        return _convert_shards_to_url(
            list(items),
            os.fspath(output),
            shard_samples=shard_samples,
            options=options,
            on_error=on_error,
            overwrite=overwrite,
            progress=progress,
            resume=resume,
            ray_address=ray_address,
            storage_options=storage_options,
        )
    return convert_whole_shards(
        list(items),
        output,
        shard_samples=shard_samples,
        options=options,
        on_error=on_error,
        overwrite=overwrite,
        progress=progress,
        resume=resume,
        runner=lambda _tasks, _lock: ray_runner(ray_address),
    )


class RayRunner:
    """The :class:`~shardstream.write.whole_shards.ShardRunner` of Ray tasks (one CPU each,
    retried :data:`TASK_RETRIES` times when their worker dies).

    Args:
        ray: the connected ``ray`` module.
    """

    def __init__(self, *, ray: ModuleType) -> None:
        self._ray = ray
        self.workers = cluster_cpus(ray)
        self.window = _TASKS_PER_CPU * self.workers
        self._remote: dict[Callable[..., Any], Any] = {}

    def submit(
        self, function: Callable[..., Any], group: tuple[ShardTask, ...], arguments: tuple
    ) -> Any:
        """Start ``function(group, *arguments)`` as a Ray task; return its object ref."""
        remote = self._remote.get(function)
        if remote is None:
            remote = self._ray.remote(max_retries=TASK_RETRIES, num_cpus=1)(function)
            self._remote[function] = remote
        return remote.remote(group, *arguments)

    def wait(self, handles: list[Any]) -> list[Any]:
        """The refs that are ready (at least one)."""
        ready, _ = self._ray.wait(handles, num_returns=1)
        return ready

    def outcome(self, handle: Any) -> Any:
        """The task's result (Ray has retried it if its worker died)."""
        return self._ray.get(handle)

    def cancel(self, handles: list[Any]) -> None:
        """Cancel the tasks and wait for them to end (30 s at most)."""
        for ref in handles:
            self._ray.cancel(ref, force=True)
        self._ray.wait(handles, num_returns=len(handles), timeout=30)


@contextmanager
def ray_runner(address: str | None) -> Iterator[RayRunner]:
    """A :class:`RayRunner` on the cluster at ``address`` (see :func:`ray_session`)."""
    with ray_session(address) as ray:
        yield RayRunner(ray=ray)


def _convert_shards_to_url(
    items: list[Item],
    output: str,
    *,
    shard_samples: int,
    options: _Options,
    on_error: str,
    overwrite: bool,
    progress: bool,
    resume: bool,
    ray_address: str | None,
    storage_options: dict[str, Any] | None,
) -> ConvertReport:
    """:func:`convert_shards_on_ray` for a URL output: each task uploads its shard, this
    process uploads the manifest last (then deletes the shards only a replaced one listed)."""
    started = time.perf_counter()
    manifest, stem = remote_sharded_target(output)
    if not items:
        raise NothingToConvertError(f"{manifest}: nothing to convert: no source items were given")
    check_unique_keys(items, manifest)
    fs, _ = url_filesystem(manifest, storage_options)
    uploader = ShardUploader(fs=fs)
    base = url_parent(manifest)
    first = url_join(base, shard_name(stem, 0))
    check_remote_output(uploader, manifest, [first], overwrite=overwrite, resume=resume)
    previous = _remote_listed_shards(fs, manifest)
    tasks = plan_shards(items, stem, shard_samples)
    with ray_session(ray_address) as ray:
        workers = cluster_cpus(ray)
        results = run_shard_tasks(
            RayRunner(ray=ray),
            tasks,
            progress,
            stem,
            function=upload_shards,
            arguments=(options, on_error, base, storage_options),
            # every task runs; a shard already uploaded is not sent again
        )
    skipped = [entry for result in results for entry in result.skipped]
    written = sum(result.samples for result in results)
    report = _report_target(manifest)
    if written == 0:
        _write_report(report, skipped, storage_options)
        raise NothingToConvertError(
            f"{manifest}: nothing to convert: all {len(skipped)} sources were skipped "
            f"(see {report})"
        )
    entries = [ShardEntry(r.name, r.samples, r.bytes, r.md5) for r in results]
    offsets = _upload_set_offsets(fs, base, stem, [r.name for r in results], storage_options)
    data = manifest_bytes(stem + ".manifest", entries, offsets)
    put_bytes(manifest, data, storage_options=storage_options)  # the commit point
    for name in sorted(previous - {entry.path for entry in entries}):
        uploader.remove(url_join(base, name))
    if on_error == "skip":
        _write_report(report, skipped, storage_options)
    return ConvertReport(
        path=manifest,
        files=tuple(url_join(base, result.name) for result in results),
        written=written,
        skipped=tuple(skipped),
        report=report if on_error == "skip" else None,
        bytes=sum(result.bytes for result in results),
        seconds=time.perf_counter() - started,
        workers=workers,
    )


def _upload_set_offsets(
    fs: Any, base: str, stem: str, names: list[str], storage_options: dict[str, Any] | None
) -> SetOffsets | None:
    """Upload the set's offsets file (:mod:`shardstream.format.set_offsets`), made of every
    uploaded shard's ``.offsets`` read back from the store, as the local engine writes it;
    ``None`` (a manifest without it, read shard by shard) where they cannot be read back."""
    urls = [url_join(base, name + SUFFIX_OFFSETS) for name in names]
    paths = [fs._strip_protocol(url) for url in urls]
    try:
        got = call_with_retries(
            lambda: fs.cat(paths), url=urls[0], what="read the shards' offsets back"
        )
        data = encode_set_offsets([got[path] for path in paths])
    except (ShardstreamError, OSError, KeyError, TypeError, ValueError):
        return None
    name = set_offsets_path(stem + ".manifest").name
    put_bytes(url_join(base, name), data, storage_options=storage_options)
    return SetOffsets.of(name, data)


def upload_shards(
    group: tuple[ShardTask, ...],
    options: _Options,
    on_error: str,
    base: str,
    storage_options: dict[str, Any] | None,
) -> list[ShardResult | ShardstreamError | OSError]:
    """Write a group of shard tasks' shards in a local temporary folder and upload each to
    ``base`` (runs in a Ray worker; an object of the same size and md5 already there is kept).

    Returns:
        One outcome per task, in order: the
        :class:`~shardstream.write.shard_plan.ShardResult`, or the error that stops the
        conversion, which ends the list (as :func:`~shardstream.write.shard_plan.write_shards`;
        also a ``RemoteStorageError`` of a failed upload).
    """
    with tempfile.TemporaryDirectory(prefix="shardstream-task-") as staging:
        outcomes = write_shards(group, options, on_error, staging)
        for position, (task, result) in enumerate(zip(group, outcomes)):
            if not isinstance(result, ShardResult):
                break
            try:
                fs, _ = url_filesystem(base, storage_options)
                local = DatasetPaths(Path(staging) / task.name)
                ShardUploader(fs=fs).upload(local, url_join(base, task.name), result.md5)
            except (ShardstreamError, OSError) as error:
                return [*outcomes[:position], error]
        return outcomes
