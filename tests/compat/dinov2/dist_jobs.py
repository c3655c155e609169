"""The job the distributed loader test runs on every rank (imported by spawned processes)."""

from __future__ import annotations

import itertools
import multiprocessing
import warnings
from typing import Any

from shardstream.compat.dinov2.loaders import SamplerType, make_data_loader

from .data import IndexDataset

SAMPLE_COUNT = 13
BATCH_SIZE = 2
BATCHES = 9


def loader_job(rank: int, world_size: int) -> dict[str, Any]:
    """Per sampler type and worker count: the sampler's rank/world and the first indices."""
    # This rank was spawned; its loaders fork their workers (spawning them re-imports torch).
    multiprocessing.set_start_method("fork", force=True)
    results: dict[str, Any] = {}
    warnings.filterwarnings("ignore", category=UserWarning)  # pin_memory, dropped samples
    for kind, workers in itertools.product(SamplerType, (0, 2)):
        loader = make_data_loader(
            dataset=IndexDataset(SAMPLE_COUNT),
            batch_size=BATCH_SIZE,
            num_workers=workers,
            seed=7,
            sampler_type=kind,
            drop_last=False,
        )
        sampler = loader.sampler
        if kind is SamplerType.DISTRIBUTED:
            placement = (sampler.rank, sampler.num_replicas)
        else:
            placement = (sampler._start, sampler._step)
        batches = itertools.islice(loader, BATCHES)
        indices = [index for batch in batches for index in batch.tolist()]
        results[f"{kind.name}/{workers}"] = {"placement": placement, "indices": indices}
    return results
