"""``shardstream demo``: generate the demo image set, pack it, read it back, report speeds.

This is the main job of the README's first command: it needs no download.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np

from ..read import DirectoryReader, MsgpackReader
from ..sets.demo import generate_demo_images
from ..write import FileWriter

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="generate the demo photo set, pack it and read it back (no download needed)",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--out", type=Path, default=Path("demo-data"), help="output folder")
    parser.add_argument("--images", type=int, default=2000, help="number of images")
    parser.add_argument("--classes", type=int, default=10, help="number of classes")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument("--workers", type=int, default=None, help="generator processes")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Generate, pack, verify and read back; print what was done and how fast."""
    out: Path = args.out
    progress = not args.quiet
    started = time.perf_counter()
    demo = generate_demo_images(
        out / "images",
        num_images=args.images,
        num_classes=args.classes,
        seed=args.seed,
        workers=args.workers,
        progress=progress,
    )
    took = time.perf_counter() - started
    print(
        f"images:  {len(demo.paths):,} JPEGs in {len(demo.class_names)} classes under "
        f"{demo.root} (mean {demo.mean_bytes / 1e3:.0f} KB) in {took:.1f} s"
    )

    packed = out / "demo.msgpack"
    source = DirectoryReader(str(demo.root / "{LABEL}" / "**"))
    started = time.perf_counter()
    with source, FileWriter(packed, overwrite=True, disable=not progress, total=len(source)) as w:
        for sample in source:
            w.write(
                {
                    "key": sample["key"],
                    "image": sample["data"],
                    "label": sample["label"],
                    "class_name": sample["_label"],
                }
            )
    took = time.perf_counter() - started
    size = packed.stat().st_size
    print(
        f"packed:  {packed} ({size / 1e6:.1f} MB + index) in {took:.2f} s: "
        f"{len(source) / took:,.0f} samples/s, {size / took / 1e6:,.0f} MB/s"
    )

    with MsgpackReader(packed) as reader:
        started = time.perf_counter()
        ok = reader.verify_data() and reader.verify_index()
        print(
            f"verify:  md5 of data and index {'match' if ok else 'MISMATCH'} "
            f"({time.perf_counter() - started:.2f} s)"
        )
        if not ok:
            return 1
        seconds = _timed(lambda: sum(1 for _ in reader.rawiter()))
        print(
            f"read:    sequential raw {len(reader) / seconds:,.0f} samples/s, "
            f"{size / seconds / 1e9:.2f} GB/s"
        )
        order = np.random.default_rng(args.seed).permutation(len(reader))
        seconds = _timed(lambda: [reader.get(i, raw=True) for i in order.tolist()])
        print(f"read:    shuffled get(), bytes copies, {len(reader) / seconds:,.0f} samples/s")
        seconds = _timed(
            lambda: [
                reader.getitems(order[i : i + 256], raw=True, copy=False)
                for i in range(0, len(order), 256)
            ]
        )
        print(
            f"read:    shuffled getitems() x256, zero-copy views, {len(reader) / seconds:,.0f} samples/s"
        )
        seconds = _timed(lambda: sum(1 for _ in reader))
        print(f"read:    sequential decoded dicts {len(reader) / seconds:,.0f} samples/s")
        count = min(len(reader), 500)
        seconds = _timed(lambda: _decode_images(reader, count))
        print(
            f"decode:  Pillow JPEG -> RGB, 1 thread, {count / seconds:,.0f} images/s "
            f"(first {count})"
        )
        labels = np.bincount([reader.get(i)["label"] for i in range(len(reader))])
        print(f"labels:  {len(labels)} classes, {labels.min()}-{labels.max()} images each")
    return 0


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _decode_images(reader: MsgpackReader, count: int) -> None:
    from PIL import Image

    for sample in reader.iter(0, count):
        with Image.open(io.BytesIO(sample["image"])) as image:
            image.convert("RGB").load()
