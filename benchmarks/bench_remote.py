"""Remote streaming side by side: shardstream, MosaicML Streaming (MDS), LitData and WebDataset
reading the same demo JPEGs from an S3 API server (moto, in its own process) on 127.0.0.1, each
shuffling; optionally through a userspace link shaper (``--shape "20ms,1gbit"``: see
``benchmarks/shaper.py``; latency per direction, rate for the whole link).

Rows (medians of ``--repeats`` runs; spread = max - min):

- raw-bytes epoch throughput with a cold cache (a fresh cache folder each run) and a warm one;
  the time runs from creating the data set / loader to the end of the epoch;
- time to first batch (cold), from creating the data set / loader;
- bytes downloaded per epoch over the set's size with a cache limit of a quarter of the set
  (shardstream's shard-block order; counted by an HTTP server with Range support serving the
  same files, since moto keeps no counts);
- the shuffle statistic of each loader's epoch order (normalised mean displacement, 1.0 for a
  uniform permutation; :func:`shardstream.order.shard_blocks.shuffle_quality`);
- warm cache against local files, and the DINO preset's rate remote (warm) against local over
  ``--dino-batches`` batches after the first.

Next to the figures it prints what the link allows: a raw GET of every shard with 8 threads
(boto3), and for a shaped run the nominal rate, both as images per second of this set.
The peers' converted copies are kept in ``--workdir`` (``mds-N``, ``wds-N``, ``lit-N``).
Peers that are not installed, or fail against the server, are reported as skipped with the
reason.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import Row, Table  # noqa: E402
from shaper import parse_delay, parse_rate  # noqa: E402

import shardstream  # noqa: E402
from shardstream.format.manifest import load_manifest  # noqa: E402
from shardstream.order.shard_blocks import shuffle_quality  # noqa: E402
from shardstream.sets.demo import GENERATOR_VERSION, DemoSet, generate_demo_images  # noqa: E402

SHARD_BYTES = 4 << 20
_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("bench-data/remote"))
    parser.add_argument("--shape", default="", help='"DELAY,RATE", e.g. "20ms,1gbit"')
    parser.add_argument("--peers", default="mds,wds,litdata")
    parser.add_argument("--skip-dino", action="store_true")
    parser.add_argument("--dino-batches", type=int, default=30)
    parser.add_argument("--serve-moto", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_moto:
        return _serve_moto(args.serve_moto)
    args.workdir.mkdir(parents=True, exist_ok=True)
    demo = generate_demo_images(
        args.workdir / f"demo-images-v{GENERATOR_VERSION}-{args.images}",
        num_images=args.images,
        num_classes=10,
        workers=2,
    )
    manifest = _pack(args.workdir, demo)
    shards = load_manifest(manifest).shards
    set_bytes = sum(s.bytes for s in shards)
    print(f"{len(demo.paths)} images, {set_bytes / 1e6:.1f} MB in {len(shards)} shards", flush=True)
    peers = [p for p in args.peers.split(",") if p]
    folders = {"ss": manifest.parent}
    for name in peers:
        try:
            folders[name] = _convert(name, args.workdir, manifest)
        except Exception as e:  # a peer that cannot convert is reported, not fatal
            print(f"  {name}: conversion failed ({type(e).__name__}: {str(e)[:160]})")
    server = _Moto()
    shaper = None
    try:
        for name, folder in folders.items():
            server.put_folder(folder, name)
        endpoint = server.endpoint
        if args.shape:
            shaper = _Shaper(server.port, args.shape)
            endpoint = shaper.endpoint
            print(f"--shape: {shaper.delay * 1e3:g} ms per direction, {shaper.rate / 1e6:.1f} MB/s")
        _use_endpoint(endpoint)
        run = _Runner(args, endpoint, manifest, set_bytes, shaper)
        run.all([p for p in peers if p in folders])
    finally:
        if shaper is not None:
            shaper.close()
        server.close()
    return 0


# --- data and servers ---------------------------------------------------------------------------


def _pack(workdir: Path, demo: DemoSet) -> Path:
    path = workdir / f"ss-{len(demo.paths)}" / "demo.manifest"
    if not path.exists():
        with shardstream.ShardedWriter(path, shard_size=SHARD_BYTES, disable=True) as writer:
            for file, label in zip(demo.paths, demo.labels):
                key = file.relative_to(demo.root).as_posix()
                writer.write({"key": key, "image": file.read_bytes(), "label": label})
    return path


def _convert(name: str, workdir: Path, manifest: Path) -> Path:
    """The peer's copy of the set (written once, into a staging folder renamed at the end)."""
    reader = shardstream.ShardedReader(manifest)
    out = workdir / f"{name}-{len(reader)}"
    if out.is_dir():
        return out
    staging = workdir / f".{name}-{len(reader)}.part-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    started = time.perf_counter()
    if name == "mds":
        from streaming import MDSWriter

        columns = {"key": "str", "image": "bytes", "label": "int"}
        with MDSWriter(out=str(staging), columns=columns, size_limit=SHARD_BYTES) as writer:
            for i in range(len(reader)):
                key, sample = reader.get(i, yield_key=True)
                writer.write({"key": key, "image": sample["image"], "label": sample["label"]})
    elif name == "wds":
        import webdataset as wds

        staging.mkdir()
        pattern = str(staging / "shard-%06d.tar")
        with wds.ShardWriter(pattern, maxsize=SHARD_BYTES, verbose=0) as sink:
            for i in range(len(reader)):
                sample = reader.get(i)
                sink.write(
                    {"__key__": f"{i:08d}", "jpg": sample["image"], "cls": b"%d" % sample["label"]}
                )
    elif name == "litdata":
        import litdata as ld

        ld.optimize(
            fn=_LitItem(manifest),
            inputs=list(range(len(reader))),
            output_dir=str(staging),
            chunk_bytes=SHARD_BYTES,
            num_workers=1,
        )
    else:
        raise ValueError(f"unknown peer {name!r}")
    os.rename(staging, out)
    print(f"  {name}: converted in {time.perf_counter() - started:.0f} s", flush=True)
    return out


class _LitItem:
    """LitData's ``optimize`` function (picklable: spawned workers): sample ``i`` of the set."""

    def __init__(self, manifest: Path) -> None:
        self.manifest = manifest
        self.reader: Any = None

    def __getstate__(self) -> dict:
        return {"manifest": self.manifest, "reader": None}

    def __call__(self, i: int) -> dict:
        if self.reader is None:
            self.reader = shardstream.ShardedReader(self.manifest)
        sample = self.reader.get(i)
        return {"index": i, "image": sample["image"], "label": sample["label"]}


def _serve_moto(port: int) -> int:
    """The ``--serve-moto`` child: moto's S3 server until SIGTERM (objects spill to disk)."""
    import logging
    import signal

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    server.stop()
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Moto:
    """moto's S3 server in a child process of its own (its own interpreter, not the clients')."""

    def __init__(self) -> None:
        self.port = _free_port()
        env = dict(os.environ, MOTO_S3_DEFAULT_KEY_BUFFER_SIZE=str(64 << 10))
        self._proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-moto", str(self.port)],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        if self._proc.stdout is None or self._proc.stdout.readline().strip() != "ready":
            raise RuntimeError("moto did not start")
        self.endpoint = f"http://127.0.0.1:{self.port}"
        os.environ.update(_KEYS, AWS_DEFAULT_REGION="us-east-1")
        import boto3

        self.client = boto3.client("s3", endpoint_url=self.endpoint)
        self.client.create_bucket(Bucket="bench")

    def put_folder(self, folder: Path, prefix: str) -> None:
        files = [p for p in sorted(folder.rglob("*")) if p.is_file()]

        def put(path: Path) -> None:
            key = f"{prefix}/{path.relative_to(folder).as_posix()}"
            self.client.put_object(Bucket="bench", Key=key, Body=path.read_bytes())

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(put, files))

    def close(self) -> None:
        self._proc.terminate()
        self._proc.wait(30)


class _Shaper:
    """``benchmarks/shaper.py`` in front of moto."""

    def __init__(self, port: int, spec: str) -> None:
        delay, rate = spec.split(",")
        self.delay, self.rate = parse_delay(delay), parse_rate(rate)
        shaper = Path(__file__).resolve().parent / "shaper.py"
        target = f"127.0.0.1:{port}"
        command = [sys.executable, str(shaper), "--target", target, "--delay", delay]
        self._proc = subprocess.Popen([*command, "--rate", rate], stdout=subprocess.PIPE, text=True)
        line = self._proc.stdout.readline() if self._proc.stdout else ""
        self.endpoint = f"http://127.0.0.1:{int(line.split()[1])}"

    def close(self) -> None:
        self._proc.terminate()
        self._proc.wait(30)


def _use_endpoint(endpoint: str) -> None:
    """Point every client at ``endpoint`` (environment, which forked workers inherit)."""
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ["S3_ENDPOINT_URL"] = endpoint  # MosaicML Streaming's variable
    os.environ["AWS_ALLOW_HTTP"] = "true"  # obstore (LitData's chunk downloads)


# --- the runs ----------------------------------------------------------------------------------


class _Runner:
    def __init__(
        self,
        args: argparse.Namespace,
        endpoint: str,
        manifest: Path,
        set_bytes: int,
        shaper: _Shaper | None,
    ) -> None:
        self.args, self.endpoint, self.manifest = args, endpoint, manifest
        self.set_bytes, self.shaper = set_bytes, shaper
        self.url = "s3://bench/ss/demo.manifest"
        self.n = sum(s.samples for s in load_manifest(manifest).shards)
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-remote-"))

    def all(self, peers: list[str]) -> None:
        per_image = self.set_bytes / self.n
        ceiling = self.raw_ceiling()
        print(f"  raw GET of every shard, 8 threads (boto3): {ceiling / per_image:,.0f} img/s")
        allows = None
        if self.shaper is not None:
            allows = self.shaper.rate / per_image
            print(f"  the link allows {allows:,.0f} img/s ({self.shaper.rate / 1e6:.1f} MB/s)")
        self.ours(self.url, fresh=True, first_only=True)  # untimed: imports, first connections
        ours_cold = self.timed(lambda: self.ours(self.url, fresh=True))
        blocks_cold = self.timed(lambda: self.ours(self.url, fresh=True, blocks=True))
        self.ours(self.url, fresh=False)  # fills the warm cache
        ours_warm = self.timed(lambda: self.ours(self.url, fresh=False))
        local = self.timed(lambda: self.ours(self.manifest, fresh=False))
        results = {}
        for name in peers:
            try:
                results[name] = getattr(self, name)()
            except Exception as e:  # a peer that cannot run here is reported, not fatal
                results[name] = {"note": f"{type(e).__name__}: {str(e)[:200]}"}
        ran = {k: v for k, v in results.items() if v.get("cold")}
        best = max((p["cold"] for p in ran.values()), default=None)
        best_name = max(ran, key=lambda k: ran[k]["cold"], default="-")
        best_ttfb = min((p["ttfb"] for p in ran.values()), default=None)
        ttfb_name = min(ran, key=lambda k: ran[k]["ttfb"], default="-")
        for name, peer in results.items():
            if peer.get("cold"):
                print(
                    f"  {name}: cold {peer['cold']:,.0f} img/s ({peer['cold_spread']}), warm "
                    f"{peer.get('warm') or float('nan'):,.0f} img/s, first batch "
                    f"{peer['ttfb']:.0f} ms ({peer['ttfb_spread']}), shuffle displacement "
                    f"{peer['shuffle']:.3f} {peer.get('note', '')}"
                )
            else:
                print(f"  {name}: skipped ({peer.get('note', '')})")
        print(
            f"  shardstream shuffle displacement: full {ours_cold['shuffle']:.3f}, "
            f"blocks(k=2) {blocks_cold['shuffle']:.3f}"
        )
        title = "remote streaming, raw bytes, shuffled" + (
            f", shaped {self.args.shape}" if self.shaper else ", loopback"
        )
        table = Table(title, "peer/ref")
        table.header()
        target = 1.0 if self.shaper else 1.5
        note = f"peer: best of peers ({best_name})"
        table.add(_rate_row("cold epoch (full permutation)", best, ours_cold, self.n, target, note))
        table.add(_rate_row("cold epoch (blocks, k=2)", best, blocks_cold, self.n, target, note))
        if allows is not None:
            for label, got in (("full", ours_cold), ("blocks", blocks_cold)):
                table.add(_rate_row(f"cold epoch ({label}) vs link", allows, got, self.n, 0.9, ""))
            for name, peer in ran.items():
                print(f"  {name}: {peer['cold'] / allows:.0%} of what the link allows")
        for label, got in (("full", ours_cold), ("blocks", blocks_cold)):
            table.add(
                Row(
                    f"time to first batch (cold, {label})",
                    best_ttfb,
                    float(np.median(got["ttfb"])) * 1e3,
                    "ms",
                    target=1.0,
                    lower_is_better=True,
                    note=f"spread {_spread(got['ttfb'], 1e3):.0f} ms; peer: {ttfb_name}",
                )
            )
        table.add(
            _rate_row(
                "warm cache vs local files",
                self.n / float(np.median(local["seconds"])),
                ours_warm,
                self.n,
                0.95,
                "peer column: shardstream on local files",
            )
        )
        table.add(
            Row(
                "bytes downloaded / set, cache 1/4 (blocks)",
                None,
                self.bytes_quarter(),
                "x set",
                limit=1.05,
            )
        )
        if not self.args.skip_dino:
            remote_rate, local_rate = self.dino()
            table.add(
                Row(
                    "DINO preset remote (warm) vs local",
                    local_rate,
                    remote_rate,
                    "img/s",
                    target=0.95,
                    note="peer column: local files",
                )
            )
        shutil.rmtree(self.tmp, ignore_errors=True)

    def raw_ceiling(self) -> float:
        """Bytes per second of a plain boto3 GET of every shard, 8 at a time."""
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint)
        names = [Path(s.path).name for s in load_manifest(self.manifest).shards]
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            got = pool.map(
                lambda n: len(client.get_object(Bucket="bench", Key=f"ss/{n}")["Body"].read()),
                names,
            )
            total = sum(got)
        return total / (time.perf_counter() - started)

    def timed(self, run: Callable[[], dict]) -> dict:
        results = [run() for _ in range(self.args.repeats)]
        return {
            "seconds": [r["seconds"] for r in results],
            "ttfb": [r["ttfb"] for r in results],
            "shuffle": results[0]["shuffle"],
        }

    def ours(
        self, source: Any, *, fresh: bool, blocks: bool = False, first_only: bool = False
    ) -> dict:
        cache = self.tmp / ("cold-" + str(time.monotonic_ns()) if fresh else "warm")
        order = {"order": "blocks", "shards_per_block": 2} if blocks else {}

        def make() -> Any:
            return (
                shardstream.Loader(source, seed=1, cache_dir=cache)
                .batch(self.args.batch_size)
                .shuffle(**order)
                .pytorch(
                    num_workers=self.args.workers,
                    tensors=["image", "label"],
                    decode_method={"image": "tobytes"},
                )
            )

        out = _epoch(make, lambda b: b["index"].tolist(), lambda loader: loader.close(), first_only)
        if fresh:
            shutil.rmtree(cache, ignore_errors=True)
        return out

    def bytes_quarter(self) -> float:
        from tests.read.remote.servers import RangeServer

        server = RangeServer(self.manifest.parent)
        try:
            loader = (
                shardstream.Loader(
                    f"{server.url}/demo.manifest",
                    seed=1,
                    cache_dir=self.tmp / "quarter",
                    cache_limit=self.set_bytes // 4,
                    prefetch_shards=1,
                )
                .batch(self.args.batch_size)
                .shuffle(order="blocks", shards_per_block=2)
                .pytorch(num_workers=self.args.workers, tensors=["label"])
            )
            for _ in loader:
                pass
            loader.close()
            data = sum(v for k, v in server.sent.items() if k.endswith(".msgpack"))
            return data / self.set_bytes
        finally:
            server.close()

    def dino(self) -> tuple[float, float]:
        from shardstream.vision.dino import DinoPreset

        count = self.args.dino_batches

        def rate(source: Any) -> float:
            loader = (
                shardstream.Loader(source, seed=1, cache_dir=self.tmp / "warm")
                .batch(32)
                .shuffle()
                .pytorch(num_workers=self.args.workers)
                .preset(DinoPreset(), device="cpu")
            )
            started = 0.0
            for i, _ in enumerate(loader):
                if i == 0:
                    started = time.perf_counter()  # from the first batch on: steady state
                if i == count:
                    break
            seconds = time.perf_counter() - started
            loader.close()
            return count * 32 / seconds

        remote, local = [], []
        for _ in range(self.args.repeats):  # interleaved: drifts of a shared machine hit both
            remote.append(rate(self.url))
            local.append(rate(self.manifest))
        print(
            f"  DINO img/s remote {[round(r) for r in remote]}, local {[round(r) for r in local]}"
        )
        return float(np.median(remote)), float(np.median(local))

    # --- peers --------------------------------------------------------------------------------

    def index_of_key(self) -> dict[str, int]:
        reader = shardstream.ShardedReader(self.manifest)
        return {reader.find_key(i): i for i in range(len(reader))}

    def mds(self) -> dict:
        from streaming import StreamingDataset
        from streaming.base.util import clean_stale_shared_memory
        from torch.utils.data import DataLoader

        index = self.index_of_key()

        def one(cache: Path, first_only: bool = False) -> dict:
            clean_stale_shared_memory()

            def make() -> Any:
                dataset = StreamingDataset(
                    remote="s3://bench/mds",
                    local=str(cache),
                    shuffle=True,
                    shuffle_seed=1,
                    batch_size=self.args.batch_size,
                )
                return DataLoader(
                    dataset, batch_size=self.args.batch_size, num_workers=self.args.workers
                )

            return _epoch(make, lambda b: [index[k] for k in b["key"]], None, first_only)

        one(self.tmp / "mds-warmup", first_only=True)  # untimed: imports, first connections
        cold = [one(self.tmp / f"mds-{i}") for i in range(self.args.repeats)]
        warm = [one(self.tmp / "mds-0") for _ in range(self.args.repeats)]
        return _summary(cold, warm, self.n)

    def wds(self) -> dict:
        import boto3
        import webdataset as wds
        from torch.utils.data import DataLoader

        client = boto3.client("s3", endpoint_url=self.endpoint)
        listed = client.list_objects_v2(Bucket="bench", Prefix="wds/")["Contents"]
        urls = [
            "pipe:curl -s '"
            + client.generate_presigned_url(
                "get_object", Params={"Bucket": "bench", "Key": o["Key"]}, ExpiresIn=7200
            )
            + "'"
            for o in sorted(listed, key=lambda o: o["Key"])
            if o["Key"].endswith(".tar")
        ]

        def make() -> Any:
            dataset = (
                wds.WebDataset(urls, shardshuffle=len(urls), seed=1, empty_check=False)
                .shuffle(1000)
                .to_tuple("__key__", "jpg")
                .batched(self.args.batch_size)
            )
            return DataLoader(dataset, batch_size=None, num_workers=self.args.workers)

        _epoch(make, lambda b: [int(k) for k in b[0]], None, True)  # untimed warm-up
        cold = [_epoch(make, lambda b: [int(k) for k in b[0]]) for _ in range(self.args.repeats)]
        summary = _summary(cold, [], self.n)
        summary["note"] = "(no cache: every epoch downloads)"
        return summary

    def litdata(self) -> dict:
        import litdata as ld
        from litdata.streaming import downloader
        from torch.utils.data import DataLoader

        # obstore refuses plain http unless told; moto on 127.0.0.1 speaks plain http
        downloader._OBSTORE_CLIENT_OPTIONS = {
            **downloader._OBSTORE_CLIENT_OPTIONS,
            "allow_http": True,
        }
        options = {
            "endpoint_url": self.endpoint,
            "aws_access_key_id": _KEYS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": _KEYS["AWS_SECRET_ACCESS_KEY"],
        }

        def one(cache: Path, first_only: bool = False) -> dict:
            def make() -> Any:
                dataset = ld.StreamingDataset(
                    "s3://bench/litdata",
                    cache_dir=str(cache),
                    shuffle=True,
                    seed=1,
                    storage_options=options,
                )
                return DataLoader(
                    dataset, batch_size=self.args.batch_size, num_workers=self.args.workers
                )

            return _epoch(make, lambda b: b["index"].tolist(), None, first_only)

        one(self.tmp / "lit-warmup", first_only=True)  # untimed: imports, first connections
        cold = [one(self.tmp / f"lit-{i}") for i in range(self.args.repeats)]
        warm = [one(self.tmp / "lit-0") for _ in range(self.args.repeats)]
        return _summary(cold, warm, self.n)


def _epoch(
    make: Callable[[], Iterable],
    indices: Callable[[Any], list[int]],
    close: Callable[[Any], None] | None = None,
    first_only: bool = False,
) -> dict:
    """One epoch of the loader ``make()`` builds, timed from the call to ``make`` (only its
    first batch with ``first_only``: the untimed warm-up of imports and first connections)."""
    started = time.perf_counter()
    loader = make()
    ttfb = None
    seen: list[int] = []
    for batch in loader:
        if ttfb is None:
            ttfb = time.perf_counter() - started
        seen += indices(batch)
        if first_only:
            break
    seconds = time.perf_counter() - started
    if close is not None:
        close(loader)
    del loader
    return {
        "seconds": seconds,
        "ttfb": ttfb or seconds,
        "shuffle": shuffle_quality(np.asarray(seen))["displacement"] if seen else 0.0,
        "count": len(seen),
    }


def _spread(values: list[float], scale: float = 1.0) -> float:
    return (max(values) - min(values)) * scale


def _summary(cold: list[dict], warm: list[dict], n: int) -> dict:
    rates = [n / r["seconds"] for r in cold]
    ttfb = [r["ttfb"] for r in cold]
    out = {
        "cold": float(np.median(rates)),
        "cold_spread": f"spread {_spread(rates):,.0f}",
        "ttfb": float(np.median(ttfb)) * 1e3,
        "ttfb_spread": f"spread {_spread(ttfb, 1e3):.0f}",
        "shuffle": cold[0]["shuffle"],
        "counts": sorted({r["count"] for r in cold + warm}),
    }
    if warm:
        out["warm"] = float(np.median([n / r["seconds"] for r in warm]))
    return out


def _rate_row(
    name: str, peer: float | None, ours: dict, n: int, target: float | None, note: str
) -> Row:
    rates = [n / s for s in ours["seconds"]]
    spread = f"spread {_spread(rates):,.0f} img/s"
    return Row(
        name,
        peer,
        float(np.median(rates)),
        "img/s",
        target=target,
        note=f"{spread}; {note}" if note else spread,
    )


if __name__ == "__main__":
    sys.exit(main())
