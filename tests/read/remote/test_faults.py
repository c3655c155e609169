"""Faults of the storage: a share of failing or reset requests, a server that goes away for a
few seconds mid-epoch, and a permanent 403 (a typed error naming the URL, quickly)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from shardstream import Loader
from shardstream.errors import RemoteStorageError, SampleError
from shardstream.read.open import open_dataset


def epoch(source, workers: int = 0, **remote) -> list:
    loader = (
        Loader(source, seed=4, **remote)
        .batch(6)
        .shuffle(buffer_size=0.5)
        .pytorch(tensors=["label"], num_workers=workers)
    )
    return [{k: np.asarray(v).tolist() for k, v in b.items()} for b in loader]


@pytest.mark.parametrize(("fault", "workers"), [(503, 0), ("reset", 2)])
def test_a_share_of_failing_requests_gives_identical_batches(
    http, served_root, tmp_path, fault, workers
):
    http.fail_every, http.fail_with = 3, fault
    got = epoch(f"{http.url}/images/i.manifest", workers=workers, cache_dir=tmp_path)
    assert http.failed >= 3
    assert got == epoch(served_root / "images" / "i.manifest", workers=workers)


def test_byte_range_reads_survive_failing_requests(http, served_root, tmp_path):
    http.fail_every, http.fail_with = 2, "reset"
    reader = open_dataset(f"{http.url}/varied/v.manifest", cache_dir=tmp_path)
    local = open_dataset(served_root / "varied" / "v.manifest")
    assert reader.getitems(range(40), raw=True) == local.getitems(range(40), raw=True)
    assert http.failed >= 10


def test_server_gone_for_seconds_mid_epoch_is_survived(http, served_root, tmp_path):
    loader = (
        Loader(f"{http.url}/images/i.manifest", seed=4, cache_dir=tmp_path, prefetch_shards=1)
        .batch(6)
        .pytorch(tensors=["label"])
    )
    it = iter(loader)
    got = [next(it)]
    back = http.go_away(2.0)
    started = time.monotonic()
    got += list(it)
    back.join()
    assert time.monotonic() - started >= 1.5  # it did wait for the server
    want = list(
        Loader(served_root / "images" / "i.manifest", seed=4).batch(6).pytorch(tensors=["label"])
    )
    assert [b["index"].tolist() for b in got] == [b["index"].tolist() for b in want]
    assert [b["label"].tolist() for b in got] == [b["label"].tolist() for b in want]


def test_permanent_403_raises_a_typed_error_naming_the_url_quickly(http, tmp_path):
    http.forbidden = {"/images/i-00002.msgpack", "/varied/v.manifest"}
    started = time.monotonic()
    with pytest.raises(RemoteStorageError, match=r"/varied/v\.manifest: read: access denied"):
        open_dataset(f"{http.url}/varied/v.manifest", cache_dir=tmp_path)
    loader = Loader(f"{http.url}/images/i.manifest", seed=1, cache_dir=tmp_path).batch(8)
    with pytest.raises(SampleError) as info:  # the engine names the sample, the cause the URL
        list(loader.pytorch(tensors=["label"]))
    cause = info.value.__cause__
    assert isinstance(cause, RemoteStorageError)
    assert cause.url == f"{http.url}/images/i-00002.msgpack"
    assert "access denied" in str(cause) and "403" in str(cause)
    assert time.monotonic() - started < 10
