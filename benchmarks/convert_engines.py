"""The engine rows of ``bench_convert.py``: Ray vs local engine vs LitData vs MosaicML, one run.

On the same demo images, with and without re-encoding (max side 512, quality 90), each writer
converts ``root`` into shards of about the same size, timed outputs on tmpfs, the writers
timed in rounds (one run of each per round) so that the shared machine's load drifts evenly:

- shardstream's local engine: ``convert(..., shard_samples=N)`` (worker processes chosen as
  ``shardstream write`` chooses them);
- shardstream's Ray engine: the same with ``engine="ray"`` on a local Ray cluster started once
  before the timed runs (its start-up is reported as a fixed cost, not timed in the rate); the
  two outputs are compared byte for byte;
- LitData ``optimize()`` with one worker process per core, each item read (and re-encoded with
  the same :func:`~shardstream.write.transcode.transcode_image`) in its workers;
- MosaicML ``MDSWriter``: one writer fed by a process pool that reads (and re-encodes) the
  images, as its documentation suggests for parallel preprocessing.

Ray fixed costs, measured in the same run: cluster start-up and shut-down (``ray.init`` of a
local cluster), per-task scheduling (a round of no-op tasks), and result traffic (a task
returning 4 MiB, as the streamed mode returns packed samples; shard tasks return ~200 bytes).
"""

from __future__ import annotations

import functools
import os
import shutil
import statistics
import time
from collections.abc import Callable
from multiprocessing import Pool
from pathlib import Path
from typing import Any

from harness import Measurement, Row, Table, measure

from shardstream.sets.imagefolder import scan_folder
from shardstream.write.conversion import convert, default_workers
from shardstream.write.transcode import transcode_image

__all__ = ["engine_rows", "ray_fixed_costs"]

TRANSCODE = {"max_side": 512, "quality": 90}


def _load(path: str, transcode: bool) -> bytes:
    data = Path(path).read_bytes()
    return transcode_image(data, **TRANSCODE) if transcode else data


def _litdata_item(item: tuple[str, int, str], transcode: bool) -> dict[str, Any]:
    key, label, path = item
    return {"key": key, "image": _load(path, transcode), "label": label}


def litdata_optimize(items: list, out: Path, transcode: bool, shard_bytes: int) -> None:
    """LitData ``optimize()`` of ``items`` ((key, label, path)), one worker per core."""
    from litdata import optimize

    shutil.rmtree(out, ignore_errors=True)
    optimize(
        fn=functools.partial(_litdata_item, transcode=transcode),
        inputs=items,
        output_dir=str(out),
        chunk_bytes=shard_bytes,
        num_workers=default_workers(),
        verbose=False,
        mode="overwrite",
    )


def _mds_item(item: tuple[str, int, str], transcode: bool) -> dict[str, Any]:
    key, label, path = item
    return {"key": key, "image": _load(path, transcode), "label": label}


def mds_write(items: list, out: Path, transcode: bool, shard_bytes: int) -> None:
    """MosaicML ``MDSWriter`` fed by a process pool (one process per core) reading the items."""
    from streaming import MDSWriter

    shutil.rmtree(out, ignore_errors=True)
    columns = {"key": "str", "image": "bytes", "label": "int"}
    with Pool(default_workers()) as pool, MDSWriter(out=str(out), columns=columns,
                                                    size_limit=shard_bytes) as writer:  # fmt: skip
        for sample in pool.imap(functools.partial(_mds_item, transcode=transcode), items, 32):
            writer.write(sample)


def shardstream_engine(root: Path, out: Path, engine: str, transcode: bool, shard: int) -> None:
    """``shardstream write imagefolder ROOT -o OUT --shard-samples N [--engine ray]``."""
    convert(
        scan_folder(root).items,
        out / "set.manifest",
        shard_samples=shard,
        engine="ray" if engine == "ray" else "local",
        overwrite=True,
        progress=False,
        max_side=TRANSCODE["max_side"] if transcode else None,
        quality=TRANSCODE["quality"] if transcode else None,
    )


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _spread(m: Any) -> str:
    return f"median {m.median:.2f} s (min {min(m.seconds):.2f}, max {max(m.seconds):.2f})"


def _interleaved(
    writers: dict[str, Callable[[], None]], count: int, repeats: int, warmup: int
) -> dict[str, Measurement]:
    """Time every writer ``repeats`` times in rounds (one run of each per round), so a change
    in the shared machine's load falls on all of them alike."""
    for _ in range(warmup):
        for run in writers.values():
            run()
    seconds: dict[str, list[float]] = {name: [] for name in writers}
    for _ in range(repeats):
        for name, run in writers.items():
            seconds[name] += measure(run, items=count, repeats=1, warmup=0).seconds
    return {name: Measurement(seconds[name], count) for name in writers}


def ray_fixed_costs(repeats: int) -> dict[str, float]:
    """Seconds of a local cluster's start-up and shut-down, per no-op task, per 4 MiB result."""
    import ray

    starts, stops = [], []
    for _ in range(max(1, min(repeats, 2))):
        begin = time.perf_counter()
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
        starts.append(time.perf_counter() - begin)
        begin = time.perf_counter()
        ray.shutdown()
        stops.append(time.perf_counter() - begin)
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    noop = ray.remote(lambda: None)
    payload = ray.remote(lambda: b"\0" * (4 << 20))
    ray.get([noop.remote() for _ in range(50)])  # workers started
    tasks = 400
    per_task = measure(lambda: ray.get([noop.remote() for _ in range(tasks)]), items=tasks,
                       repeats=repeats)  # fmt: skip
    results = 20
    traffic = measure(lambda: ray.get([payload.remote() for _ in range(results)]), items=results,
                      nbytes=results * (4 << 20), repeats=repeats)  # fmt: skip
    return {
        "start": statistics.median(starts),
        "stop": statistics.median(stops),
        "per_task": per_task.median / tasks,
        "result_mb_per_s": traffic.mb_per_s,
    }


def engine_rows(
    table: Table, root: Path, write_dir: Path, count: int, repeats: int, shard: int
) -> None:
    """Add the engine comparison rows to ``table`` (with and without re-encoding)."""
    import ray

    costs = ray_fixed_costs(repeats)  # leaves a local cluster running for the Ray engine
    print(
        f"Ray fixed costs: local cluster start {costs['start']:.2f} s, shut-down "
        f"{costs['stop']:.2f} s; per task (no-op, {default_workers()} CPUs) "
        f"{costs['per_task'] * 1e3:.2f} ms; result traffic {costs['result_mb_per_s']:,.0f} MB/s "
        f"(4 MiB results)",
        flush=True,
    )
    scanned = scan_folder(root).items
    plain = [(item.key, item.label, item.source) for item in scanned]
    shard_bytes = max(
        1 << 20, sum(Path(p).stat().st_size for _, _, p in plain) // max(1, -(-count // shard))
    )
    try:
        for transcode in (False, True):
            label = "re-encode 512px q90" if transcode else "original bytes"
            runs: dict[str, Any] = {}
            writers: dict[str, Callable[[], None]] = {
                "local": functools.partial(
                    shardstream_engine, root, write_dir / "local", "local", transcode, shard
                ),
                "ray": functools.partial(
                    shardstream_engine, root, write_dir / "ray", "ray", transcode, shard
                ),
                "litdata": functools.partial(
                    litdata_optimize, plain, write_dir / "litdata", transcode, shard_bytes
                ),
                "mds": functools.partial(
                    mds_write, plain, write_dir / "mds", transcode, shard_bytes
                ),
            }
            runs = _interleaved(writers, count, repeats, warmup=0 if transcode else 1)
            same = _files(write_dir / "local") == _files(write_dir / "ray")
            print(
                f"   {label}: " + "; ".join(f"{n} {_spread(m)}" for n, m in runs.items())
                + f"; Ray output {'byte-identical to local' if same else 'DIFFERS'}",
                flush=True,
            )  # fmt: skip
            peer = max(runs["litdata"].items_per_s, runs["mds"].items_per_s)
            peer_name = (
                "LitData" if runs["litdata"].items_per_s >= runs["mds"].items_per_s else "MDS"
            )
            table.add(Row(f"{label}: Ray engine (peer: local engine)", runs["local"].items_per_s,
                          runs["ray"].items_per_s, "samples/s", target=0.9,
                          note=f"{default_workers()} CPUs, 1 node"))  # fmt: skip
            table.add(Row(f"{label}: local engine (peer: {peer_name})", peer,
                          runs["local"].items_per_s, "samples/s", target=1.2))  # fmt: skip
            table.add(Row(f"{label}: Ray engine (peer: {peer_name})", peer,
                          runs["ray"].items_per_s, "samples/s", target=1.2))  # fmt: skip
            table.add(Row(f"{label}: LitData optimize()", None, runs["litdata"].items_per_s,
                          "samples/s", note="info"))  # fmt: skip
            table.add(Row(f"{label}: MosaicML MDSWriter", None, runs["mds"].items_per_s,
                          "samples/s", note="info"))  # fmt: skip
    finally:
        ray.shutdown()
        for name in ("local", "ray", "litdata", "mds"):
            shutil.rmtree(write_dir / name, ignore_errors=True)
    os.environ.pop("RAY_ADDRESS", None)
