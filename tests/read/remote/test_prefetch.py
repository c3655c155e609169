"""The prefetcher stays a bounded number of shards ahead of the readers and keeps going however
the readers' opens interleave with its downloads."""

from __future__ import annotations

import time

import numpy as np

from shardstream.read.remote.prefetch import ShardPrefetcher
from shardstream.read.remote.reader import open_remote


def wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_prefetcher_follows_readers_that_opened_a_shard_before_it_stored_it(http, tmp_path):
    reader = open_remote(
        f"{http.url}/images/i.manifest", cache_dir=tmp_path / "cache", cache_limit=1 << 30
    )
    remote, shards = reader.remote, reader.shards
    remote.mode = "shards"
    order = np.arange(len(shards))[::-1].copy()
    remote.local(shards[int(order[0])].spec)  # a reader opens the first shard itself
    prefetcher = ShardPrefetcher(remote=remote, shards=shards, use_order=order, ahead=1)
    try:
        for position, number in enumerate(order.tolist()):
            remote.local(shards[number].spec)  # a reader reads on from the shard (held open)
            if position + 1 < len(order):  # so one more shard comes, whoever stored this one
                ahead = int(order[position + 1])
                assert wait_for(lambda a=ahead: a in prefetcher.fetched), prefetcher.fetched
        assert sorted(prefetcher.fetched) == sorted(order.tolist())
        assert prefetcher.errors == []
    finally:
        prefetcher.stop()
        prefetcher.join(10)
        reader.close()


def test_prefetcher_never_runs_more_than_ahead_shards_past_the_readers(http, tmp_path):
    reader = open_remote(
        f"{http.url}/images/i.manifest", cache_dir=tmp_path / "cache", cache_limit=1 << 30
    )
    remote, shards = reader.remote, reader.shards
    order = np.arange(len(shards))
    prefetcher = ShardPrefetcher(remote=remote, shards=shards, use_order=order, ahead=2)
    try:
        assert wait_for(lambda: len(prefetcher.fetched) == 2)
        time.sleep(0.3)  # no reader opened anything: it stays at two
        assert sorted(prefetcher.fetched) == [0, 1]
    finally:
        prefetcher.stop()
        prefetcher.join(10)
        reader.close()


def test_the_first_batchs_shards_are_fetched_before_any_other(http, tmp_path):
    """With ``first=2`` the two shards the first batch needs are stored before any other
    download starts (so that they do not share the link); then the others come eight at once."""
    reader = open_remote(f"{http.url}/images/i.manifest", cache_dir=tmp_path / "cache")
    remote, shards = reader.remote, reader.shards
    order = np.array([5, 2, 0, 1, 3, 4, 6])
    http.trickle_s = 0.01  # downloads that overlap if they may
    prefetcher = ShardPrefetcher(remote=remote, shards=shards, use_order=order, ahead=4, first=2)
    try:
        prefetcher.join(60)
        assert sorted(prefetcher.fetched[:2]) == [2, 5]
        assert sorted(prefetcher.fetched) == list(range(7)) and prefetcher.errors == []
    finally:
        http.trickle_s = 0.0
        prefetcher.stop()
        prefetcher.join(10)
        reader.close()
