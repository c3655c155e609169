"""create_dataloader and DataModule under a real gloo process group of world size 2."""

from __future__ import annotations

import pytest
from torch.utils.data import DistributedSampler as TorchDistributedSampler

from ...contracts.dist_harness import run_world
from . import dist_jobs
from .data import IndexDataset

WORLD = 2


@pytest.fixture(scope="module")
def ranks():
    """Per-rank results of one real two-process run."""
    return run_world(WORLD, dist_jobs.helios_job)


def torch_order(rank: int, epoch: int, drop_last: bool) -> list[int]:
    sampler = TorchDistributedSampler(
        IndexDataset(dist_jobs.SIZE),
        num_replicas=WORLD,
        rank=rank,
        shuffle=True,
        seed=dist_jobs.SEED,
        drop_last=drop_last,
    )
    sampler.set_epoch(epoch)
    return list(sampler)


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("drop_last", [False, True])
def test_distributed_sampler_is_chosen_and_splits_each_epoch(ranks, workers, drop_last):
    per_rank = 6 if drop_last else 7  # 13 samples: cut to 12 or padded to 14
    for rank, result in enumerate(ranks):
        record = result[f"{workers}/{drop_last}"]
        assert {k: record[k] for k in ("type", "rank", "num_replicas", "seed", "drop_last")} == {
            "type": "ResumableDistributedSampler",
            "rank": rank,
            "num_replicas": WORLD,
            "seed": dist_jobs.SEED,
            "drop_last": drop_last,
        }
        assert record["batches"] == (3 if drop_last else 4)
        for epoch in dist_jobs.EPOCHS:
            expected = torch_order(rank, epoch, drop_last)
            assert len(expected) == per_rank
            assert record[f"epoch{epoch}"] == expected
    for epoch in dist_jobs.EPOCHS:
        union = sorted(sum((r[f"{workers}/{drop_last}"][f"epoch{epoch}"] for r in ranks), []))
        if drop_last:
            assert len(union) == 12 and len(set(union)) == 12  # one sample cut, none repeated
        else:
            assert set(union) == set(range(dist_jobs.SIZE)) and len(union) == 14  # one padded


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("drop_last", [False, True])
def test_distributed_start_iter_counts_samples_not_batches(ranks, workers, drop_last):
    """helios passes no batch_size to the distributed sampler (kept quirk)."""
    for rank, result in enumerate(ranks):
        record = result[f"{workers}/{drop_last}"]
        assert record["batch_size"] == 1
        epoch1 = torch_order(rank, 1, drop_last)
        assert record["resumed"] == epoch1[dist_jobs.RESUME_AT :]  # 2 samples, not 2 batches
        assert len(record["resumed"]) == len(epoch1) - 2


def test_data_module_takes_the_distributed_flag(ranks):
    for rank, result in enumerate(ranks):
        assert result["module"] == {
            "type": "ResumableDistributedSampler",
            "num_replicas": WORLD,
            "rank": rank,
            "indices": torch_order(rank, 0, False),
        }
