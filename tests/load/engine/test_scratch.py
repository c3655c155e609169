"""engine/scratch.py: buffers reused only where the engine copies batches out (worker processes)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np

from shardstream.load.collate import default_collate
from shardstream.load.engine import StageTimer, WorkerPool
from shardstream.load.engine.scratch import batch_array, enabled

from .works import RandomWork, make_tasks


def test_outside_a_worker_every_call_is_a_new_array():
    assert not enabled()
    first = batch_array("x", (2, 3), np.float32)
    second = batch_array("x", (2, 3), np.float32)
    assert first is not second and first.shape == (2, 3) and first.dtype == np.float32
    assert first.flags.c_contiguous and first.flags.writeable


def test_in_a_worker_process_buffers_are_reused_per_name_shape_and_thread():
    code = textwrap.dedent(
        """
        import threading
        import numpy as np
        from shardstream.load.engine import scratch
        scratch.enable()
        a = scratch.batch_array("x", (4, 2), np.uint8)
        assert scratch.batch_array("x", (4, 2), np.uint8) is a
        assert scratch.batch_array("y", (4, 2), np.uint8) is not a
        assert scratch.batch_array("x", (4, 2), np.int16).dtype == np.int16
        b = scratch.batch_array("x", (5, 2), np.uint8)  # a new shape replaces the old buffers
        assert b.shape == (5, 2) and b is not a
        assert scratch.batch_array("x", (4, 2), np.uint8) is not a
        other = []
        thread = threading.Thread(
            target=lambda: other.append(scratch.batch_array("x", (5, 2), np.uint8))
        )
        thread.start(); thread.join()
        assert other[0] is not b  # each thread has its own
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


class DefaultCollateWork(RandomWork):
    """RandomWork collated by default_collate (which stacks into scratch buffers)."""

    def collate(self, task, samples, timer):
        return default_collate([{"image": s["image"], "index": s["index"]} for s in samples])


def test_worker_batches_collated_into_reused_buffers_stay_distinct():
    # every batch is stacked into the same worker buffer, then copied into its own slot
    tasks = make_tasks([3] * 6)
    with WorkerPool(work=DefaultCollateWork(), num_workers=1, prefetch_factor=2) as pool:
        held = [batch for _, batch in pool.run(tasks)]
    work = DefaultCollateWork()
    work.open()
    assert len(held) == 6
    for task, batch in zip(tasks, held):
        expected = [work.sample(task, i, StageTimer()) for i in range(3)]
        assert np.array_equal(batch["image"], np.stack([e["image"] for e in expected]))
        assert batch["index"].tolist() == [e["index"] for e in expected]
    assert len({batch["image"].tobytes() for batch in held}) == 6
