"""Run in a fresh interpreter: restore sampler states from a JSON file and print what follows.

Usage: ``python -m tests.order.samplers.child JOBS.json``; each job is
``{"name", "kwargs", "state", "count"}``; prints a JSON list with each job's next ``count`` items.
"""

from __future__ import annotations

import json
import sys

from tests.contracts.stateful import Run
from tests.order.samplers.cases import build, iterate


def main(path: str) -> None:
    with open(path) as file:
        jobs = json.load(file)
    results = []
    for job in jobs:
        sampler = build(job["name"], job["kwargs"])
        sampler.load_state_dict(job["state"])
        results.append(Run(sampler, iterate).take(job["count"]))
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
