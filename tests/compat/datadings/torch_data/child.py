"""Run in a fresh interpreter: restore IterableDataset states and print what the loader yields.

Usage: ``python -m tests.compat.datadings.torch_data.child JOBS.json``; each job is ``{"path", "rank",
"world_size", "num_workers", "batch_size", "drop_last", "state", "epochs"}``; prints a JSON list
with each job's batches (lists of sample numbers) over ``epochs`` epochs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.compat.datadings.torch_data.common import make_loader, numbered_dataset, run_epochs


def main(path: str) -> None:
    with open(path) as file:
        jobs = json.load(file)
    results = []
    for job in jobs:
        dataset = numbered_dataset(
            Path(job["path"]), rank=job["rank"], world_size=job["world_size"]
        )
        dataset.load_state_dict(job["state"])
        loader = make_loader(
            dataset,
            num_workers=job["num_workers"],
            batch_size=job["batch_size"],
            drop_last=job["drop_last"],
        )
        results.append(sum(run_epochs(loader, job["epochs"]), []))
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
