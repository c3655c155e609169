"""Packed format: shardstream's writer and MsgpackReader side by side with datadings 3.4.7.

Run:  python benchmarks/bench_format.py            (full: ~3-6 minutes on 2 cores)
      python benchmarks/bench_format.py --quick    (smaller sets, fewer repeats)

Two workloads, both written by each library from the same samples:
- 1 KB samples (random bytes + label): per-sample overhead dominates;
- ~90-110 KB JPEG samples from the demo generator (real photos): bandwidth dominates.

Measured (median of --repeats runs; page cache warm): write throughput; sequential raw read;
sequential decoded read; random-access ``get(raw=True)`` in shuffled order; a batched random read
(``getitems`` of 256 indices per call) against datadings' per-sample ``get``; opening a
1,000,000-sample dataset. Reference rates measured in the same run: md5 over the same bytes (bounds
any compatible writer) and reading the data file from the page cache with large ``readinto``
calls (bounds any reader).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Row, Table, measure  # noqa: E402

import shardstream  # noqa: E402
from shardstream.sets.demo import GENERATOR_VERSION, generate_demo_images  # noqa: E402

BATCH = 256


def make_small_samples(count: int) -> list[dict]:
    rng = np.random.default_rng(0)
    payload = rng.integers(0, 256, size=count * 1000, dtype=np.uint8).tobytes()
    return [
        {"key": f"{i:09d}", "data": payload[i * 1000 : (i + 1) * 1000], "label": i % 1000}
        for i in range(count)
    ]


def make_jpeg_samples(workdir: Path, count: int, unique: int) -> list[dict]:
    root = workdir / f"demo-images-v{GENERATOR_VERSION}-{unique}"  # regenerated on new versions
    demo = generate_demo_images(root, num_images=unique, num_classes=10, workers=2)
    images = [(p.read_bytes(), label) for p, label in zip(demo.paths, demo.labels)]
    return [
        {"key": f"{i:07d}.jpg", "image": images[i % unique][0], "label": images[i % unique][1]}
        for i in range(count)
    ]


def write_with(writer_cls, path: Path, samples: list[dict]) -> None:
    with writer_cls(path, overwrite=True, disable=True) as writer:
        for sample in samples:
            writer.write(sample)


def md5_rate_run(path: Path):
    data = path.read_bytes()
    view = memoryview(data)
    chunk = 4 << 20

    def run():
        digest = hashlib.md5()
        for start in range(0, len(view), chunk):
            digest.update(view[start : start + chunk])
        return digest.hexdigest()

    return run


def page_cache_run(path: Path):
    buffer = bytearray(1 << 20)

    def run():
        total = 0
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(buffer):
                total += n
        return total

    return run


def drain(iterable) -> int:
    count = 0
    for _ in iterable:
        count += 1
    return count


def bench_workload(
    table: Table, name: str, samples: list[dict], workdir: Path, write_dir: Path, repeats: int
) -> None:
    from datadings.reader import MsgpackReader as DDReader
    from datadings.writer import FileWriter as DDWriter

    ours_path = workdir / f"{name}-ours.msgpack"
    theirs_path = workdir / f"{name}-dd.msgpack"
    count = len(samples)
    write_with(shardstream.FileWriter, ours_path, samples)  # also the file the readers use
    write_with(DDWriter, theirs_path, samples)
    nbytes = ours_path.stat().st_size
    if ours_path.read_bytes() != theirs_path.read_bytes():
        raise SystemExit(f"{name}: shardstream and datadings wrote different bytes")
    write_repeats = max(1, repeats // 2)
    # Timed writes go to write_dir (tmpfs by default): on this VM's disk, dirty-page writeback
    # caps any writer near 180 MB/s, which would hide the writer's own cost.
    w_dd = measure(
        lambda: write_with(DDWriter, write_dir / f"{name}-dd.msgpack", samples),
        items=count,
        nbytes=nbytes,
        repeats=write_repeats,
    )
    w_ours = measure(
        lambda: write_with(shardstream.FileWriter, write_dir / f"{name}-ours.msgpack", samples),
        items=count,
        nbytes=nbytes,
        repeats=write_repeats,
    )
    for path in write_dir.glob(f"{name}-*.msgpack*"):
        path.unlink()
    md5 = measure(md5_rate_run(ours_path), items=count, nbytes=nbytes, repeats=repeats)
    label = f"[{name}]"
    table.add(Row(f"{label} write, samples/s", w_dd.items_per_s, w_ours.items_per_s, "samples/s"))
    table.add(
        Row(
            f"{label} write MB/s vs md5 MB/s (same bytes)",
            md5.mb_per_s,
            w_ours.mb_per_s,
            "MB/s",
            target=0.85,
            note=f"datadings {w_dd.mb_per_s:,.0f} MB/s",
        )
    )

    dd = DDReader(theirs_path)
    ours = shardstream.MsgpackReader(ours_path)
    seq_dd = measure(lambda: drain(dd.rawiter()), items=count, nbytes=nbytes, repeats=repeats)
    seq_ours = measure(lambda: drain(ours.rawiter()), items=count, nbytes=nbytes, repeats=repeats)
    table.add(
        Row(
            f"{label} sequential raw read",
            seq_dd.items_per_s,
            seq_ours.items_per_s,
            "samples/s",
            target=1.0,
        )
    )
    cache = measure(page_cache_run(ours_path), items=count, nbytes=nbytes, repeats=repeats)
    table.add(
        Row(
            f"{label} seq raw MB/s vs page-cache read MB/s",
            cache.mb_per_s,
            seq_ours.mb_per_s,
            "MB/s",
            target=0.9 if name == "jpeg" else None,
            note=f"datadings {seq_dd.mb_per_s:,.0f} MB/s",
        )
    )
    dec_dd = measure(lambda: drain(iter(dd)), items=count, repeats=repeats)
    dec_ours = measure(lambda: drain(iter(ours)), items=count, repeats=repeats)
    table.add(
        Row(
            f"{label} sequential decoded read",
            dec_dd.items_per_s,
            dec_ours.items_per_s,
            "samples/s",
        )
    )

    order = np.random.default_rng(1).permutation(count)
    order_list = order.tolist()

    def random_dd():
        get = dd.get
        for i in order_list:
            get(i, raw=True)

    def random_ours():
        get = ours.get
        for i in order_list:
            get(i, raw=True)

    def batched_ours(copy: bool):
        getitems = ours.getitems
        for start in range(0, count, BATCH):
            getitems(order[start : start + BATCH], raw=True, copy=copy)

    rnd_dd = measure(random_dd, items=count, repeats=repeats)
    rnd_ours = measure(random_ours, items=count, repeats=repeats)
    batch_ours = measure(lambda: batched_ours(True), items=count, repeats=repeats)
    views_ours = measure(lambda: batched_ours(False), items=count, repeats=repeats)
    table.add(
        Row(
            f"{label} random get(raw) shuffled",
            rnd_dd.items_per_s,
            rnd_ours.items_per_s,
            "samples/s",
            target=1.5,
        )
    )
    table.add(
        Row(
            f"{label} getitems x{BATCH} vs datadings get",
            rnd_dd.items_per_s,
            batch_ours.items_per_s,
            "samples/s",
            target=3.0,
            note="bytes copies",
        )
    )
    table.add(
        Row(
            f"{label} getitems x{BATCH} copy=False vs get",
            rnd_dd.items_per_s,
            views_ours.items_per_s,
            "samples/s",
            note="zero-copy views into the map",
        )
    )
    dd._close()
    ours.close()


def bench_open(table: Table, workdir: Path, count: int, repeats: int) -> None:
    from datadings.reader import MsgpackReader as DDReader

    path = workdir / f"open-{count}.msgpack"
    if not (path.exists() and Path(f"{path}.md5").exists()):
        print(f"writing a {count:,}-sample dataset for the open benchmark ...", flush=True)
        started = time.perf_counter()
        with shardstream.FileWriter(path, overwrite=True, disable=True) as writer:
            for i in range(count):
                writer.write({"key": f"sample-{i:09d}", "label": i % 1000})
        print(f"  written in {time.perf_counter() - started:.1f} s", flush=True)

    def open_dd():
        reader = DDReader(path)
        len(reader)
        reader._close()

    def open_ours():
        with shardstream.MsgpackReader(path) as reader:
            len(reader)

    def open_and_get_ours():
        with shardstream.MsgpackReader(path) as reader:
            reader.get(count // 2)

    def open_and_get_dd():
        reader = DDReader(path)
        reader.get(count // 2)
        reader._close()

    o_dd = measure(open_dd, items=1, repeats=repeats)
    o_ours = measure(open_ours, items=1, repeats=repeats)
    table.add(
        Row(
            f"open a {count:,}-sample dataset",
            o_dd.median * 1e3,
            o_ours.median * 1e3,
            "ms",
            limit=50,
            lower_is_better=True,
            note="ratio = datadings time / ours",
        )
    )
    g_dd = measure(open_and_get_dd, items=1, repeats=repeats)
    g_ours = measure(open_and_get_ours, items=1, repeats=repeats)
    table.add(
        Row(
            "  open + first get()",
            g_dd.median * 1e3,
            g_ours.median * 1e3,
            "ms",
            lower_is_better=True,
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sets, 3 repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per measurement")
    parser.add_argument("--workdir", type=Path, default=Path("bench-data/format"))
    parser.add_argument(
        "--write-dir",
        type=Path,
        default=Path("/dev/shm/shardstream-bench") if Path("/dev/shm").is_dir() else None,
        help="where timed writes go (default: tmpfs /dev/shm, else --workdir)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the written datasets")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 5)
    small_count = 50_000 if args.quick else 200_000
    jpeg_count, jpeg_unique = (600, 300) if args.quick else (2000, 1000)
    open_count = 1_000_000
    args.workdir.mkdir(parents=True, exist_ok=True)
    write_dir = args.write_dir or args.workdir
    write_dir.mkdir(parents=True, exist_ok=True)

    import datadings

    print(
        f"shardstream {shardstream.__version__} vs datadings {datadings.__version__}; "
        f"{os.cpu_count()} cores; medians of {repeats} runs",
        flush=True,
    )
    print(f"timed writes go to {write_dir}", flush=True)
    table = Table("packed format: shardstream / datadings", "datadings")
    table.header()
    bench_workload(table, "1KB", make_small_samples(small_count), args.workdir, write_dir, repeats)
    jpeg = make_jpeg_samples(args.workdir, jpeg_count, jpeg_unique)
    mean_kb = np.mean([len(s["image"]) for s in jpeg]) / 1e3
    print(f"   (jpeg samples: {jpeg_count} x mean {mean_kb:.0f} KB)", flush=True)
    bench_workload(table, "jpeg", jpeg, args.workdir, write_dir, repeats)
    bench_open(table, args.workdir, open_count, repeats)
    missed = [row.name for row in table.rows if row.verdict == "MISS"]
    print(f"\ntargets missed: {', '.join(missed) if missed else 'none'}")
    if not args.keep:
        for path in args.workdir.glob("*-*.msgpack*"):
            path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
