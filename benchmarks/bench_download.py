"""Whole-shard downloads into the node-local cache, client CPU per MB: the lean client
(:mod:`shardstream.read.remote.download`) against the s3fs path, and a plain boto3 GET of every
shard into memory for reference, from moto's S3 server (its own process) on 127.0.0.1.

Each run downloads every shard of ``--manifest`` (``bench_remote.py``'s packed set by default;
run that once first) with ``--threads`` threads into a fresh cache, as the Loader's prefetcher
does (:meth:`RemoteSet.ensure`), and reports per mode the medians over ``--repeats`` runs (with
their spread) of: images per second, this process's user and system CPU in ms per MB, and the
server's CPU in ms per MB.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_remote import _Moto  # noqa: E402

from shardstream.format.manifest import load_manifest  # noqa: E402
from shardstream.read.open import open_dataset  # noqa: E402

_CLOCK = os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--manifest", type=Path, default=Path("bench-data/remote/ss-20000/demo.manifest")
    )
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", default="lean,s3fs,boto3")
    args = parser.parse_args(argv)
    shards = load_manifest(args.manifest).shards
    images = sum(s.samples for s in shards)
    megabytes = sum(s.bytes for s in shards) / 1e6
    print(f"{images} images, {megabytes:.0f} MB in {len(shards)} shards, {args.threads} threads")
    server = _Moto()
    try:
        server.put_folder(args.manifest.parent, "ss")
        os.environ["AWS_ENDPOINT_URL"] = server.endpoint
        modes = [m for m in args.modes.split(",") if m]
        runs: dict[str, list[tuple[float, float, float, float]]] = {m: [] for m in modes}
        for _ in range(args.repeats):
            for mode in modes:  # interleaved: a drift of the machine hits every mode alike
                runs[mode].append(_run(mode, args, server, args.manifest.name))
        print(f"{'mode':8} {'img/s':>16} {'user ms/MB':>16} {'sys ms/MB':>16} {'server ms/MB':>16}")
        for mode, got in runs.items():
            columns = [
                [images / r[0] for r in got],
                [r[1] * 1e3 / megabytes for r in got],
                [r[2] * 1e3 / megabytes for r in got],
                [r[3] * 1e3 / megabytes for r in got],
            ]
            cells = [f"{np.median(c):8.2f} ±{max(c) - min(c):6.2f}" for c in columns]
            cells[0] = f"{np.median(columns[0]):8,.0f} ±{max(columns[0]) - min(columns[0]):5,.0f}"
            print(f"{mode:8} " + " ".join(f"{c:>16}" for c in cells))
    finally:
        server.close()
    return 0


def _server_cpu(server: _Moto) -> float:
    with open(f"/proc/{server._proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK


def _run(
    mode: str, args: argparse.Namespace, server: _Moto, name: str
) -> tuple[float, float, float, float]:
    """One download of every shard: (wall s, user s, system s, server s)."""
    cache = Path(tempfile.mkdtemp(prefix="bench-download-"))
    try:
        os.environ["SHARDSTREAM_LEAN_DOWNLOADS"] = "0" if mode == "s3fs" else "1"
        if mode == "boto3":
            import boto3

            client = boto3.client("s3", endpoint_url=server.endpoint)
            keys = [f"ss/{Path(s.path).name}" for s in load_manifest(args.manifest).shards]

            def work() -> None:
                with ThreadPoolExecutor(args.threads) as pool:
                    for _ in pool.map(
                        lambda k: client.get_object(Bucket="bench", Key=k)["Body"].read(), keys
                    ):
                        pass

        else:
            reader = open_dataset(f"s3://bench/ss/{name}", cache_dir=cache)
            remote = reader.remote
            specs = [shard.spec for shard in reader.shards]

            def work() -> None:
                with ThreadPoolExecutor(args.threads) as pool:
                    list(pool.map(remote.ensure, specs))

        before = resource.getrusage(resource.RUSAGE_SELF)
        server_before = _server_cpu(server)
        started = time.perf_counter()
        work()
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        server_cpu = _server_cpu(server) - server_before
        return (
            wall,
            after.ru_utime - before.ru_utime,
            after.ru_stime - before.ru_stime,
            server_cpu,
        )
    finally:
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
