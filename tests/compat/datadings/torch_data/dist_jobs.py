"""The job every rank runs in ``test_distributed.py`` (imported by the spawned processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from datadings.reader import MsgpackReader as DatadingsMsgpackReader
from datadings.torch import IterableDataset as DatadingsIterableDataset

from shardstream import MsgpackReader
from shardstream.compat.datadings.torch_data import IterableDataset

from .common import make_loader, run_epochs

WORKERS = (0, 2)
EPOCHS = 3
BATCH_SIZE = 2
RESUME_AFTER = 3


def iterable_job(rank: int, world_size: int, paths: dict[int, str]) -> dict[str, Any]:
    """Per size and worker count: our epochs, datadings' epochs, and a resumed run."""
    results: dict[str, Any] = {}
    for n, path in paths.items():
        for workers in WORKERS:
            ours = IterableDataset(MsgpackReader(path))
            assert (ours.rank, ours.world_size) == (rank, world_size)  # from the process group
            loader = make_loader(ours, num_workers=workers, batch_size=BATCH_SIZE)
            lockstep = n % (world_size * max(1, workers) * BATCH_SIZE) == 0
            epochs = []
            for _ in range(EPOCHS):
                batches = []
                for batch in loader:
                    batches.append(batch["i"].tolist())
                    if lockstep:  # equal batch counts on every rank: a per-batch collective is safe
                        dist.all_reduce(torch.ones(1))
                epochs.append(batches)
            results[f"ours/{n}/{workers}"] = epochs
            theirs = DatadingsIterableDataset(DatadingsMsgpackReader(path))
            loader = make_loader(theirs, num_workers=workers, batch_size=BATCH_SIZE)
            results[f"datadings/{n}/{workers}"] = run_epochs(loader, EPOCHS)

            dataset = IterableDataset(MsgpackReader(path))  # no batch_size: 13 fails its check
            state = dataset.state_after(RESUME_AFTER, num_workers=workers, batch_size=BATCH_SIZE)
            resumed = IterableDataset(MsgpackReader(path))
            resumed.load_state_dict(state)
            loader = make_loader(resumed, num_workers=workers, batch_size=BATCH_SIZE)
            results[f"resumed/{n}/{workers}"] = sum(run_epochs(loader, EPOCHS), [])
        counts = torch.tensor([len(IterableDataset(MsgpackReader(path)))])
        gathered = [torch.zeros(1, dtype=torch.long) for _ in range(world_size)]
        dist.all_gather(gathered, counts)  # every rank learns every rank's shard length
        results[f"lengths/{n}"] = [int(t) for t in gathered]
    return results


def dataset_path(root: Path, n: int) -> str:
    """Where the test writes the ``n``-sample dataset."""
    return str(root / f"n{n}.msgpack")
