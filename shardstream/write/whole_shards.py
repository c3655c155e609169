"""Whole shards written by workers: the shard-task driver of the local and the Ray engine.

With ``shard_samples=N`` the items are listed once and cut into shard tasks
(:mod:`shardstream.write.shard_plan`), and the tasks into groups of consecutive ones (up to 8
shards, balanced over the workers: :func:`~shardstream.write.shard_plan.plan_groups`). Each
group runs in a worker (a process of this machine, or a Ray task) that reads, checks or
transcodes, packs and writes whole shards (data, index and sidecar files) into a staging folder
next to the manifest, the group's data files md5-hashed side by side in AVX2 lanes
(:mod:`shardstream.write.md5lanes`) where the CPU has them; this process only plans,
shows one progress bar, merges the skipped sources in item order and commits every shard and
the manifest last (:func:`~shardstream.write.shard_plan.commit_shards`). No sample bytes pass
through this process, so md5, the slowest step of a compatible writer, runs on every core.

Both engines run :func:`convert_whole_shards` with a :class:`ShardRunner`: :class:`LocalRunner`
(a process pool; 1 worker runs the tasks in this process) or the Ray engine's runner
(:mod:`shardstream.write.ray_engine`). The output is the same files, byte for byte, as the
streamed local engine writes with the same items and ``N``; the commit is atomic as a whole (a
kill at any point leaves the previous set or the new one), and ``resume=True`` keeps the
shards a killed run finished (checked by their md5s). A worker process that dies (killed, out
of memory) takes its pool with it: the pool is started again and the tasks that were running
are run again, up to :data:`TASK_RETRIES` times, as Ray retries its tasks.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from .._lifeline import deathsig_fits
from ..errors import ConfigError, DuplicateKeyError, NothingToConvertError, WorkerDiedError
from ..format.atomic import DatasetLock, remove_stale_temporaries, settle_locked
from ..format.set_offsets import set_offsets_path
from .conversion import (
    ConvertReport,
    Item,
    _progress_bar,
    _write_report,
    default_workers,
    skipped_report_path,
)
from .pool import _start_worker
from .prompt import confirm_overwrite
from .sample_conversion import _Options
from .shard_plan import (
    ShardResult,
    ShardTask,
    commit_shards,
    finished_shard,
    plan_fingerprint,
    plan_groups,
    plan_shards,
    write_shards,
)
from .sharded import _listed_shards, shard_name, sharded_output_paths

__all__ = [
    "TASK_RETRIES",
    "LocalRunner",
    "ShardRunner",
    "convert_locally",
    "convert_whole_shards",
    "local_runner",
    "run_shard_tasks",
]

#: Times the tasks of a dead worker are run again (killed, out of memory, node lost).
TASK_RETRIES = 3
#: Groups of shard tasks in flight per worker (a queued one starts as soon as a worker is free).
TASKS_PER_WORKER = 2
_STAGING = re.compile(r"^\.(?P<final>.+)\.[0-9a-z_]{8}\.tmp$")


class ShardRunner(Protocol):
    """Where shard tasks run: submits ``function(group, *arguments)`` (a group of shard
    tasks, see :func:`~shardstream.write.shard_plan.plan_groups`) and hands back outcomes.

    Attributes:
        workers: the processes (or cluster CPUs) that run tasks.
        window: groups in flight at most.
    """

    workers: int
    window: int

    def submit(
        self, function: Callable[..., Any], group: tuple[ShardTask, ...], arguments: tuple
    ) -> Any:
        """Start ``function(group, *arguments)``; return a hashable handle."""

    def wait(self, handles: list[Any]) -> list[Any]:
        """Block until at least one of ``handles`` is done; return the done ones."""

    def outcome(self, handle: Any) -> Any:
        """What a done task returned, or ``None`` when its worker died (run it again).

        Raises:
            WorkerDiedError: workers died more than :data:`TASK_RETRIES` times.
        """

    def cancel(self, handles: list[Any]) -> None:
        """Stop the tasks of ``handles`` (not done yet) and wait for them to end."""


class LocalRunner:
    """Shard tasks on a pool of worker processes of this machine (1: in this process).

    Workers ignore SIGINT and die with this process, even when it is killed with SIGKILL (see
    :mod:`shardstream._lifeline`). Start it before starting threads (it forks).

    Args:
        workers: worker processes (at least 1).
        output: what is written, for error messages.
        lock: the output's lock, whose descriptor the forked workers close (so that it is
            released the moment this process dies, not when its last worker does).
    """

    def __init__(self, *, workers: int, output: str = "", lock: DatasetLock | None = None) -> None:
        self.workers = workers
        self._output = output
        self._lock = lock
        self.window = TASKS_PER_WORKER * workers if workers > 1 else 1
        self._executor: ProcessPoolExecutor | None = None
        self._generation = 0
        self._restarts = 0
        if workers > 1:
            self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context()
        method = context.get_start_method()
        parent = None if method == "forkserver" else os.getpid()
        lock = self._lock.fileno() if self._lock is not None else None
        self._executor = ProcessPoolExecutor(
            self.workers,
            mp_context=context,
            initializer=_start_shard_worker,
            initargs=(parent, deathsig_fits(method), lock if method == "fork" else None),
        )
        self._generation += 1
        self._executor.submit(int).result()  # every process starts now, before any thread

    def submit(
        self, function: Callable[..., Any], group: tuple[ShardTask, ...], arguments: tuple
    ) -> Any:
        """Start ``function(group, *arguments)`` (at once, in this process, with 1 worker)."""
        if self._executor is None:
            done: Future = Future()
            done.set_result(function(group, *arguments))
            return done, 0
        return self._executor.submit(function, group, *arguments), self._generation

    def wait(self, handles: list[Any]) -> list[Any]:
        """The handles whose tasks are done (at least one)."""
        by_future = {future: (future, generation) for future, generation in handles}
        done, _ = wait(by_future, return_when=FIRST_COMPLETED)
        return [handle for handle in handles if handle[0] in done]

    def outcome(self, handle: Any) -> Any:
        """The task's result, or ``None`` when its worker died (the pool is started again)."""
        future, generation = handle
        try:
            return future.result()
        except BrokenProcessPool:
            if generation == self._generation:  # the first of its pool's lost tasks
                self._restarts += 1
                if self._restarts > TASK_RETRIES:
                    raise WorkerDiedError(
                        f"{self._output}: conversion workers died {self._restarts} times "
                        "(killed, or out of memory); nothing was written"
                    ) from None
                self.close()
                self._start()
            return None

    def cancel(self, handles: list[Any]) -> None:
        """Cancel queued tasks and kill the workers running the others (the caller stops)."""
        running = [future for future, _ in handles if not future.cancel()]
        if running and self._executor is not None:
            # 3.11's executor cannot stop a running task: end its processes (they only write
            # into the staging folder, which the caller removes or keeps for resume)
            for process in list((self._executor._processes or {}).values()):
                process.kill()
            wait(running)

    def close(self) -> None:
        """Stop the worker processes."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


def _start_shard_worker(parent: int | None, deathsig: bool, lock: int | None) -> None:
    if lock is not None:
        os.close(lock)  # the parent's lock, inherited by fork
    _start_worker(parent, deathsig)


@contextmanager
def local_runner(
    workers: int, output: str = "", lock: DatasetLock | None = None
) -> Iterator[LocalRunner]:
    """A :class:`LocalRunner` of ``workers`` processes (writing ``output``, locked by
    ``lock``), closed on exit."""
    runner = LocalRunner(workers=workers, output=output, lock=lock)
    try:
        yield runner
    finally:
        runner.close()


def convert_locally(
    items: list[Item],
    output: str | os.PathLike,
    *,
    shard_samples: int | None,
    options: _Options,
    on_error: str,
    overwrite: bool,
    progress: bool,
    resume: bool,
    workers: int | None,
    whole_shards: bool | None,
    local: bool,
) -> ConvertReport | None:
    """The local engine's whole-shard mode, when it applies: :func:`convert_whole_shards` on
    ``workers`` processes (default: every core, at most one per shard); ``None`` when the
    streamed mode is to run instead (``whole_shards=False``, or, by default, fewer shards than
    workers: then only some cores would work).

    Arguments as :func:`~shardstream.write.conversion.convert`; ``local``: the local engine
    and a local output.

    Raises:
        ConfigError: ``whole_shards=True`` without ``shard_samples``, a local output and the
            local engine; ``resume`` with ``whole_shards=False``.
    """
    if whole_shards and (shard_samples is None or not local):
        raise ConfigError("whole_shards needs shard_samples, a local output and engine='local'")
    if not local:
        return None
    if whole_shards is False or shard_samples is None:
        if resume:
            raise ConfigError("resume with the local engine needs whole shards (whole_shards)")
        return None
    cores = workers or default_workers()
    if not (whole_shards or resume or len(items) > shard_samples * (cores - 1)):
        return None
    return convert_whole_shards(
        items,
        output,
        shard_samples=shard_samples,
        options=options,
        on_error=on_error,
        overwrite=overwrite,
        progress=progress,
        resume=resume,
        runner=lambda tasks, lock: local_runner(max(1, min(cores, tasks)), os.fspath(output), lock),
    )


def convert_whole_shards(
    items: Sequence[Item],
    output: str | os.PathLike,
    *,
    shard_samples: int,
    options: _Options,
    on_error: str,
    overwrite: bool,
    progress: bool,
    resume: bool,
    runner: Callable[[int, DatasetLock], AbstractContextManager[ShardRunner]],
) -> ConvertReport:
    """Write ``items`` as shards of ``shard_samples`` items, one worker task per shard.

    Arguments and errors as :func:`~shardstream.write.conversion.convert`; ``runner(tasks,
    lock)`` opens where the tasks run (given the number of tasks to run and the output's lock);
    ``resume`` keeps the verified shards of an interrupted run with the same plan.
    """
    started = time.perf_counter()
    manifest, stem = sharded_output_paths(output)
    if not items:
        raise NothingToConvertError(f"{manifest}: nothing to convert: no source items were given")
    check_unique_keys(items, manifest)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    tasks = plan_shards(items, stem, shard_samples)
    fingerprint = plan_fingerprint(items, shard_samples, options, on_error)
    staging = manifest.with_name(f".{manifest.name}.{fingerprint[:8]}.tmp")
    lock = DatasetLock.acquire(manifest, wait=0.0)
    try:
        settle_locked(manifest)
        _remove_stale(manifest, keep=staging if resume else None)
        first = manifest.parent / shard_name(stem, 0)
        if (manifest.exists() or first.exists()) and not overwrite:
            confirm_overwrite(manifest)
        previous = _listed_shards(manifest)
        staging.mkdir(exist_ok=True)
        finished = {}
        if resume:
            finished = {t.index: r for t in tasks if (r := finished_shard(t, staging)) is not None}
        with runner(len(tasks) - len(finished), lock) as where:
            workers = where.workers
            results = run_shard_tasks(
                where,
                tasks,
                progress,
                stem,
                function=write_shards,
                arguments=(options, on_error, os.fspath(staging)),
                finished=finished.get,
            )
        skipped = [entry for result in results for entry in result.skipped]
        written = sum(result.samples for result in results)
        if written == 0:
            report = skipped_report_path(manifest)
            _write_report(report, skipped)
            raise NothingToConvertError(
                f"{manifest}: nothing to convert: all {len(skipped)} sources were skipped "
                f"(see {report})"
            )
        files = commit_shards(manifest, staging, results, previous)
        shutil.rmtree(staging, ignore_errors=True)
    except KeyboardInterrupt:
        raise  # the staging folder stays for --resume
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        lock.release()
    report_path = None
    if on_error == "skip":
        report_path = skipped_report_path(manifest)
        _write_report(report_path, skipped)
    return ConvertReport(
        path=manifest,
        files=tuple(files),
        written=written,
        skipped=tuple(skipped),
        report=report_path,
        bytes=sum(result.bytes for result in results),
        seconds=time.perf_counter() - started,
        workers=workers,
    )


def run_shard_tasks(
    runner: ShardRunner,
    tasks: Sequence[ShardTask],
    progress: bool,
    name: str,
    *,
    function: Callable[..., Any],
    arguments: tuple,
    finished: Callable[[int], ShardResult | None] | None = None,
) -> list[ShardResult]:
    """Run ``function(group, *arguments)`` on ``runner`` for groups of the shard tasks whose
    index ``finished`` gives no result for (:func:`~shardstream.write.shard_plan.plan_groups`
    over the runner's workers); return every result in shard order.

    A group's run returns one outcome per task, in order: a
    :class:`~shardstream.write.shard_plan.ShardResult`, or the error that stops the conversion
    (which ends the list); the first such error in shard order is raised once the earlier
    tasks ended.
    """
    results: dict[int, ShardResult] = {}
    bar = _progress_bar(progress, sum(len(task.items) for task in tasks), name)
    try:
        left: list[ShardTask] = []
        for task in tasks:
            done = finished(task.index) if finished is not None else None
            if done is None:
                left.append(task)
            else:
                results[task.index] = done
                if bar is not None:
                    bar.update(len(task.items))
        todo = deque(plan_groups(left, runner.workers))
        running: dict[Any, tuple[ShardTask, ...]] = {}
        failures: dict[int, BaseException] = {}
        try:
            while running or (todo and not failures):
                while todo and len(running) < runner.window and not failures:
                    group = todo.popleft()
                    running[runner.submit(function, group, arguments)] = group
                for handle in runner.wait(list(running)):
                    group = running.pop(handle)
                    outcomes = runner.outcome(handle)
                    if outcomes is None:  # its worker died: run it again
                        todo.appendleft(group)
                        continue
                    for task, result in zip(group, outcomes):
                        if isinstance(result, BaseException):
                            # the streamed engine raises the first failure in item order: let
                            # the earlier shards (all submitted already) finish, then raise it
                            failures[task.index] = result
                            todo.clear()
                        else:
                            results[task.index] = result
                            if bar is not None:
                                bar.update(len(task.items))
                    skipped = sum(len(r.skipped) for r in results.values())
                    if bar is not None and skipped:
                        bar.set_postfix(skipped=skipped, refresh=False)
            if failures:
                raise failures[min(failures)]
        finally:
            if running:
                runner.cancel(list(running))
    finally:
        if bar is not None:
            bar.close()
    return [results[task.index] for task in tasks]


def check_unique_keys(items: Sequence[Item], manifest: Path | str) -> None:
    """Raise :class:`~shardstream.errors.DuplicateKeyError` for the first repeated key."""
    seen: set[str] = set()
    for item in items:
        if item.key in seen:
            raise DuplicateKeyError(f"{manifest}: duplicate key {item.key!r} not allowed")
        seen.add(item.key)


def _remove_stale(manifest: Path, keep: Path | None) -> None:
    """Remove killed runs' staging folders of ``manifest`` (all but ``keep``)."""
    finals = {manifest.name, set_offsets_path(manifest).name}
    if keep is None or not keep.is_dir():
        remove_stale_temporaries(manifest, finals)
        return
    for entry in os.scandir(manifest.parent):
        match = _STAGING.match(entry.name)
        if match and match["final"] in finals and entry.path != os.fspath(keep):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                Path(entry.path).unlink(missing_ok=True)
