"""engine/scratch.py: batch buffers reused only where the engine copies batches out (worker
processes), and handed to the work with each task."""

from __future__ import annotations

import pickle
import threading

import numpy as np

from shardstream.engine import StageTimer, WorkerPool
from shardstream.engine.collate import default_collate
from shardstream.engine.scratch import FRESH, Arena, BatchBuffers
from shardstream.engine.tasks import BatchTask
from shardstream.engine.transport import plan_tree, read_tree, write_leaves

from .works import RandomWork, make_tasks


def test_fresh_buffers_are_a_new_array_every_call_and_tasks_default_to_them():
    first = FRESH.array("x", (2, 3), np.float32)
    second = FRESH.array("x", (2, 3), np.float32)
    assert first is not second and first.shape == (2, 3) and first.dtype == np.float32
    assert first.flags.c_contiguous and first.flags.writeable
    slot = np.zeros(4096, np.uint8)
    with FRESH.arena(slot) as place:  # nothing is placed where nothing is reused
        assert place is None and not np.shares_memory(FRESH.array("x", (2,), np.uint8), slot)
    task = BatchTask(sequence=0, epoch=0, indices=np.arange(2), positions=np.arange(2))
    assert task.buffers is FRESH


def test_reusing_buffers_are_reused_per_name_shape_and_thread():
    buffers = BatchBuffers(reuse=True)
    a = buffers.array("x", (4, 2), np.uint8)
    assert buffers.array("x", (4, 2), np.uint8) is a
    assert buffers.array("y", (4, 2), np.uint8) is not a
    assert buffers.array("x", (4, 2), np.int16).dtype == np.int16
    b = buffers.array("x", (5, 2), np.uint8)  # a new shape replaces the old buffers
    assert b.shape == (5, 2) and b is not a
    assert buffers.array("x", (4, 2), np.uint8) is not a
    other: list = []
    thread = threading.Thread(target=lambda: other.append(buffers.array("x", (5, 2), np.uint8)))
    thread.start()
    thread.join()
    assert other[0] is not b  # each thread has its own
    assert BatchBuffers(reuse=True).array("x", (5, 2), np.uint8) is not b  # and each object
    # once an arena (a batch's slot) serves a field, its reusable buffer is let go
    slot = np.zeros(4096, np.uint8)
    with buffers.arena(slot):
        placed = buffers.array("x", (5, 2), np.uint8)
        temp = buffers.array("t", (5, 2), np.uint8, temporary=True)
    assert np.shares_memory(placed, slot) and not np.shares_memory(temp, slot)
    assert buffers.array("x", (5, 2), np.uint8) is not b  # a new buffer
    assert buffers.array("t", (5, 2), np.uint8) is temp  # temporaries are kept
    copy = pickle.loads(pickle.dumps(buffers))  # a copy keeps the policy, not the memory
    assert copy.reuse and copy.array("t", (5, 2), np.uint8) is not temp


class DefaultCollateWork(RandomWork):
    """RandomWork collated by default_collate (which stacks into scratch buffers)."""

    def collate(self, task, samples, timer):
        return default_collate(
            [{"image": s["image"], "index": s["index"]} for s in samples], buffers=task.buffers
        )


def test_worker_batches_collated_into_reused_buffers_stay_distinct():
    # every batch is stacked into the same worker buffer, then copied into its own slot
    tasks = list(make_tasks([3] * 6))
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


# --- the arena: collating straight into the slot ---------------------------------------------


class ArenaWork(RandomWork):
    """Collates every field into the task's buffers (so, in a worker, into the batch's slot);
    batch sizes vary so that some batches outgrow their slot."""

    def collate(self, task, samples, timer):
        buffers = task.buffers
        images = np.stack(
            [s["image"] for s in samples],
            out=buffers.array("image", (len(samples), *samples[0]["image"].shape), np.uint8),
        )
        scaled = buffers.array("scaled", images.shape, np.float32)
        np.multiply(images, np.float32(0.5), out=scaled)
        scratch = buffers.array("tmp", images.shape, np.int16, temporary=True)
        scratch[...] = images  # an intermediate: must not take room in the slot
        return {"image": images, "scaled": scaled, "sum": int(scratch.sum())}


def test_collating_into_the_slot_gives_the_same_batches_even_when_slots_grow():
    tasks = list(make_tasks([2, 2, 5, 5, 1, 5, 3, 3]))
    expected = []
    work = ArenaWork()
    work.open()
    for task in tasks:
        samples = [work.sample(task, i, StageTimer()) for i in range(len(task.indices))]
        expected.append(work.collate(task, samples, StageTimer()))
    for workers in (1, 2):
        # each batch is dropped before the next arrives, so slots are reused and later batches
        # are collated straight into them (the first ones, and those that outgrow, are copied)
        compared = 0
        with WorkerPool(work=ArenaWork(), num_workers=workers, prefetch_factor=1) as pool:
            for (_, batch), reference in zip(pool.run(tasks), expected):
                assert np.array_equal(batch["image"], reference["image"])
                assert np.array_equal(batch["scaled"], reference["scaled"])
                assert batch["sum"] == reference["sum"]
                compared += 1
        assert compared == len(tasks)


def test_arena_hands_out_aligned_arrays_until_full():
    buffer = np.zeros(1024, np.uint8)
    place = Arena(buffer)
    first = place.take((10,), np.dtype(np.uint8))
    second = place.take((4, 4), np.dtype(np.float32))
    assert first.shape == (10,) and second.shape == (4, 4) and second.dtype == np.float32
    offset = second.__array_interface__["data"][0] - buffer.__array_interface__["data"][0]
    assert offset == 64 and place.used == 64 + 64
    assert place.take((1024,), np.dtype(np.uint8)) is None  # does not fit: caller falls back
    assert place.take((0,), np.dtype(np.uint8)) is None
    second[...] = 1.5
    assert buffer[64:128].view(np.float32).tolist() == [1.5] * 16


def test_plan_tree_keeps_leaves_already_in_place_and_lays_out_the_rest_after():
    buffer = np.zeros(4096, np.uint8)
    place = Arena(buffer)
    inside = place.take((3, 5), np.dtype(np.int32))
    inside[...] = np.arange(15).reshape(3, 5)
    outside = np.arange(6, dtype=np.float64)
    tree = {"in": inside, "out": outside, "view": inside[:, ::2]}  # a strided view is copied
    plan = plan_tree(tree, in_place=(buffer, place.used))
    assert [offset for _, offset in plan.sources][0] >= place.used
    assert len(plan.sources) == 2  # "out" and the strided view; "in" is not copied
    assert plan.nbytes == inside.nbytes + outside.nbytes + inside[:, ::2].nbytes
    write_leaves(plan, memoryview(buffer))
    back = read_tree(plan.spec, buffer, copy=False)
    assert back["in"].tolist() == inside.tolist()
    assert back["out"].tolist() == outside.tolist()
    assert back["view"].tolist() == inside[:, ::2].tolist()
