"""BatchTask, SKIPPED and the thread-safe StageTimer."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest

from shardstream.engine import SKIPPED, STAGES, BatchTask, BatchWork, StageTimer
from shardstream.errors import ConfigError

from .works import RandomWork


def test_skipped_is_one_object_even_after_pickling():
    assert pickle.loads(pickle.dumps(SKIPPED)) is SKIPPED
    assert repr(SKIPPED) == "SKIPPED"
    assert type(SKIPPED)() is SKIPPED


def test_batch_task_is_frozen_and_knows_its_length():
    task = BatchTask(3, 1, np.array([5, 6], dtype=np.int64), np.array([0, 1], dtype=np.int64))
    assert len(task) == 2
    with pytest.raises(AttributeError):
        task.epoch = 2  # type: ignore[misc]
    copy = pickle.loads(pickle.dumps(task))
    assert (copy.sequence, copy.epoch, copy.indices.tolist()) == (3, 1, [5, 6])


def test_the_protocol_is_checkable():
    assert isinstance(RandomWork(), BatchWork)
    assert not isinstance(object(), BatchWork)


def test_stage_timer_sums_per_stage():
    timer = StageTimer()
    timer.add("read", 0.25)
    timer.add("read", 0.5)
    timer.add("collate", 1.0)
    with timer.stage("decode"):
        pass
    totals = timer.totals()
    assert list(totals) == list(STAGES)
    assert totals["read"] == 0.75 and totals["collate"] == 1.0 and totals["transform"] == 0.0
    assert 0 <= totals["decode"] < 0.1


def test_stage_timer_refuses_unknown_stages():
    timer = StageTimer()
    with pytest.raises(ConfigError, match="'fetch'"):
        timer.add("fetch", 1.0)
    with pytest.raises(ConfigError, match="'fetch'"), timer.stage("fetch"):
        pass


def test_stage_timer_is_thread_safe():
    timer = StageTimer()

    def add_many():
        for _ in range(10_000):
            timer.add("transform", 1.0)

    threads = [threading.Thread(target=add_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert timer.totals()["transform"] == 40_000.0
