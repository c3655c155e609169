"""Dense-target throughput: SegmentationPreset in shardstream's Loader against torchvision v2.

Run:  python benchmarks/bench_dense.py              (20,000 demo images, 3 rounds of >= 5 s each)
      python benchmarks/bench_dense.py --images 800 --min-seconds 3

One run, one data set, 2 workers for every loader. The demo images (``shardstream.sets.demo``)
are generated once under ``--workdir`` (default ``bench-data/dense/``); each gets a synthetic
label map of its size (blocks of 16 x 16 pixels of classes 0-20, a palette PNG as VOC ships
them). The same JPEG and PNG bytes are packed into a ``.msgpack`` file (``image``,
``label_image``) and kept as files for the peers.

The pipeline: decode image and mask, RandomResizedCrop 512 of both (image bilinear antialiased,
mask nearest), horizontal flip of both, image to normalised float32, mask as integers; shuffled
batches of ``--batch-size`` (``drop_last``), persistent workers.

- torchvision v2 on PIL: a ``Dataset`` opening both files with Pillow, ``v2.Compose(
  [RandomResizedCrop(512), RandomHorizontalFlip(), ToImage(), ToDtype(float32, scale=True),
  Normalize])`` over ``(PIL image, tv_tensors.Mask)``, in a ``DataLoader``.
- torchvision v2 on tensors: the same over ``torchvision.io.decode_jpeg`` / ``decode_png``
  tensors.
- shardstream: ``Loader(path).shuffle().batch(n).preset(SegmentationPreset(size=512),
  device="cpu").pytorch(num_workers=2)`` (normalised in the workers).

Each timed run takes ``>= --min-seconds`` of batches on a loader already streaming (start-up
and the first batches excluded). ``--repeats`` rounds each run the three pipelines in turn, each
on a fresh loader, so a change in the load of the shared machine falls on all of them alike.
Printed: the median img/s over the rounds, the spread (slowest and fastest round) and the
ratio. The target (>= 3x torchvision v2) is printed, never asserted (the cores are shared).
"""

from __future__ import annotations

import argparse
import gc
import io
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Row, Table, measure  # noqa: E402

import shardstream  # noqa: E402
from shardstream.sets.demo import GENERATOR_VERSION, DemoSet, generate_demo_images  # noqa: E402
from shardstream.vision.dense import SegmentationPreset  # noqa: E402
from shardstream.vision.recipes import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402

SIZE = 512


# --- data --------------------------------------------------------------------------------------


def label_png(index: int, width: int, height: int) -> bytes:
    """A synthetic palette label map: 16 x 16 blocks of classes 0-20, a void (255) border."""
    from PIL import Image

    rng = np.random.default_rng(index)
    blocks = rng.integers(0, 21, (height // 16 + 1, width // 16 + 1), dtype=np.uint8)
    labels = np.repeat(np.repeat(blocks, 16, 0), 16, 1)[:height, :width]
    labels[:2], labels[:, :2] = 255, 255
    image = Image.fromarray(np.ascontiguousarray(labels), "P")
    image.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tolist())
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def dense_set(workdir: Path, count: int, progress: bool) -> tuple[DemoSet, list[Path], Path]:
    """The demo images, a label PNG per image (files), and both packed into a .msgpack file."""
    from PIL import Image

    root = workdir / f"demo-images-v{GENERATOR_VERSION}-{count}"
    demo = generate_demo_images(
        root, num_images=count, num_classes=10, workers=2, progress=progress
    )
    labels_root = workdir / f"labels-v{GENERATOR_VERSION}-{count}"
    masks = [labels_root / path.relative_to(demo.root).with_suffix(".png") for path in demo.paths]
    packed = workdir / f"dense-v{GENERATOR_VERSION}-{count}.msgpack"
    if packed.exists():
        return demo, masks, packed
    for index, (path, mask) in enumerate(zip(demo.paths, masks)):
        if not mask.exists():
            with Image.open(path) as image:
                data = label_png(index, *image.size)
            mask.parent.mkdir(parents=True, exist_ok=True)
            partial = mask.with_suffix(".tmp")
            partial.write_bytes(data)
            partial.replace(mask)
    with shardstream.FileWriter(packed, overwrite=True, disable=True) as writer:
        for path, mask in zip(demo.paths, masks):
            key = path.relative_to(demo.root).as_posix()
            writer.write({"key": key, "image": path.read_bytes(), "label_image": mask.read_bytes()})
    return demo, masks, packed


# --- the pipelines -----------------------------------------------------------------------------


class TorchvisionDense:
    """A map-style dataset of (image, mask) files through torchvision v2 (PIL or tensors)."""

    def __init__(self, images: list[Path], masks: list[Path], tensors: bool):
        self.images, self.masks, self.tensors = images, masks, tensors
        self.transform = None

    def __len__(self) -> int:
        return len(self.images)

    def _transform(self):
        import torch
        from torchvision import tv_tensors
        from torchvision.transforms import v2

        if self.transform is None:
            self.transform = v2.Compose(
                [
                    v2.RandomResizedCrop(SIZE, antialias=True),
                    v2.RandomHorizontalFlip(),
                    v2.ToImage(),
                    v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
                    v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
                ]
            )
        return self.transform

    def __getitem__(self, index: int):
        import torch
        from torchvision import io as tvio
        from torchvision import tv_tensors

        if self.tensors:
            image = tvio.decode_jpeg(tvio.read_file(str(self.images[index])))
            image = tv_tensors.Image(image)
            mask = tv_tensors.Mask(tvio.decode_png(tvio.read_file(str(self.masks[index])))[0])
        else:
            from PIL import Image

            image = Image.open(self.images[index]).convert("RGB")
            with Image.open(self.masks[index]) as png:
                mask = tv_tensors.Mask(torch.from_numpy(np.array(png)))
        return self._transform()(image, mask)


def torchvision_dense(images, masks, batch_size: int, workers: int, tensors: bool):
    """torchvision v2 (on PIL images or tensors) in a DataLoader."""
    from torch.utils.data import DataLoader

    return DataLoader(
        TorchvisionDense(list(images), list(masks), tensors),
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        persistent_workers=workers > 0,
    )


def shardstream_dense(path: Path, batch_size: int, workers: int):
    """shardstream's Loader with the SegmentationPreset (normalised in the workers)."""
    return (
        shardstream.Loader(path, seed=0)
        .shuffle()
        .batch(batch_size, drop_last=True)
        .preset(SegmentationPreset(size=SIZE), device="cpu")
        .pytorch(num_workers=workers, persistent_workers=True)
    )


# --- timing ------------------------------------------------------------------------------------


def forever(loader) -> Iterator:
    """Batches of ``loader``, epoch after epoch."""
    while True:
        yield from loader


def check_batch(batch, batch_size: int) -> None:
    """A batch must hold ``batch_size`` float32 3 x 512 x 512 images and 512 x 512 masks."""
    image, mask = (batch["image"], batch["label_image"]) if isinstance(batch, dict) else batch
    if tuple(image.shape) != (batch_size, 3, SIZE, SIZE) or str(image.dtype) != "torch.float32":
        raise SystemExit(f"unexpected images: {tuple(image.shape)} {image.dtype}")
    if tuple(mask.shape)[-2:] != (SIZE, SIZE) or mask.shape[0] != batch_size:
        raise SystemExit(f"unexpected masks: {tuple(mask.shape)}")


def stream_rate(loader, batch_size: int, min_seconds: float) -> float:
    """img/s of one run of ``>= min_seconds`` of batches from ``loader`` once it streams
    (start-up and the first batches excluded); the loader is closed after."""
    batches = forever(loader)
    try:
        check_batch(next(batches), batch_size)
        next(batches)
        start, count = time.perf_counter(), 0
        while count < 2 or time.perf_counter() - start < min(1.0, min_seconds / 2):
            next(batches)
            count += 1
        per_repeat = max(2, math.ceil(min_seconds / ((time.perf_counter() - start) / count)))

        def run():
            for _ in range(per_repeat):
                next(batches)

        return measure(run, items=per_repeat * batch_size, repeats=1, warmup=0).items_per_s
    finally:
        batches.close()
        closer = getattr(loader, "close", None)
        if closer is not None:
            closer()
        gc.collect()


def rates_in_rounds(
    makers: dict[str, Callable], batch_size: int, min_seconds: float, rounds: int
) -> dict[str, list[float]]:
    """Per pipeline, the img/s of each round; a round runs every pipeline once, in turn, each on
    a fresh loader, so a change in the shared machine's load falls on all of them alike."""
    rates: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(rounds):
        for name, make in makers.items():
            rates[name].append(stream_rate(make(), batch_size, min_seconds))
    return rates


def spread(rates: list[float]) -> str:
    """The slowest and fastest round as img/s."""
    return f"rounds {min(rates):,.1f}-{max(rates):,.1f} img/s"


# --- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min-seconds", type=float, default=5.0, help="per timed repeat")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("bench-data/dense"))
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    batch, workers, repeats, seconds = args.batch_size, args.workers, args.repeats, args.min_seconds

    demo, masks, packed = dense_set(args.workdir, args.images, progress=sys.stderr.isatty())
    print(
        f"{len(demo.paths)} demo images ({demo.mean_bytes / 1e3:.0f} KB mean) with label maps, "
        f"RandomResizedCrop {SIZE} + flip of image and mask, batch {batch}, {workers} workers "
        f"each; medians of {repeats} rounds of >= {seconds:g} s; os.cpu_count() = "
        f"{os.cpu_count()}"
    )
    rates = rates_in_rounds(
        {
            "ours": lambda: shardstream_dense(packed, batch, workers),
            "pil": lambda: torchvision_dense(demo.paths, masks, batch, workers, False),
            "tensors": lambda: torchvision_dense(demo.paths, masks, batch, workers, True),
        },
        batch,
        seconds,
        repeats,
    )
    ours, pil, tensors = (statistics.median(rates[name]) for name in ("ours", "pil", "tensors"))
    table = Table("dense throughput, img/s (ratio = shardstream / peer)", "torchvision")
    table.header()
    note = f"ours {spread(rates['ours'])}"
    table.add(
        Row(
            "image+mask RRC512+flip vs tv v2 on PIL",
            pil,
            ours,
            "img/s",
            target=3.0,
            note=f"{note}; peer {spread(rates['pil'])}",
        )
    )
    table.add(
        Row(
            "image+mask RRC512+flip vs tv v2 on tensors",
            tensors,
            ours,
            "img/s",
            target=3.0,
            note=f"{note}; peer {spread(rates['tensors'])}",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
