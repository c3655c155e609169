"""A transform that hangs ends in LoaderTimeoutError naming the samples, and no worker is left."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from shardstream import FileWriter, MsgpackReader
from shardstream.errors import ConfigError, LoaderTimeoutError
from shardstream.loader.loader import Loader

N = 32
HANG_AT = 13
TIMEOUT = 1.0
#: seconds a timeout may take beyond ``TIMEOUT``: stopping the workers has a 1 s grace period
SLACK = 2.5


@pytest.fixture(scope="module")
def reader(tmp_path_factory) -> MsgpackReader:
    path = tmp_path_factory.mktemp("timeout") / "numbers.msgpack"
    with FileWriter(path, overwrite=True, disable=True) as writer:
        for i in range(N):
            writer.write({"key": f"n{i:02d}", "value": np.full(4, i, dtype=np.int32)})
    return MsgpackReader(path)


class HangAt:
    """A transform that records its process id and sleeps on one sample (in the workers)."""

    def __init__(self, pids: Path, seconds: float) -> None:
        self.pids = pids
        self.seconds = seconds

    def __call__(self, sample: dict) -> dict:
        (self.pids / str(os.getpid())).touch()
        if int(sample["value"][0]) == HANG_AT:
            time.sleep(self.seconds)
        return sample


def process_exists(pid: int) -> bool:
    """Whether ``pid`` exists at all (a zombie counts: it has not been reaped)."""
    return Path(f"/proc/{pid}").exists()


def test_a_hanging_transform_times_out_naming_its_samples(reader, tmp_path):
    loader = (
        Loader(reader, seed=0)
        .transform(HangAt(tmp_path, 120))
        .batch(4)
        .pytorch(num_workers=2, timeout=TIMEOUT)
    )
    received = []
    last = time.monotonic()
    with pytest.raises(LoaderTimeoutError) as caught:
        for batch in loader:
            received.append(batch["index"].tolist())
            last = time.monotonic()
    waited = time.monotonic() - last
    assert waited < TIMEOUT + SLACK
    # batches come in order: every batch before the hung one arrived
    assert received == [list(range(i, i + 4)) for i in range(0, 12, 4)]
    error = caught.value
    assert error.indices == (12, 13, 14, 15)
    assert error.timeout == TIMEOUT
    message = str(error)
    assert "timeout=1.0 s" in message
    assert "batch 3 of epoch 0 (sample 12 (key 'n12')" in message
    assert "sample 13 (key 'n13')" in message  # what the hung worker was loading
    assert "stopped" in message
    pids = [int(p.name) for p in tmp_path.iterdir()]
    assert len(pids) == 2 and os.getpid() not in pids
    assert [pid for pid in pids if process_exists(pid)] == []
    loader.close()


def test_without_workers_the_timeout_raises_too(reader, tmp_path):
    release = threading.Event()

    def hang(sample: dict) -> dict:
        if int(sample["value"][0]) == HANG_AT:
            release.wait(60)
        return sample

    loader = Loader(reader, seed=0).transform(hang).batch(4).numpy(timeout=TIMEOUT)
    start = time.monotonic()
    try:
        with pytest.raises(LoaderTimeoutError, match="key 'n12'") as caught:
            list(loader)
        assert time.monotonic() - start < 3 * TIMEOUT + SLACK
        assert caught.value.indices == (12, 13, 14, 15)
    finally:
        release.set()
        loader.close()


def test_without_timeout_a_slow_batch_is_waited_for(reader, tmp_path):
    loader = Loader(reader, seed=0).transform(HangAt(tmp_path, 1.5)).batch(8).numpy(num_workers=1)
    values = [batch["value"][:, 0].tolist() for batch in loader]
    assert values == [list(range(i, i + 8)) for i in range(0, N, 8)]


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), "1", True])
def test_a_bad_timeout_is_refused(reader, timeout):
    with pytest.raises(ConfigError, match="timeout"):
        Loader(reader).numpy(timeout=timeout)
    with pytest.raises(ConfigError, match="timeout"):
        Loader(reader).pytorch(timeout=timeout)


def test_the_timeout_reaches_the_worker_pool(reader):
    assert Loader(reader).timeout is None
    assert Loader(reader).numpy().timeout is None
    loader = Loader(reader, seed=0).batch(8).numpy(num_workers=1, timeout=30)
    assert loader.timeout == 30.0
    assert [len(batch["value"]) for batch in loader] == [8, 8, 8, 8]
    assert loader._pool.timeout == 30.0
