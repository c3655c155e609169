"""WorkerPool with real worker processes and threads: order, prefetch, faults, cleanup, stats."""

from __future__ import annotations

import copy
import gc
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from shardstream.engine import SKIPPED, StageTimer, WorkerPool
from shardstream.engine.transport import plan_tree, read_tree, write_leaves
from shardstream.errors import (
    ConfigError,
    ConfigTypeError,
    LoaderTimeoutError,
    PoolClosedError,
    SampleError,
    WorkerDiedError,
    WorkerError,
)

from .works import OpenFails, RandomWork, TreeWork, make_tasks, sized_tree

SIZES = [4, 3, 4, 1, 4, 2, 4, 4, 3]


def reference(work, tasks):
    """The batches computed without the engine."""
    work.open()
    out = []
    for task in tasks:
        samples = [work.sample(task, i, StageTimer()) for i in range(len(task.indices))]
        samples = [s for s in samples if s is not SKIPPED]
        if samples:
            out.append((task.sequence, work.collate(task, samples, StageTimer())))
    return out


def assert_same(a, b):
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


def child_alive(pid: int) -> bool:
    """Whether ``pid`` is still a (non-zombie) child of this process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[1]) == os.getpid()


def shm_segments(prefix: str) -> list[str]:
    return sorted(name for name in os.listdir("/dev/shm") if name.startswith(prefix))


def assert_clean(pids, prefix):
    assert pids, "the test should have seen worker processes"
    assert [pid for pid in pids if child_alive(pid)] == []
    assert multiprocessing.active_children() == []
    assert shm_segments(prefix) == []


@pytest.mark.parametrize("num_workers", [0, 1, 2])
@pytest.mark.parametrize("num_threads", [1, 2])
def test_results_do_not_depend_on_workers_or_threads(num_workers, num_threads):
    expected = reference(RandomWork(), make_tasks(SIZES, epoch=3))
    work = RandomWork(jitter=0.004)  # completion order differs from task order
    with WorkerPool(work=work, num_workers=num_workers, num_threads=num_threads) as pool:
        got = [(task.sequence, batch) for task, batch in pool.run(make_tasks(SIZES, epoch=3))]
        stats = pool.stats()
    assert [s for s, _ in got] == list(range(len(SIZES)))
    assert_same(got, expected)
    assert stats["samples"] == sum(SIZES)
    assert stats["batches"] == len(SIZES)
    # index int64 + image 6 uint8 + value 4 float32 per sample
    assert stats["bytes"] == sum(SIZES) * (8 + 6 + 16)
    assert stats["skipped"] == 0


@pytest.mark.parametrize("num_workers", [0, 2])
def test_prefetch_is_bounded_and_tasks_are_pulled_lazily(num_workers):
    pulled = []

    def endless():
        for task in make_tasks([2] * 10_000):
            pulled.append(task.sequence)
            yield task

    prefetch = 3
    capacity = prefetch * max(1, num_workers)
    pool = WorkerPool(work=RandomWork(jitter=0.002), num_workers=num_workers,
                      prefetch_factor=prefetch)  # fmt: skip
    seen = []
    for k, _ in enumerate(pool.run(endless()), start=1):
        seen.append(len(pulled))
        if k == 6:
            break
    pool.close()
    assert seen == [capacity + k - 1 for k in range(1, 7)]


def test_prefetch_stops_pulling_at_the_end_of_the_tasks():
    pulled = []

    def three():
        for task in make_tasks([2, 2, 2]):
            pulled.append(task.sequence)
            yield task

    with WorkerPool(work=RandomWork(), num_workers=2, prefetch_factor=2) as pool:
        counts = [len(pulled) for _ in pool.run(three())]
    assert counts == [3, 3, 3]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_skipped_samples_are_dropped_and_counted(num_workers):
    work = RandomWork(skip_every=3)
    sizes = [3, 1, 4, 2]  # indices 0-2, 3 (all skipped), 4-7, 8-9
    expected = reference(RandomWork(skip_every=3), make_tasks(sizes))
    with WorkerPool(work=work, num_workers=num_workers, num_threads=2) as pool:
        got = [(task.sequence, batch) for task, batch in pool.run(make_tasks(sizes))]
        stats = pool.stats()
    assert [s for s, _ in got] == [0, 2, 3]
    assert_same(got, expected)
    assert got[0][1]["index"].tolist() == [1, 2]
    assert got[1][1]["index"].tolist() == [4, 5, 7]
    assert got[2][1]["index"].tolist() == [8]
    assert stats["skipped"] == 4  # 0, 3, 6, 9
    assert stats["samples"] == 6
    assert stats["batches"] == 3
    assert stats["empty_batches"] == 1
    assert stats["bytes"] == 6 * (8 + 6 + 16)


@pytest.mark.parametrize(("num_workers", "num_threads"), [(0, 1), (0, 2), (2, 2)])
def test_a_sample_that_raises_names_the_sample(num_workers, num_threads):
    pool = WorkerPool(work=RandomWork(fail_at=13), num_workers=num_workers,
                      num_threads=num_threads, persistent_workers=True)  # fmt: skip
    delivered = []
    with pytest.raises(SampleError) as caught:
        for task, _ in pool.run(make_tasks([4] * 6)):
            delivered.append(task.sequence)
    error = caught.value
    assert delivered == [0, 1, 2]
    assert "sample 13 (key 'k13') of test.msgpack" in str(error)
    assert "ValueError: boom at 13" in str(error)
    assert "Traceback" in error.remote_traceback and "in sample" in error.remote_traceback
    assert error.index == 13
    assert error.exc_type == "ValueError"
    assert isinstance(error.__cause__, ValueError)
    assert str(error.__cause__) == "boom at 13"
    # the pool stays usable: a new run gets every batch, none left over from the failed run
    got = [task.sequence for task, _ in pool.run(make_tasks([4, 4]))]
    assert got == [0, 1]
    pool.close()


def test_a_collate_that_raises_names_the_batch():
    pool = WorkerPool(work=RandomWork(collate_fail_at=5), num_workers=1)
    with pool, pytest.raises(SampleError) as caught:
        list(pool.run(make_tasks([4, 4])))
    message = str(caught.value)
    assert "batch 1 of epoch 0 (sample 4 (key 'k4') of test.msgpack" in message
    assert "and 1 more" in message
    assert "KeyError" in message
    assert caught.value.index is None


def test_a_worker_killed_by_sigkill_raises_naming_the_sample():
    pool = WorkerPool(work=RandomWork(kill_at=21), num_workers=2, num_threads=2)
    pids = []
    start = time.monotonic()
    with pytest.raises(WorkerDiedError) as caught:
        for _ in pool.run(make_tasks([4] * 20)):
            pids = pids or pool.worker_pids()
    elapsed = time.monotonic() - start
    error = caught.value
    assert elapsed < 5
    assert "SIGKILL" in str(error)
    assert "sample 21 (key 'k21') of test.msgpack" in str(error)
    assert 21 in error.indices
    assert error.exitcode == -signal.SIGKILL
    assert pool.closed
    assert_clean(pids, pool.shm_prefix)
    with pytest.raises(PoolClosedError):
        pool.run(make_tasks([1]))


def test_a_worker_killed_from_outside_is_noticed():
    pool = WorkerPool(work=RandomWork(sleep_at=5, sleep_s=30), num_workers=2)
    run = pool.run(make_tasks([4] * 4))
    next(run)  # batch 0 done; index 5 of batch 1 is sleeping
    pids = pool.worker_pids()
    time.sleep(0.2)
    os.kill(pids[1], signal.SIGKILL)
    with pytest.raises(WorkerDiedError) as caught:
        next(run)
    assert "loader worker 1" in str(caught.value)
    assert "sample 5 (key 'k5')" in str(caught.value)
    assert_clean(pids, pool.shm_prefix)


@pytest.mark.parametrize("persistent", [False, True])
def test_close_mid_run_leaves_no_process_and_no_shared_memory(persistent):
    pool = WorkerPool(work=RandomWork(jitter=0.002), num_workers=2, num_threads=2,
                      persistent_workers=persistent)  # fmt: skip
    run = pool.run(make_tasks([4] * 50))
    next(run)
    next(run)
    pids = pool.worker_pids()
    assert len(pids) == 2 and all(child_alive(pid) for pid in pids)
    assert shm_segments(pool.shm_prefix) != []
    pool.close()
    pool.close()  # idempotent
    assert_clean(pids, pool.shm_prefix)
    with pytest.raises(StopIteration):
        next(run)


def test_garbage_collection_closes_an_unclosed_pool():
    pool = WorkerPool(work=RandomWork(), num_workers=2, persistent_workers=True)
    run = pool.run(make_tasks([4] * 50))
    next(run)
    pids, prefix = pool.worker_pids(), pool.shm_prefix
    del pool, run
    gc.collect()
    assert_clean(pids, prefix)


def test_garbage_collection_closes_an_idle_persistent_pool():
    pool = WorkerPool(work=RandomWork(), num_workers=1, persistent_workers=True)
    assert len(list(pool.run(make_tasks([2, 2])))) == 2
    pids, prefix = pool.worker_pids(), pool.shm_prefix
    assert all(child_alive(pid) for pid in pids)
    del pool
    gc.collect()
    assert_clean(pids, prefix)


def test_keyboard_interrupt_while_waiting_closes_the_pool_and_workers_ignore_sigint():
    pool = WorkerPool(work=RandomWork(sleep_at=9, sleep_s=30), num_workers=2)
    run = pool.run(make_tasks([4] * 5))
    next(run)
    pids = pool.worker_pids()
    for pid in pids:
        os.kill(pid, signal.SIGINT)  # ignored by the workers
    time.sleep(0.1)
    assert all(child_alive(pid) for pid in pids)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        for _ in run:
            pass
    timer.join()
    assert pool.closed
    assert_clean(pids, pool.shm_prefix)


def test_persistent_workers_survive_between_runs():
    with WorkerPool(work=RandomWork(), num_workers=2, persistent_workers=True) as pool:
        first = [batch["index"].tolist() for _, batch in pool.run(make_tasks([2, 2, 2]))]
        pids = pool.worker_pids()
        second = [batch["index"].tolist() for _, batch in pool.run(make_tasks([3, 3]))]
        assert pool.worker_pids() == pids
    assert first == [[0, 1], [2, 3], [4, 5]]
    assert second == [[0, 1, 2], [3, 4, 5]]
    assert_clean(pids, pool.shm_prefix)


def test_workers_stop_after_each_run_unless_persistent():
    with WorkerPool(work=RandomWork(), num_workers=2) as pool:
        run = pool.run(make_tasks([2, 2, 2]))
        next(run)
        pids = pool.worker_pids()
        list(run)
        assert pool.worker_pids() == []
        assert_clean(pids, pool.shm_prefix)
        assert len(list(pool.run(make_tasks([2])))) == 1


@pytest.mark.parametrize("num_workers", [0, 2])
def test_breaking_out_of_a_run_does_not_leak_batches_into_the_next(num_workers):
    work = RandomWork(jitter=0.002)
    with WorkerPool(work=work, num_workers=num_workers, persistent_workers=True) as pool:
        for task, _ in pool.run(make_tasks([4] * 30)):
            if task.sequence == 1:
                break
        got = [(t.sequence, b) for t, b in pool.run(make_tasks([2, 3], epoch=1))]
        # starting a run ends the previous one even while it is suspended
        run = pool.run(make_tasks([4] * 30))
        next(run)
        again = [(t.sequence, b) for t, b in pool.run(make_tasks([2, 3], epoch=1))]
    expected = reference(RandomWork(), make_tasks([2, 3], epoch=1))
    assert_same(got, expected)
    assert_same(again, expected)
    with pytest.raises(StopIteration):
        next(run)


def test_work_open_runs_once_per_worker_and_its_failure_is_reported():
    with WorkerPool(work=OpenFails(), num_workers=2) as pool:
        with pytest.raises(WorkerError) as caught:
            list(pool.run(make_tasks([2, 2])))
        assert "work.open() in loader worker" in str(caught.value)
        assert "cannot open test.msgpack" in str(caught.value)
        assert pool.closed
    work = RandomWork()
    with WorkerPool(work=work, num_workers=0, num_threads=2) as pool:
        list(pool.run(make_tasks([2])))
        list(pool.run(make_tasks([2])))
    assert work.opened == 1


def test_timeout_names_the_samples_in_progress():
    pool = WorkerPool(work=RandomWork(sleep_at=2, sleep_s=30), num_workers=1, timeout=0.5)
    start = time.monotonic()
    with pytest.raises(LoaderTimeoutError) as caught:
        list(pool.run(make_tasks([4, 4])))
    assert time.monotonic() - start < 5
    assert "timeout=0.5" in str(caught.value)
    assert "sample 2 (key 'k2')" in str(caught.value)
    assert pool.closed


def test_slots_grow_for_larger_batches_and_are_unlinked():
    work = TreeWork(sized_tree)
    with WorkerPool(work=work, num_workers=1, prefetch_factor=1) as pool:
        got = [batch for _, batch in pool.run(make_tasks([1] * 5))]
        prefix = pool.shm_prefix
        pids = pool.worker_pids()
        stats = pool.stats()
    for sequence, batch in enumerate(got):
        assert_same(batch, sized_tree(sequence))
    assert stats["bytes"] == sum(4 * 1000 * 4**s for s in range(5))
    assert shm_segments(prefix) == []
    assert pids == [] or not any(child_alive(pid) for pid in pids)


def test_batches_are_lent_views_that_later_batches_never_overwrite():
    with WorkerPool(work=TreeWork(sized_tree), num_workers=1, prefetch_factor=1,
                    persistent_workers=True) as pool:  # fmt: skip
        run = pool.run(make_tasks([1] * 4))
        _, first = next(run)
        kept = first["data"]
        rest = [batch for _, batch in run]  # held too: each later batch needs a new slot
        prefix = pool.shm_prefix
        held_segments = len(shm_segments(prefix))
    assert not kept.flags.owndata and kept.flags.writeable  # a view into shared memory
    assert held_segments == 4  # one slot per batch still referenced
    assert_same(kept, np.arange(1000, dtype=np.int32))  # intact, even after close
    assert [b["sequence"] for b in rest] == [1, 2, 3]
    assert [b["data"].size for b in rest] == [4000, 16000, 64000]
    assert shm_segments(prefix) == []  # unlinked on close; the held views keep their memory
    kept[:] = 7  # still writable memory the consumer owns
    assert int(kept.sum()) == 7000


def test_a_slot_is_reused_once_its_batch_is_dropped():
    expected = reference(RandomWork(), make_tasks([2] * 10))
    with WorkerPool(work=RandomWork(), num_workers=2, prefetch_factor=1,
                    persistent_workers=True) as pool:  # fmt: skip
        got = []
        for task, batch in pool.run(make_tasks([2] * 10)):
            got.append((task.sequence, {k: copy.deepcopy(v) for k, v in batch.items()}))
        segments = shm_segments(pool.shm_prefix)
    assert_same(got, expected)
    # two in flight plus the one the loop variable still holds while the next is requested
    assert len(segments) <= 3


def test_pinned_or_copied_batches_are_owned_by_the_consumer():
    plan = plan_tree({"a": np.arange(6, dtype=np.int16).reshape(2, 3), "b": [b"xy", b"z"]})
    buffer = bytearray(plan.size)
    write_leaves(plan, memoryview(buffer))
    copied = read_tree(plan.spec, memoryview(buffer))
    viewed = read_tree(plan.spec, np.frombuffer(buffer, np.uint8), copy=False)
    buffer[:] = bytes(len(buffer))  # the buffer is reused
    assert copied["a"].flags.owndata and copied["a"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert viewed["a"].tolist() == [[0, 0, 0], [0, 0, 0]]  # a view sees the reuse
    assert copied["b"] == viewed["b"] == [b"xy", b"z"]  # bytes are always copies


def test_spawn_context_gives_the_same_results():
    expected = reference(RandomWork(), make_tasks([3, 2]))
    with WorkerPool(work=RandomWork(), num_workers=1, multiprocessing_context="spawn") as pool:
        got = [(t.sequence, b) for t, b in pool.run(make_tasks([3, 2]))]
    assert_same(got, expected)


def test_stats_report_rates_wait_and_stages():
    with WorkerPool(work=RandomWork(jitter=0.004), num_workers=1, num_threads=2) as pool:
        for _ in pool.run(make_tasks([4, 4])):
            time.sleep(0.02)
        stats = pool.stats()
        assert set(stats) == {
            "samples", "batches", "bytes", "skipped", "empty_batches", "elapsed_s",
            "samples_per_s", "bytes_per_s", "wait_s", "stall_pct",
            "read_s", "decode_s", "transform_s", "collate_s",
        }  # fmt: skip
        assert (stats["samples"], stats["batches"], stats["bytes"]) == (8, 2, 8 * 30)
        assert stats["elapsed_s"] >= 0.04
        assert 0 < stats["wait_s"] <= stats["elapsed_s"]
        assert stats["stall_pct"] == pytest.approx(100 * stats["wait_s"] / stats["elapsed_s"])
        assert stats["samples_per_s"] == pytest.approx(8 / stats["elapsed_s"])
        assert stats["bytes_per_s"] == pytest.approx(240 / stats["elapsed_s"])
        # jitter sleeps of 0, 1, 2, 3 or 4 ms per sample happen inside "read"
        assert stats["read_s"] >= 0.001 * sum((i * 7919) % 5 for i in range(8))
        assert stats["collate_s"] > 0 and stats["decode_s"] > 0 and stats["transform_s"] > 0
        pool.reset_stats()
        assert pool.stats()["samples"] == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_workers": -1},
        {"num_workers": 1.5},
        {"num_threads": 0},
        {"prefetch_factor": 0},
        {"timeout": 0},
        {"timeout": "1"},
        {"num_workers": 1, "multiprocessing_context": "teleport"},
    ],
)
def test_bad_arguments_raise_config_errors(kwargs):
    with pytest.raises(ConfigError):
        WorkerPool(work=RandomWork(), **kwargs)


def test_a_work_without_the_protocol_is_refused():
    with pytest.raises(ConfigTypeError, match="open\\(\\), sample\\(\\), collate\\(\\)"):
        WorkerPool(work=object())


def test_closed_pool_refuses_to_run():
    pool = WorkerPool(work=RandomWork())
    pool.close()
    with pytest.raises(PoolClosedError):
        pool.run(make_tasks([1]))


def test_no_leak_warnings_at_interpreter_exit(tmp_path):
    script = tmp_path / "run_pool.py"
    script.write_text(
        textwrap.dedent(
            """
            import os
            from shardstream.engine import WorkerPool
            from tests.engine.works import RandomWork, make_tasks

            pool = WorkerPool(work=RandomWork(), num_workers=2, persistent_workers=True)
            print(sum(len(b["index"]) for _, b in pool.run(make_tasks([3] * 10))))
            print(pool.shm_prefix)
            # not closed: the finalizer must clean up at exit
            """
        )
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=60, cwd=root, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    count, prefix = result.stdout.split()
    assert count == "30"
    assert "leaked" not in result.stderr
    assert result.stderr == ""
    assert shm_segments(prefix) == []


def test_workers_start_after_the_consumer_ran_parallel_opencv_ops():
    """A fork after OpenCV's thread pool ran used to hang the worker in cv2.setNumThreads."""
    code = textwrap.dedent(
        """
        import cv2
        import numpy as np
        from shardstream.engine import WorkerPool
        from tests.engine.works import RandomWork, make_tasks

        cv2.setNumThreads(2)
        big = np.random.default_rng(0).integers(0, 255, (3000, 3000), dtype=np.uint8)
        lut = np.arange(256, dtype=np.uint8)[::-1].copy()
        for _ in range(3):
            cv2.LUT(big, lut)  # runs on OpenCV's thread pool
        with WorkerPool(work=RandomWork(), num_workers=2) as pool:
            batches = [batch for _, batch in pool.run(make_tasks([2, 2, 2]))]
        print(len(batches), cv2.getNumThreads())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "2"]  # all batches; the consumer's pool restored
