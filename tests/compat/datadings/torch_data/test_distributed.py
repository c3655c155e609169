"""IterableDataset under real torch.distributed (gloo on 127.0.0.1), world sizes 1, 2 and 3.

One launch per world size runs every case on every rank with 0 and 2 loader workers; datadings'
own IterableDataset runs next to ours in the same ranks as the oracle.

What datadings does when the size does not divide: the shards still partition the data set, so
each epoch every sample is read exactly once across ranks and workers, but ranks get shards of
different lengths (13 samples on 2 ranks: 6 and 7), i.e. different numbers of batches per epoch.
A training loop with one collective per batch would then hang on the rank with fewer batches;
the ranks only run a per-batch collective where the counts are equal (12 samples).
"""

from __future__ import annotations

import itertools

import pytest

from shardstream.compat.datadings.shards import shard_bounds

from ....contracts.dist_harness import run_world
from . import dist_jobs
from .common import write_numbered

SIZES = (12, 13)  # 12: equal shards for every world size and worker count; 13: never


@pytest.fixture(scope="module", params=(1, 2, 3), ids=lambda w: f"world{w}")
def world(request, tmp_path_factory):
    """(world size, per-rank results) of one real run."""
    root = tmp_path_factory.mktemp(f"world{request.param}")
    paths = {n: str(write_numbered(root / f"n{n}.msgpack", n)) for n in SIZES}
    return request.param, run_world(request.param, dist_jobs.iterable_job, paths)


def test_streams_equal_datadings_and_cover_each_epoch_once(world):
    size, results = world
    for n, workers in itertools.product(SIZES, dist_jobs.WORKERS):
        for result in results:
            assert result[f"ours/{n}/{workers}"] == result[f"datadings/{n}/{workers}"]
        for epoch in range(dist_jobs.EPOCHS):
            seen = list(
                itertools.chain(*(sum(r[f"ours/{n}/{workers}"][epoch], []) for r in results))
            )
            assert sorted(seen) == list(range(n)), (n, workers, epoch)  # exactly once


def split_round_robin(batches, lengths, batch_size):
    """Undo the loader's merge: worker k delivered ceil(lengths[k] / batch_size) batches in turn."""
    left = [-(-n // batch_size) for n in lengths]
    streams = [[] for _ in lengths]
    worker = 0
    for batch in batches:
        while left[worker] == 0:
            worker = (worker + 1) % len(lengths)
        streams[worker] += batch
        left[worker] -= 1
        worker = (worker + 1) % len(lengths)
    return streams


def test_each_rank_reads_its_rotated_shards(world):
    size, results = world
    for n, workers in itertools.product(SIZES, dist_jobs.WORKERS):
        w = max(1, workers)
        for rank, result in enumerate(results):
            for epoch, batches in enumerate(result[f"ours/{n}/{workers}"]):
                shards = [
                    shard_bounds(n, size * w, ((rank + epoch) * w + k) % (size * w))
                    for k in range(w)
                ]
                expected = [list(range(*bounds)) for bounds in shards]
                lengths = [len(e) for e in expected]
                assert split_round_robin(batches, lengths, dist_jobs.BATCH_SIZE) == expected


def test_non_divisible_sizes_give_ranks_different_lengths(world):
    size, results = world
    for result in results:
        assert result["lengths/12"] == [12 // size] * size
        assert result["lengths/13"] == [stop - start for start, stop in rank_shards(13, size)]
    if size > 1:
        assert len(set(results[0]["lengths/13"])) == 2  # e.g. [6, 7] or [4, 5, 4]


def rank_shards(n, size):
    return [shard_bounds(n, size, rank) for rank in range(size)]


def test_resumed_runs_continue_each_rank_stream(world):
    size, results = world
    for n, workers in itertools.product(SIZES, dist_jobs.WORKERS):
        for result in results:
            reference = sum(result[f"ours/{n}/{workers}"], [])
            resumed = result[f"resumed/{n}/{workers}"]
            k = dist_jobs.RESUME_AFTER
            assert resumed[: len(reference) - k] == reference[k:], (n, workers)
