"""Small deterministic BatchWork implementations for the engine tests (importable by spawn)."""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from shardstream.engine import SKIPPED, BatchTask, StageTimer


def make_tasks(sizes, epoch: int = 0, start: int = 0):
    """Yield BatchTasks of the given sizes over consecutive indices (positions = reversed)."""
    index = start
    for sequence, size in enumerate(sizes):
        indices = np.arange(index, index + size, dtype=np.int64)
        yield BatchTask(sequence, epoch, indices, indices[::-1].copy())
        index += size


class RandomWork:
    """Each sample: values drawn from a generator seeded by (epoch, position); jittered timing."""

    def __init__(self, *, jitter: float = 0.0, skip_every: int = 0, fail_at: int = -1,
                 kill_at: int = -1, sleep_at: int = -1, sleep_s: float = 0.0,
                 collate_fail_at: int = -1) -> None:  # fmt: skip
        self.jitter = jitter
        self.skip_every = skip_every
        self.fail_at = fail_at
        self.kill_at = kill_at
        self.sleep_at = sleep_at
        self.sleep_s = sleep_s
        self.collate_fail_at = collate_fail_at
        self.opened = 0

    def open(self) -> None:
        self.opened += 1

    def sample(self, task: BatchTask, item: int, timer: StageTimer):
        index = int(task.indices[item])
        position = int(task.positions[item])
        with timer.stage("read"):
            if self.jitter:
                time.sleep(self.jitter * ((index * 7919) % 5) / 4)
            if index == self.sleep_at:
                time.sleep(self.sleep_s)
            if index == self.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            if index == self.fail_at:
                raise ValueError(f"boom at {index}")
        if self.skip_every and index % self.skip_every == 0:
            return SKIPPED
        with timer.stage("decode"):
            rng = np.random.default_rng([task.epoch, position])
            image = rng.integers(0, 256, size=(2, 3), dtype=np.uint8)
        with timer.stage("transform"):
            value = rng.standard_normal(4).astype(np.float32)
        return {"index": index, "image": image, "value": value, "key": f"k{index}"}

    def collate(self, task: BatchTask, samples, timer: StageTimer):
        with timer.stage("collate"):
            if any(s["index"] == self.collate_fail_at for s in samples):
                raise KeyError(f"no collate for {self.collate_fail_at}")
            return {
                "index": np.array([s["index"] for s in samples], dtype=np.int64),
                "image": np.stack([s["image"] for s in samples]),
                "value": np.stack([s["value"] for s in samples]),
                "keys": [s["key"] for s in samples],
                "meta": (task.sequence, task.epoch, None),
            }

    def describe(self, index: int) -> str:
        return f"sample {index} (key 'k{index}') of test.msgpack"


class TreeWork:
    """Returns a fixed pytree (built by ``build(sequence)``) for every batch."""

    def __init__(self, build) -> None:
        self.build = build

    def open(self) -> None:
        pass

    def sample(self, task, item, timer):
        return int(task.indices[item])

    def collate(self, task, samples, timer):
        return self.build(task.sequence)

    def describe(self, index: int) -> str:
        return f"sample {index}"


class OpenFails(RandomWork):
    """A work whose open() raises."""

    def open(self) -> None:
        raise OSError("cannot open test.msgpack")


def sized_tree(sequence: int):
    """A batch whose size grows with its sequence number (forces slot growth)."""
    n = 1000 * (4**sequence)
    return {"data": np.arange(n, dtype=np.int32), "sequence": sequence}
