"""Real multi-process runs: torch.distributed with gloo on 127.0.0.1, world sizes 1, 2 and 3.

One launch per world size runs every check on every rank (spawned processes importing torch are
slow, so the checks are batched); the tests below compare what the ranks reported with oracles
computed here: torch's own ``DistributedSampler``, the dinov2 reference loops, and the epoch
orders. Lock-step runs make one collective per batch, so a rank with an extra batch would hang
(and the run would time out).
"""

from __future__ import annotations

import itertools
import warnings
from collections import Counter

import pytest
from torch.utils.data import DistributedSampler as TorchDistributedSampler

from shardstream import GlobalOrderSampler

from ...contracts.dist_harness import run_world
from . import dist_jobs
from .reference import Dinov2Sharded, dinov2_epoch, dinov2_infinite, take

WORLD_SIZES = (1, 2, 3)


@pytest.fixture(scope="module", params=WORLD_SIZES, ids=lambda w: f"world{w}")
def world(request):
    """(world size, per-rank results) of one real run."""
    size = request.param
    return size, run_world(size, dist_jobs.sampler_job)


def _runs(results, name):
    for n, workers in itertools.product(dist_jobs.SIZES, dist_jobs.WORKERS):
        yield n, workers, [r[f"{name}/{n}/{workers}"] for r in results]


def test_epoch_sampler_gives_every_index_exactly_once_per_epoch(world):
    size, results = world
    for n, workers, ranks in _runs(results, "epoch"):
        for e, epoch in enumerate(dist_jobs.EPOCHS):
            streams = [r[e] for r in ranks]
            assert sorted(itertools.chain(*streams)) == list(range(n)), (n, workers, epoch)
            for rank, stream in enumerate(streams):  # default start/step: rank and world size
                assert stream == dinov2_epoch(
                    size=n, sample_count=n, shuffle=True, seed=3, start=rank, step=size, epoch=epoch
                )
            assert max(map(len, streams)) - min(map(len, streams)) <= 1  # dinov2: may differ


@pytest.mark.parametrize(
    ("name", "drop_last"),
    [("distributed-pad", False), ("distributed-drop", True), ("helios-distributed", False)],
)
def test_distributed_samplers_equal_torch_and_cover_each_epoch(world, name, drop_last):
    size, results = world
    for n, workers, ranks in _runs(results, name):
        for e, epoch in enumerate(dist_jobs.EPOCHS):
            streams = [r[e] for r in ranks]
            for rank, stream in enumerate(streams):
                oracle = TorchDistributedSampler(
                    range(n), num_replicas=size, rank=rank, seed=4, drop_last=drop_last
                )
                oracle.set_epoch(epoch)
                assert stream == list(oracle), (name, n, workers, epoch, rank)
            assert len({len(s) for s in streams}) == 1  # equal counts: no rank waits
            counts = Counter(itertools.chain(*streams))
            if drop_last:
                assert sum(counts.values()) == n - n % size and max(counts.values()) == 1
            else:
                assert sorted(counts) == list(range(n))
                assert sum(counts.values()) - n == (-n) % size  # padding, documented


@pytest.mark.parametrize(("name", "drop_last"), [("global-pad", False), ("global-drop", True)])
def test_global_order_sampler_splits_each_epoch_by_position(world, name, drop_last):
    size, results = world
    for n, workers, ranks in _runs(results, name):
        for e, epoch in enumerate(dist_jobs.EPOCHS):
            streams = [r[e] for r in ranks]
            order = GlobalOrderSampler(sample_count=n, seed=5)
            order.set_epoch(epoch)
            order = order.order().tolist()
            count = n // size if drop_last else -(-n // size)
            positions = range(count * size)
            for rank, stream in enumerate(streams):
                assert stream == [order[p % n] for p in positions[rank::size]], (n, workers, epoch)
            taken = Counter(itertools.chain(*streams))
            if drop_last:
                assert sorted(taken) == sorted(order[: count * size]) and max(taken.values()) == 1
            else:
                assert sorted(taken) == list(range(n))
                assert sorted(taken.elements()) == sorted(order + order[: count * size - n])


def test_workers_do_not_change_the_streams(world):
    _, results = world
    for rank in results:
        for key in [k for k in rank if k.endswith("/0")]:
            assert rank[key] == rank[key[:-2] + "/2"], key


def test_infinite_sampler_ranks_are_disjoint_per_pass_and_cover_the_data(world):
    size, results = world
    for n in dist_jobs.SIZES:
        per_rank = [len(range(r, n, size)) for r in range(size)]
        for rank, result in enumerate(results):
            expected = take(
                dinov2_infinite(sample_count=n, shuffle=True, seed=7, start=rank, step=size),
                3 * per_rank[rank],
            )
            assert result[f"infinite/{n}"] == expected
            assert result[f"infinite-loader/{n}"] == expected  # through a DataLoader, 2 workers
        for p in range(dist_jobs.PASSES):
            chunks = [
                results[r][f"infinite/{n}"][p * per_rank[r] : (p + 1) * per_rank[r]]
                for r in range(size)
            ]
            assert sorted(itertools.chain(*chunks)) == list(range(n))


@pytest.mark.parametrize("new", [False, True])
def test_sharded_sampler_ranks_are_disjoint_and_drop_only_the_tail(world, new):
    size, results = world
    for n in dist_jobs.SIZES:
        count = n // size
        for rank, result in enumerate(results):
            reference = Dinov2Sharded(
                sample_count=n, shuffle=True, seed=7, start=rank, step=size, new=new
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                assert result[f"sharded-{new}/{n}"] == take(iter(reference), 3 * count)
        for p in range(dist_jobs.PASSES):
            chunks = [r[f"sharded-{new}/{n}"][p * count : (p + 1) * count] for r in results]
            union = list(itertools.chain(*chunks))
            assert len(set(union)) == len(union) == n - n % size  # disjoint; n % size dropped


def test_elastic_resume_between_2_and_3_real_ranks():
    results = run_world(3, dist_jobs.elastic_job)
    order = results[0]["order"]
    assert results[0]["state_a"]["cursor"] == 6 and results[0]["state_c"]["cursor"] == 6
    a = [results[r]["a"] for r in range(2)]
    b = [results[r]["b"] for r in range(3)]
    assert a == [order[0:6:2], order[1:6:2]]
    assert b == [order[6::3], order[7::3], order[8::3]]
    c = [results[r]["c"] for r in range(3)]
    d = [results[r]["d"] for r in range(2)]
    assert c == [order[0:6:3], order[1:6:3], order[2:6:3]]
    assert d == [order[6::2], order[7::2]]
    for first, second in ((a, b), (c, d)):
        assert sorted(itertools.chain(*first, *second)) == list(range(12))  # once each
