"""A cold full-permutation epoch's first batch comes as byte ranges, not after whole shards:
with every response slowed to 8 KiB per 0.1 s, a whole shard takes over 8 s to arrive while
the first batch's samples (about 110 kB each) come in about 1.5 s; the epoch's batches are
exactly those of local files, and the ranges are the first batch's samples only."""

from __future__ import annotations

import time

import numpy as np

from shardstream import Loader


def _loader(source, **remote):
    return (
        Loader(source, seed=11, **remote)
        .batch(8)
        .shuffle()
        .pytorch(num_workers=2, tensors=["label"])
    )


def _plain(batch):
    return {k: np.asarray(v).tolist() for k, v in batch.items()}


def test_first_batch_of_a_cold_full_permutation_is_fetched_as_ranges(http, served_root, tmp_path):
    local = [_plain(b) for b in _loader(served_root / "images" / "i.manifest")]
    shards = sorted(p for p in (served_root / "images").glob("i-*.msgpack"))
    slowest = min(p.stat().st_size for p in shards[:-1])  # the last shard holds one sample
    http.trickle_s = 0.1
    started = time.monotonic()
    loader = _loader(
        f"{http.url}/images/i.manifest", cache_dir=tmp_path / "cache", prefetch_shards=1
    )
    batches = iter(loader)
    first = _plain(next(batches))
    first_s = time.monotonic() - started
    http.trickle_s = 0.0
    rest = [_plain(b) for b in batches]
    loader.close()
    whole_shard_s = (slowest // 8192) * 0.1  # the server's own pauses for one whole shard
    assert whole_shard_s > 8 and first_s < whole_shard_s - 2, first_s
    assert [first, *rest] == local
    data = sum(http.gets[f"/images/{p.name}"] for p in shards)
    # each shard whole once, the first batch's 8 samples, and sample 0 read at opening
    assert data == len(shards) + 8 + 1
    assert len(list((tmp_path / "cache").rglob(".stamp"))) == len(shards)
