"""What the distributed helios tests run on each rank (imported by the spawned processes)."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from shardstream.compat.helios import DataModule, create_dataloader

from .data import IndexDataset

SIZE = 13  # not divisible by the world size 2
BATCH = 2
SEED = 9
EPOCHS = (0, 1)
RESUME_AT = 2  # start_iter after a restart in epoch 1


class DistributedModule(DataModule):
    """Shuffled training set whose params leave ``is_distributed`` to the module."""

    def setup(self) -> None:
        self._add_train_phase(
            IndexDataset(SIZE),
            {"batch_size": BATCH, "shuffle": True, "random_seed": SEED, "pin_memory": False},
        )


def _run(loader, lockstep: bool = True) -> list[int]:
    got: list[int] = []
    for batch in loader:
        got += batch.tolist()
        if lockstep:  # one collective per batch, as a DDP step: an extra batch would hang
            dist.all_reduce(torch.ones(1))
    return got


def helios_job(rank: int, world_size: int) -> dict[str, Any]:
    """create_dataloader(is_distributed=True) and a DataModule in a real process group."""
    out: dict[str, Any] = {}
    for workers in (0, 2):
        for drop_last in (False, True):
            loader, sampler = create_dataloader(
                IndexDataset(SIZE),
                random_seed=SEED,
                batch_size=BATCH,
                shuffle=True,
                drop_last=drop_last,
                is_distributed=True,
                num_workers=workers,
                pin_memory=False,
                multiprocessing_context="fork" if workers else None,
            )
            state = sampler.state_dict()
            record = {
                "type": type(sampler).__name__,
                "rank": sampler.rank,
                "num_replicas": sampler.num_replicas,
                "seed": sampler.seed,
                "drop_last": sampler.drop_last,
                "batch_size": state["batch_size"],
                "batches": len(loader),
            }
            for epoch in EPOCHS:
                sampler.set_epoch(epoch)
                record[f"epoch{epoch}"] = _run(loader)
            # a restart in epoch 1 after RESUME_AT batches, the way helios' trainer resumes
            loader, sampler = create_dataloader(
                IndexDataset(SIZE),
                random_seed=SEED,
                batch_size=BATCH,
                shuffle=True,
                drop_last=drop_last,
                is_distributed=True,
                num_workers=workers,
                pin_memory=False,
                multiprocessing_context="fork" if workers else None,
            )
            sampler.set_epoch(1)
            sampler.start_iter = RESUME_AT
            record["resumed"] = _run(loader, lockstep=False)  # ranks may differ by one batch
            out[f"{workers}/{drop_last}"] = record
    module = DistributedModule()
    module.is_distributed = True
    module.setup()
    loader, sampler = module.train_dataloader()
    out["module"] = {
        "type": type(sampler).__name__,
        "num_replicas": sampler.num_replicas,
        "rank": sampler.rank,
        "indices": _run(loader),
    }
    return out
