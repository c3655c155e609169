"""``shardstream demo``: generate the demo image set, pack it, read it back, train DINO on it.

This is the main job of the README's first command: it needs no download. After packing, verifying
and timing reads, it pretrains a tiny ViT with DINO on the packed set for a few minutes on the CPU
(``--train-steps``; ``--no-train`` skips it), printing the loss trajectory, images/s, the input
stall (the share of time the model waited for the loader) and the k-NN top-1 accuracy of the
trained teacher against the same architecture at its random initialisation.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np

from ..methods.train.config import DinoTrainConfig
from ..read import DirectoryReader, MsgpackReader
from ..sets.demo import generate_demo_images
from ..write import FileWriter
from ._common import positive_int

__all__ = ["add_parser", "run", "DEFAULT_TRAIN_STEPS"]

#: Default ``--train-steps``: batches of 32, about 3 minutes on 2 shared CPU cores.
DEFAULT_TRAIN_STEPS = 3000


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
    parser.add_argument(
        "--workers", type=int, default=None, help="generator processes (default: every core)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--train-steps",
        type=positive_int,
        default=DEFAULT_TRAIN_STEPS,
        help="DINO steps to train on the packed set (about 3 minutes on 2 CPU cores)",
    )
    parser.add_argument("--no-train", action="store_true", help="skip the DINO training")
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
    if not args.no_train:
        _train(packed, out / "dino", args.train_steps, args.seed, progress)
    return 0


def _train(packed: Path, out: Path, steps: int, seed: int, progress: bool) -> None:
    """Pretrain the default tiny ViT with DINO on ``packed``; print the losses, speed and k-NN."""
    import torch

    from ..methods.train.evaluate import (  # delayed: imports torch (optional)
        eval_image_size,
        evaluate_knn,
    )
    from ..methods.train.loop import build_model, train_dino  # delayed: imports torch (optional)

    config = DinoTrainConfig(
        data=str(packed),
        out=out,
        steps=steps,
        seed=seed,
        checkpoint_every=0,
        device="cpu",
        progress=progress,
    )
    result = train_dino(config)
    losses = np.asarray(result.losses)
    parts = np.array_split(losses, min(10, len(losses)))
    trajectory = " ".join(f"{part.mean():.2f}" for part in parts)
    print(
        f"dino:    {steps} steps x {config.batch_size} images ({config.global_crops_size} px x 2 + "
        f"{config.local_crops_size} px x {config.local_crops_number}), "
        f"{result.images_per_second:,.0f} images/s, input stall {100 * result.input_stall:.0f} %"
    )
    print(f"dino:    loss by tenth of the run: {trajectory}")
    sizes = dict.fromkeys((eval_image_size(config), config.global_crops_size))
    for size in sizes:
        trained = evaluate_knn(result.model, packed, image_size=size)
        torch.manual_seed(config.seed)
        baseline = evaluate_knn(build_model(config).eval(), packed, image_size=size)
        print(
            f"knn:     top-1 {100 * trained.accuracy:.1f} % trained vs "
            f"{100 * baseline.accuracy:.1f} % random init ({size} px centre crops, "
            f"{trained.test_samples} held out, k={trained.k})"
        )
    print(f"dino:    checkpoint {result.checkpoint}")


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _decode_images(reader: MsgpackReader, count: int) -> None:
    from PIL import Image

    for sample in reader.iter(0, count):
        with Image.open(io.BytesIO(sample["image"])) as image:
            image.convert("RGB").load()
