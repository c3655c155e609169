"""A cold full-permutation epoch's first batch comes as byte ranges, not after whole shards:
with every response slowed to 8 KiB per 0.1 s, a whole shard takes over 8 s to arrive while
the first batch's samples (about 110 kB each) come in about 1.5 s; the epoch's batches are
exactly those of local files, and the ranges are the first batch's samples only."""

from __future__ import annotations

import time

import numpy as np
import pytest

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


def _rest(loader):
    """The loader's remaining batches (``for b in loader`` would start the run anew at its
    cursor, and fetch that run's first batch as ranges again)."""
    while True:
        try:
            yield next(loader)
        except StopIteration:
            return


@pytest.mark.parametrize("folder", ["images", "images-old"])
def test_first_batch_of_a_cold_full_permutation_is_fetched_as_ranges(
    http, served_root, tmp_path, folder
):
    local = [_plain(b) for b in _loader(served_root / folder / "i.manifest")]
    shards = sorted(p for p in (served_root / folder).glob("i-*.msgpack"))
    slowest = min(p.stat().st_size for p in shards[:-1])  # the last shard holds one sample
    http.trickle_s = 0.1
    started = time.monotonic()
    loader = _loader(
        f"{http.url}/{folder}/i.manifest", cache_dir=tmp_path / "cache", prefetch_shards=1
    )
    batches = iter(loader)
    first = _plain(next(batches))
    first_s = time.monotonic() - started
    http.trickle_s = 0.0
    rest = [_plain(b) for b in _rest(batches)]
    loader.close()
    whole_shard_s = (slowest // 8192) * 0.1  # the server's own pauses for one whole shard
    assert whole_shard_s > 8 and first_s < whole_shard_s - 2, first_s
    assert [first, *rest] == local
    # the shards each of whose samples is in the first batch (here the last one, of one
    # sample) are not needed whole: no reader opens them
    counts = [len(p.with_name(p.name + ".offsets").read_bytes()) // 8 - 1 for p in shards]
    shard_of = np.repeat(np.arange(len(shards)), counts)
    covered = [
        n for n in range(len(shards)) if set(np.flatnonzero(shard_of == n)) <= set(first["index"])
    ]
    assert covered == [len(shards) - 1] and counts[-1] == 1
    data = sum(http.gets[f"/{folder}/{p.name}"] for p in shards)
    # each other shard whole once, the first batch's 8 samples, and sample 0 read at opening
    assert data == len(shards) - len(covered) + 8 + 1
    assert len(list((tmp_path / "cache").rglob(".stamp"))) == len(shards) - len(covered)
    # a shard's own .offsets comes with its whole download; the offsets the ranges needed
    # came in one request of the set's offsets file, or (an older set) one per shard touched
    offsets = sum(http.gets[f"/{folder}/{p.name}.offsets"] for p in shards)
    if folder == "images":
        assert http.gets["/images/i.set-offsets"] == 1
        assert offsets == len(shards) - len(covered)
    else:
        touched = set(shard_of[first["index"]].tolist())
        assert len(touched) > 2 and http.gets[f"/{folder}/i.set-offsets"] == 0
        # sample 0's shard at opening, the others the first batch touches, then downloads
        assert offsets == 1 + len(touched - {0}) + len(shards) - len(covered)
