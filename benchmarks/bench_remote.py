"""Remote streaming side by side: shardstream, MosaicML Streaming (MDS), LitData and WebDataset
reading the same demo JPEGs from an S3 API server (moto) on 127.0.0.1, each shuffling.

Rows (medians of ``--repeats`` runs, spread = max - min in the note):

- raw-bytes epoch throughput with a cold cache (a fresh cache folder each run) and a warm one;
- time to first batch (cold);
- bytes downloaded per epoch over the set's size with a cache limit of a quarter of the set
  (shardstream's shard-block order; counted by an HTTP server with Range support serving the
  same files, since moto keeps no counts);
- the shuffle statistic of each loader's epoch order (normalised mean displacement, 1.0 for a
  uniform permutation; :func:`shardstream.order.shard_blocks.shuffle_quality`);
- warm cache against local files, and the DINO preset's rate remote (warm) against local.

Peers that are not installed, or fail against the local server, are reported as skipped with the
reason. ``--shape "20ms,1gbit"`` puts a ``tc netem`` delay and rate on ``lo`` for the run (root
only; it slows every loopback user of the machine, so use it on a machine of your own) and
removes it afterwards.
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
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import Row, Table  # noqa: E402

import shardstream  # noqa: E402
from shardstream.format.manifest import load_manifest  # noqa: E402
from shardstream.order.shard_blocks import shuffle_quality  # noqa: E402
from shardstream.sets.demo import GENERATOR_VERSION, DemoSet, generate_demo_images  # noqa: E402

SHARD_BYTES = 4 << 20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("bench-data/remote"))
    parser.add_argument("--shape", default="", help='e.g. "20ms,1gbit": tc netem on lo')
    parser.add_argument("--skip-dino", action="store_true")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    demo = generate_demo_images(
        args.workdir / f"demo-images-v{GENERATOR_VERSION}-{args.images}",
        num_images=args.images,
        num_classes=10,
        workers=2,
    )
    manifest = _pack(args.workdir, demo)
    set_bytes = sum(s.bytes for s in load_manifest(manifest).shards)
    print(
        f"{len(demo.paths)} images, {set_bytes / 1e6:.1f} MB in "
        f"{len(load_manifest(manifest).shards)} shards"
    )
    server = _Moto()
    shaped = _shape(args.shape)
    try:
        server.put_folder(manifest.parent, "ss")
        run = _Runner(args, server, manifest, set_bytes)
        run.all()
    finally:
        if shaped:
            subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], check=False)
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


class _Moto:
    def __init__(self) -> None:
        import logging
        import socket

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
            "S3_ENDPOINT_URL": self.endpoint,  # MosaicML Streaming's variable
        }.items():
            os.environ[name] = value
        import boto3

        boto3.client("s3", endpoint_url=self.endpoint).create_bucket(Bucket="bench")
        import s3fs

        self.fs = s3fs.S3FileSystem(endpoint_url=self.endpoint, skip_instance_cache=True)

    def put_folder(self, folder: Path, prefix: str) -> str:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                self.fs.put_file(str(path), f"bench/{prefix}/{path.relative_to(folder)}")
        return f"s3://bench/{prefix}"

    def close(self) -> None:
        self._server.stop()


def _shape(spec: str) -> bool:
    if not spec:
        return False
    delay, rate = spec.split(",")
    done = subprocess.run(
        ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", delay, "rate", rate],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        print(f"--shape: tc failed ({done.stderr.strip()}); running unshaped")
        return False
    print(f"--shape: lo delayed {delay}, rate {rate}")
    return True


# --- the runs ----------------------------------------------------------------------------------


class _Runner:
    def __init__(self, args: argparse.Namespace, server: _Moto, manifest: Path, set_bytes: int):
        self.args, self.server, self.manifest, self.set_bytes = args, server, manifest, set_bytes
        self.url = "s3://bench/ss/demo.manifest"
        self.n = sum(s.samples for s in load_manifest(manifest).shards)
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-remote-"))

    def all(self) -> None:
        table = Table("remote streaming, raw bytes, shuffled", "best peer")
        table.header()
        ours_cold = self.timed(lambda: self.ours(self.url, fresh=True))
        blocks_cold = self.timed(lambda: self.ours(self.url, fresh=True, blocks=True))
        self.ours(self.url, fresh=False)  # fills the warm cache
        ours_warm = self.timed(lambda: self.ours(self.url, fresh=False))
        local = self.timed(lambda: self.ours(self.manifest, fresh=False))
        peers = self.peers()
        best = max((p["cold"] for p in peers.values() if p.get("cold")), default=None)
        best_ttfb = min((p["ttfb"] for p in peers.values() if p.get("ttfb")), default=None)
        table.add(_rate_row("cold-cache epoch (full permutation)", best, ours_cold, self.n, 1.5))
        table.add(_rate_row("cold-cache epoch (blocks, k=2)", best, blocks_cold, self.n, 1.5))
        table.add(
            Row(
                "time to first batch (cold, blocks)",
                best_ttfb,
                float(np.median(blocks_cold["ttfb"])) * 1e3,
                "ms",
                target=1.0,
                lower_is_better=True,
            )
        )
        table.add(_rate_row("warm-cache epoch", None, ours_warm, self.n, None))
        table.add(
            Row(
                "time to first batch (cold)",
                best_ttfb,
                float(np.median(ours_cold["ttfb"])) * 1e3,
                "ms",
                target=1.0,
                lower_is_better=True,
            )
        )
        table.add(
            Row(
                "warm cache vs local files",
                float(self.n / np.median(local["seconds"])),
                float(self.n / np.median(ours_warm["seconds"])),
                "img/s",
                target=0.95,
                note="peer column: shardstream on local files",
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
        for name, peer in peers.items():
            note = peer.get("note", "")
            if peer.get("cold"):
                print(
                    f"  {name}: cold {peer['cold']:.1f} img/s, warm "
                    f"{peer.get('warm') or float('nan'):.1f} img/s, first batch "
                    f"{peer['ttfb']:.0f} ms, shuffle displacement "
                    f"{peer.get('shuffle', float('nan')):.3f} {note}"
                )
            else:
                print(f"  {name}: skipped ({note})")
        print(
            f"  shardstream shuffle displacement: full {ours_cold['shuffle']:.3f}, "
            f"blocks(k=2) {blocks_cold['shuffle']:.3f}"
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

    def timed(self, run: Callable[[], dict]) -> dict:
        results = [run() for _ in range(self.args.repeats)]
        return {
            "seconds": [r["seconds"] for r in results],
            "ttfb": [r["ttfb"] for r in results],
            "shuffle": results[0]["shuffle"],
        }

    def ours(self, source: Any, *, fresh: bool, blocks: bool = False) -> dict:
        cache = self.tmp / ("cold-" + str(time.monotonic_ns()) if fresh else "warm")
        order = {"order": "blocks", "shards_per_block": 2} if blocks else {}
        loader = (
            shardstream.Loader(source, seed=1, cache_dir=cache)
            .batch(self.args.batch_size)
            .shuffle(**order)
            .pytorch(
                num_workers=self.args.workers,
                tensors=["image", "label"],
                decode_method={"image": "tobytes"},
            )
        )
        out = _epoch(loader, lambda b: b["index"].tolist())
        loader.close()
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

    def block_shuffle(self) -> float:
        from shardstream.order.shard_blocks import shard_block_order

        reader = shardstream.ShardedReader(self.manifest)
        order = shard_block_order(reader.starts, seed=1, epoch=0, shards_per_block=2)
        return shuffle_quality(order)["displacement"]

    def dino(self) -> tuple[float, float]:
        from shardstream.vision.dino import DinoPreset

        def rate(source: Any) -> float:
            loader = (
                shardstream.Loader(source, seed=1, cache_dir=self.tmp / "warm")
                .batch(32)
                .shuffle()
                .pytorch(num_workers=self.args.workers)
                .preset(DinoPreset(), device="cpu")
            )
            started = time.perf_counter()
            for _ in loader:
                pass
            loader.close()
            return self.n / (time.perf_counter() - started)

        remote = [rate(self.url) for _ in range(max(1, self.args.repeats - 1))]
        local = [rate(self.manifest) for _ in range(max(1, self.args.repeats - 1))]
        print(f"  DINO img/s remote {remote}, local {local}")
        return float(np.median(remote)), float(np.median(local))

    # --- peers --------------------------------------------------------------------------------

    def peers(self) -> dict[str, dict]:
        out = {}
        for name, run in (
            ("MosaicML Streaming", self.mds),
            ("WebDataset", self.wds),
            ("LitData", self.litdata),
        ):
            try:
                out[name] = run()
            except Exception as e:  # a peer that cannot run here is reported, not fatal
                out[name] = {"note": f"{type(e).__name__}: {str(e)[:120]}"}
        return out

    def keys(self) -> dict[str, int]:
        reader = shardstream.ShardedReader(self.manifest)
        return {
            k: i
            for i, k in enumerate(
                reader.keys
                if hasattr(reader, "keys")
                else [reader.find_key(j) for j in range(len(reader))]
            )
        }

    def mds(self) -> dict:
        from streaming import MDSWriter, StreamingDataset
        from streaming.base.util import clean_stale_shared_memory
        from torch.utils.data import DataLoader

        local_out = self.tmp / "mds-out"
        reader = shardstream.ShardedReader(self.manifest)
        with MDSWriter(
            out=str(local_out),
            columns={"key": "str", "image": "bytes", "label": "int"},
            size_limit=SHARD_BYTES,
        ) as writer:
            for i in range(len(reader)):
                key, sample = reader.get(i, yield_key=True)
                writer.write({"key": key, "image": sample["image"], "label": sample["label"]})
        remote = self.server.put_folder(local_out, "mds")
        index = self.keys()

        def one(cache: Path) -> dict:
            clean_stale_shared_memory()
            dataset = StreamingDataset(
                remote=remote,
                local=str(cache),
                shuffle=True,
                shuffle_seed=1,
                batch_size=self.args.batch_size,
            )
            loader = DataLoader(
                dataset, batch_size=self.args.batch_size, num_workers=self.args.workers
            )
            result = _epoch(loader, lambda b: [index[k] for k in b["key"]])
            del loader, dataset
            return result

        cold = [one(self.tmp / f"mds-{i}") for i in range(self.args.repeats)]
        warm = [one(self.tmp / "mds-0") for _ in range(self.args.repeats)]
        return _summary(cold, warm, self.n)

    def wds(self) -> dict:
        import webdataset as wds
        from torch.utils.data import DataLoader

        out = self.tmp / "wds-out"
        out.mkdir()
        reader = shardstream.ShardedReader(self.manifest)
        with wds.ShardWriter(str(out / "shard-%06d.tar"), maxsize=SHARD_BYTES, verbose=0) as sink:
            for i in range(len(reader)):
                key, sample = reader.get(i, yield_key=True)
                sink.write(
                    {
                        "__key__": f"{i:08d}",
                        "jpg": sample["image"],
                        "cls": str(sample["label"]).encode(),
                    }
                )
        self.server.put_folder(out, "wds")
        import boto3

        client = boto3.client("s3", endpoint_url=self.server.endpoint)
        urls = [
            "pipe:curl -s '"
            + client.generate_presigned_url(
                "get_object", Params={"Bucket": "bench", "Key": f"wds/{p.name}"}, ExpiresIn=7200
            )
            + "'"
            for p in sorted(out.glob("*.tar"))
        ]

        def one() -> dict:
            dataset = (
                wds.WebDataset(urls, shardshuffle=len(urls), seed=1, empty_check=False)
                .shuffle(1000)
                .to_tuple("__key__", "jpg")
                .batched(self.args.batch_size)
            )
            loader = DataLoader(dataset, batch_size=None, num_workers=self.args.workers)
            return _epoch(loader, lambda b: [int(k) for k in b[0]])

        cold = [one() for _ in range(self.args.repeats)]
        summary = _summary(cold, [], self.n)
        summary["note"] = "no cache: every epoch downloads (warm = cold)"
        return summary

    def litdata(self) -> dict:
        import litdata as ld
        from torch.utils.data import DataLoader

        local_out = self.tmp / "lit-out"
        ld.optimize(
            fn=_LitItem(self.manifest),
            inputs=list(range(self.n)),
            output_dir=str(local_out),
            chunk_bytes="4MB",
            num_workers=1,
        )
        remote = self.server.put_folder(local_out, "lit")

        def one(cache: Path) -> dict:
            dataset = ld.StreamingDataset(remote, cache_dir=str(cache), shuffle=True, seed=1)
            loader = DataLoader(
                dataset, batch_size=self.args.batch_size, num_workers=self.args.workers
            )
            return _epoch(loader, lambda b: b["index"].tolist())

        cold = [one(self.tmp / f"lit-{i}") for i in range(self.args.repeats)]
        warm = [one(self.tmp / "lit-0") for _ in range(self.args.repeats)]
        return _summary(cold, warm, self.n)


class _LitItem:
    """LitData's ``optimize`` function (picklable: spawned workers): sample ``i`` of the set."""

    def __init__(self, manifest: Path) -> None:
        self.manifest = manifest

    def __call__(self, i: int) -> dict:
        key, sample = shardstream.ShardedReader(self.manifest).get(i, yield_key=True)
        return {"index": i, "image": sample["image"], "label": sample["label"]}


def _epoch(loader: Iterable, indices: Callable[[Any], list[int]]) -> dict:
    started = time.perf_counter()
    ttfb = None
    seen: list[int] = []
    for batch in loader:
        if ttfb is None:
            ttfb = time.perf_counter() - started
        seen += indices(batch)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "ttfb": ttfb or seconds,
        "shuffle": shuffle_quality(np.asarray(seen))["displacement"] if seen else 0.0,
    }


def _summary(cold: list[dict], warm: list[dict], n: int) -> dict:
    rates = [n / r["seconds"] for r in cold]
    out = {
        "cold": float(np.median(rates)),
        "ttfb": float(np.median([r["ttfb"] for r in cold])) * 1e3,
        "shuffle": cold[0]["shuffle"],
        "note": f"spread {max(rates) - min(rates):.1f} img/s",
    }
    if warm:
        out["warm"] = float(np.median([n / r["seconds"] for r in warm]))
    return out


def _rate_row(name: str, peer: float | None, ours: dict, n: int, target: float | None) -> Row:
    rates = [n / s for s in ours["seconds"]]
    return Row(
        name,
        peer,
        float(np.median(rates)),
        "img/s",
        target=target,
        note=f"spread {max(rates) - min(rates):.1f} img/s",
    )


if __name__ == "__main__":
    sys.exit(main())
