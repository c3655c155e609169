"""Worker memory: resident-memory growth of DataLoader workers over a 1,000,000-sample epoch.

Run:  python benchmarks/bench_worker_memory.py            (1,000,000 samples; about 30 s)
      python benchmarks/bench_worker_memory.py --quick    (100,000 samples)

The data set (small samples: a 9-character key, 100 random bytes, a label; 131 MB) is written
once and reused from ``bench-data/worker-memory/``. Each run iterates one full epoch through
``torch.utils.data.DataLoader(..., num_workers=2, batch_size=256, persistent_workers=True)``
with forked workers:

- ``iterable``: shardstream's ``IterableDataset(MsgpackReader(path))`` against datadings 3.4.7's
  ``IterableDataset(datadings MsgpackReader(path))`` on the same file;
- ``map+GlobalOrderSampler``: shardstream's map-style ``Dataset`` against datadings' ``Dataset``,
  both fed by shardstream's ``GlobalOrderSampler`` (one shuffled global order per epoch).

Each worker records ``/proc/self/status`` when it starts (``worker_init_fn``, before it reads a
sample); the parent reads ``/proc/<worker pid>/status`` every 64 batches (for the peaks) and
after the last batch, while the persistent workers are still alive. Reported per worker, in MB:
``VmRSS`` (everything resident), ``RssAnon`` (private memory: Python objects, numpy arrays,
copy-on-write copies of the parent's pages) and ``RssFile`` (pages of mapped files: shared
libraries, and shardstream's memory-mapped data file). Pages of the data file that a worker has
touched count in its ``RssFile`` until they are unmapped; they are shared page cache, which the
kernel can drop, and datadings fills the same page cache through ``read`` without counting it
in any process. The IterableDataset unmaps them every 8 MB (``release_bytes``); random access
(the map-style run) maps pages all over the file. The target (issue 4): each worker's resident
memory grows by less than 50 MB over the epoch.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Row, Table  # noqa: E402

import shardstream  # noqa: E402

FIELDS = ("VmRSS", "RssAnon", "RssFile", "VmHWM")
LIMIT_MB = 50.0
BATCH_SIZE = 256
NUM_WORKERS = 2
SAMPLE_EVERY = 64  # batches between reads of the workers' /proc status (peaks)


def build(path: Path, count: int) -> Path:
    """Write ``count`` small samples to ``path`` unless a complete copy is already there."""
    if path.exists() and path.with_name(path.name + ".md5").exists():
        try:
            if len(shardstream.MsgpackReader(path)) == count:
                print(f"reusing {path}", flush=True)
                return path
        except Exception:
            pass
    print(f"writing {count:,} samples to {path} ...", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    payload = rng.integers(0, 256, size=count * 100, dtype=np.uint8).tobytes()
    start = time.perf_counter()
    with shardstream.FileWriter(path, overwrite=True, disable=True) as writer:
        for i in range(count):
            writer.write(
                {"key": f"{i:09d}", "data": payload[i * 100 : (i + 1) * 100], "label": i % 1000}
            )
    print(f"   written in {time.perf_counter() - start:.1f} s", flush=True)
    return path


def status(pid: int | str) -> dict[str, int]:
    """The memory fields of ``/proc/<pid>/status``, in kB."""
    values = dict.fromkeys(FIELDS, 0)
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            name, _, rest = line.partition(":")
            if name in values:
                values[name] = int(rest.split()[0])
    return values


class WorkerProbe:
    """``worker_init_fn`` that records each worker's pid and memory at start in shared memory."""

    def __init__(self, num_workers: int) -> None:
        context = multiprocessing.get_context("fork")
        self.slots = context.Array("q", num_workers * (1 + len(FIELDS)), lock=False)
        self.width = 1 + len(FIELDS)

    def __call__(self, worker_id: int) -> None:
        values = status("self")
        row = [os.getpid(), *(values[f] for f in FIELDS)]
        self.slots[worker_id * self.width : (worker_id + 1) * self.width] = row

    def start(self, worker_id: int) -> tuple[int, dict[str, int]]:
        row = self.slots[worker_id * self.width : (worker_id + 1) * self.width]
        return row[0], dict(zip(FIELDS, row[1:]))


def run_epoch(dataset, sampler=None) -> dict:
    """Iterate one epoch; return samples, seconds and each worker's start/end memory."""
    from torch.utils.data import DataLoader

    probe = WorkerProbe(NUM_WORKERS)
    loader = DataLoader(
        dataset,
        batch_size=BATCH_SIZE,
        sampler=sampler,
        num_workers=NUM_WORKERS,
        persistent_workers=True,
        worker_init_fn=probe,
        multiprocessing_context="fork",
    )
    samples = 0
    peaks = [dict.fromkeys(FIELDS, 0) for _ in range(NUM_WORKERS)]
    started = time.perf_counter()
    for j, batch in enumerate(loader):
        samples += len(batch["label"])
        if j % SAMPLE_EVERY == SAMPLE_EVERY - 1:  # workers have all started by now
            for worker_id, peak in enumerate(peaks):
                for field, value in status(probe.start(worker_id)[0]).items():
                    peak[field] = max(peak[field], value)
    seconds = time.perf_counter() - started
    workers = []
    for worker_id, peak in enumerate(peaks):
        pid, start = probe.start(worker_id)
        end = status(pid)
        peak = {field: max(peak[field], end[field]) for field in FIELDS}
        workers.append((start, end, peak))
    del loader  # shuts the persistent workers down
    return {"samples": samples, "seconds": seconds, "workers": workers}


def growth_mb(start: dict[str, int], end: dict[str, int], field: str) -> float:
    """MB that ``field`` grew from start to ``end`` (``VmHWM`` is compared with start VmRSS)."""
    base = start["VmRSS"] if field == "VmHWM" else start[field]
    return (end[field] - base) / 1024


def report(table: Table, details: list[str], name: str, peer: dict, ours: dict) -> None:
    """Add the rows of one run pair to ``table`` and its per-worker lines to ``details``."""
    for label, result in (("datadings", peer), ("shardstream", ours)):
        for worker_id, (start, end, peak) in enumerate(result["workers"]):
            details.append(
                f"{name:24} {label:12} w{worker_id} "
                + " ".join(
                    f"{start[f] / 1024:10.1f} {end[f] / 1024:8.1f} {growth_mb(start, end, f):+8.1f}"
                    f" {growth_mb(start, peak, f):+8.1f}"
                    for f in ("VmRSS", "RssAnon", "RssFile")
                )
                + f"   {result['samples']:,} samples in {result['seconds']:.1f} s"
            )
    rows = (  # (what, field, 1: at the end / 2: peak, limit, note)
        ("end - start VmRSS", "VmRSS", 1, LIMIT_MB, ""),
        ("peak - start RssAnon", "RssAnon", 2, LIMIT_MB, "private memory"),
        ("peak - start VmRSS", "VmHWM", 2, None, "incl. mapped data-file pages"),
        ("peak - start RssFile", "RssFile", 2, None, "mapped files (shared page cache)"),
    )
    for what, field, which, limit, note in rows:
        for worker_id in range(NUM_WORKERS):
            start_p, *after_p = peer["workers"][worker_id]
            start_o, *after_o = ours["workers"][worker_id]
            table.add(
                Row(
                    f"{name} w{worker_id}: {what}",
                    growth_mb(start_p, after_p[which - 1], field),
                    growth_mb(start_o, after_o[which - 1], field),
                    "MB",
                    limit=limit,
                    lower_is_better=True,
                    note=note,
                )
            )
    table.add(
        Row(
            f"{name}: epoch time",
            peer["seconds"],
            ours["seconds"],
            "s",
            lower_is_better=True,
            note=f"{ours['samples']:,} samples",
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 samples instead of 1,000,000")
    parser.add_argument("--workdir", type=Path, default=Path("bench-data/worker-memory"))
    args = parser.parse_args(argv)
    count = 100_000 if args.quick else 1_000_000

    import datadings
    import torch
    from datadings.reader import MsgpackReader as DatadingsMsgpackReader
    from datadings.torch import Dataset as DatadingsDataset
    from datadings.torch import IterableDataset as DatadingsIterableDataset

    from shardstream.compat.datadings.torch_data import Dataset, IterableDataset
    from shardstream.order.samplers import GlobalOrderSampler

    torch.set_num_threads(1)
    path = build(args.workdir / f"small-{count}.msgpack", count)
    size_mb = path.stat().st_size / 1e6
    print(
        f"shardstream {shardstream.__version__} vs datadings {datadings.__version__}; torch "
        f"{torch.__version__}; {os.cpu_count()} cores; {count:,} samples, {size_mb:.0f} MB data "
        f"file; DataLoader(num_workers={NUM_WORKERS}, batch_size={BATCH_SIZE}, persistent, fork)",
        flush=True,
    )

    table = Table("worker memory over one epoch: shardstream / datadings", "datadings")
    details: list[str] = []
    table.header()

    peer = run_epoch(DatadingsIterableDataset(DatadingsMsgpackReader(str(path))))
    ours = run_epoch(IterableDataset(shardstream.MsgpackReader(path)))
    assert peer["samples"] == ours["samples"] == count
    report(table, details, "iterable", peer, ours)

    sampler = GlobalOrderSampler(sample_count=count, seed=0)
    peer = run_epoch(DatadingsDataset(DatadingsMsgpackReader(str(path))), sampler)
    sampler.set_epoch(0)
    ours = run_epoch(Dataset(shardstream.MsgpackReader(path)), sampler)
    assert peer["samples"] == ours["samples"] == count
    report(table, details, "map+GlobalOrderSampler", peer, ours)

    print("\n== per worker, MB: start / end / end - start / peak - start ==")
    print(
        f"{'run':24} {'library':12} {'':2} "
        + " ".join(
            f"{f[:7] + ' st':>10} {'end':>8} {'growth':>8} {'peak':>8}"
            for f in ("VmRSS", "RssAnon", "RssFile")
        )
    )
    for line in details:
        print(line)
    missed = [row.name for row in table.rows if row.verdict == "MISS"]
    print(f"\ntargets missed: {', '.join(missed) if missed else 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
