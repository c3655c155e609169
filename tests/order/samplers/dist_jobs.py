"""The jobs that the distributed tests run on every rank (imported by the spawned processes)."""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

from shardstream import (
    DistributedSampler,
    EpochSampler,
    GlobalOrderSampler,
    InfiniteSampler,
    ResumableDistributedSampler,
    ShardedInfiniteSampler,
)

SIZES = (12, 13)  # 12 divides by 1, 2 and 3; 13 by none but 1
WORKERS = (0, 2)
EPOCHS = (0, 1)
BATCH_SIZE = 2
PASSES = 3


class IndexDataset(Dataset):
    """A map-style data set whose sample ``i`` is ``i``."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> int:
        return index


def _lockstep() -> None:
    """One collective per batch, as a DDP step does: a rank with an extra batch would hang."""
    dist.all_reduce(torch.ones(1))


def _epochs(dataset, sampler, num_workers: int, lockstep: bool) -> list[list[int]]:
    loader = DataLoader(
        dataset,
        sampler=sampler,
        batch_size=BATCH_SIZE,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        multiprocessing_context="fork" if num_workers else None,
    )
    out = []
    for epoch in EPOCHS:
        sampler.set_epoch(epoch)
        got: list[int] = []
        for batch in loader:
            got += batch.tolist()
            if lockstep:
                _lockstep()
        out.append(got)
    return out


def sampler_job(rank: int, world_size: int) -> dict[str, Any]:
    """Every finite sampler through a DataLoader (0 and 2 workers), and the infinite ones."""
    results: dict[str, Any] = {}
    for n, workers in itertools.product(SIZES, WORKERS):
        dataset = IndexDataset(n)
        finite = {
            # dinov2's epoch sampler: ranks may differ by one item, so no lock-step collective
            "epoch": (EpochSampler(size=n, sample_count=n, shuffle=True, seed=3), False),
            "distributed-pad": (DistributedSampler(dataset, seed=4), True),
            "distributed-drop": (DistributedSampler(dataset, seed=4, drop_last=True), True),
            "helios-distributed": (
                ResumableDistributedSampler(dataset, seed=4, batch_size=2),
                True,
            ),
            "global-pad": (GlobalOrderSampler(sample_count=n, seed=5), True),
            "global-drop": (GlobalOrderSampler(sample_count=n, seed=5, drop_last=True), True),
        }
        for name, (sampler, lockstep) in finite.items():
            results[f"{name}/{n}/{workers}"] = _epochs(dataset, sampler, workers, lockstep)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="# of dropped samples")
        for n in SIZES:
            per_rank = len(range(rank, n, world_size))
            results[f"infinite/{n}"] = _take(
                InfiniteSampler(sample_count=n, shuffle=True, seed=7), PASSES * per_rank
            )
            for new in (False, True):
                sampler = ShardedInfiniteSampler(
                    sample_count=n, shuffle=True, seed=7, use_new_shuffle_tensor_slice=new
                )
                results[f"sharded-{new}/{n}"] = _take(sampler, PASSES * (n // world_size))
            loader = DataLoader(
                IndexDataset(n),
                sampler=InfiniteSampler(sample_count=n, shuffle=True, seed=7),
                batch_size=1,
                num_workers=2,
                multiprocessing_context="fork",
            )
            results[f"infinite-loader/{n}"] = [
                int(b) for b in itertools.islice(loader, PASSES * per_rank)
            ]
    return results


def elastic_job(rank: int, world_size: int) -> dict[str, Any]:
    """In a world of 3: a 2-rank sub-group runs part of an epoch, 3 ranks finish it; then 3 -> 2."""
    assert world_size == 3
    pair = dist.new_group([0, 1])
    n, seed = 12, 11
    out: dict[str, Any] = {"order": GlobalOrderSampler(sample_count=n, seed=seed).order().tolist()}

    state = None
    if rank < 2:  # phase A: world size 2 consumes 3 items per rank, then "stops"
        sampler = GlobalOrderSampler(sample_count=n, seed=seed, rank=rank, world_size=2)
        iterator = iter(sampler)
        out["a"] = []
        for _ in range(3):
            out["a"].append(next(iterator))
            dist.all_reduce(torch.ones(1), group=pair)
        state = sampler.state_dict()
    box = [state]
    dist.broadcast_object_list(box, src=0)
    out["state_a"] = box[0]

    resumed = GlobalOrderSampler(sample_count=n, seed=seed)  # world size 3 from the group
    resumed.load_state_dict(box[0])  # phase B: world size 3 finishes the epoch
    out["b"] = []
    for index in resumed:
        out["b"].append(index)
        _lockstep()

    sampler = GlobalOrderSampler(sample_count=n, seed=seed)  # phase C: 3 ranks, 2 items each
    iterator = iter(sampler)
    out["c"] = []
    for _ in range(2):
        out["c"].append(next(iterator))
        _lockstep()
    out["state_c"] = sampler.state_dict()
    if rank < 2:  # phase D: world size 2 finishes it
        restored = GlobalOrderSampler(sample_count=n, seed=seed, rank=rank, world_size=2)
        restored.load_state_dict(out["state_c"])
        out["d"] = []
        for index in restored:
            out["d"].append(index)
            dist.all_reduce(torch.ones(1), group=pair)
    return out


def _take(sampler, count: int) -> list[int]:
    return list(itertools.islice(iter(sampler), count))
