"""Decode + crop core, one thread: DCT-scaled decode_crops against full decodes and torchvision.

Run:  python benchmarks/bench_decode.py            (500 demo images, 5 repeats: ~1-2 minutes)
      python benchmarks/bench_decode.py --quick    (200 images, 3 repeats)

All in one process on one thread, over the same JPEG bytes held in memory (demo images cached under
``bench-data/decode/``):
- plain full decode with simplejpeg (the reference rate every pipeline is a fraction of),
  and Pillow open + convert RGB;
- RandomResizedCrop 224 + flip: shardstream's params + ``decode_crops`` at the chosen DCT scale,
  the same forced to full-size decode, and torchvision's PIL pipeline (open + RandomResizedCrop +
  RandomHorizontalFlip);
- the DINO multi-crop plan (2 x 224 with scale (0.32, 1) + 8 x 96 with scale (0.05, 0.32)),
  decoded once per image, with and without DCT scaling.
Printed: median img/s, and each rate as a fraction of the plain decode rate of the same run.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Row, Table, measure  # noqa: E402

from shardstream.sets.demo import GENERATOR_VERSION, generate_demo_images  # noqa: E402
from shardstream.vision import (  # noqa: E402
    choose_scale,
    decode_crops,
    image_size,
    random_resized_crop_params,
)

GLOBAL = ((0.32, 1.0), 224, 2)
LOCAL = ((0.05, 0.32), 96, 8)


def load_images(workdir: Path, count: int) -> list[bytes]:
    root = workdir / f"demo-images-v{GENERATOR_VERSION}-{count}"
    demo = generate_demo_images(root, num_images=count, num_classes=10, workers=2)
    return [path.read_bytes() for path in demo.paths]


def rrc_pipeline(images: list[bytes], scale: int | None):
    def run():
        rng = np.random.default_rng(0)
        for data in images:
            height, width = image_size(data)
            box = random_resized_crop_params(height, width, rng=rng)
            decode_crops(data, [box], 224, flip=[rng.random() < 0.5], scale=scale)

    return run


def dino_plan(height: int, width: int, rng: np.random.Generator):
    boxes, sizes = [], []
    for crop_scale, size, count in (GLOBAL, LOCAL):
        for _ in range(count):
            boxes.append(random_resized_crop_params(height, width, crop_scale, rng=rng))
            sizes.append(size)
    return boxes, sizes


def dino_pipeline(images: list[bytes], scale: int | None):
    def run():
        rng = np.random.default_rng(0)
        for data in images:
            boxes, sizes = dino_plan(*image_size(data), rng)
            decode_crops(data, boxes, sizes, flip=rng.random(len(boxes)) < 0.5, scale=scale)

    return run


def scale_histogram(images: list[bytes], dino: bool) -> dict[int, int]:
    rng = np.random.default_rng(0)
    counts = {1: 0, 2: 0, 4: 0, 8: 0}
    for data in images:
        height, width = image_size(data)
        if dino:
            boxes, sizes = dino_plan(height, width, rng)
        else:
            boxes, sizes = [random_resized_crop_params(height, width, rng=rng)], [224]
        counts[choose_scale(height, width, boxes, sizes)] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workdir", type=Path, default=Path("bench-data/decode"))
    args = parser.parse_args()
    if args.quick:
        args.images, args.repeats = 200, 3
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")

    import simplejpeg
    import torch
    from PIL import Image
    from torchvision import transforms

    torch.set_num_threads(1)
    images = load_images(args.workdir, args.images)
    n = len(images)
    mean_kb = sum(map(len, images)) / n / 1e3
    sizes = np.array([image_size(d) for d in images])
    print(
        f"{n} demo images, mean {mean_kb:.0f} KB, mean {sizes[:, 1].mean():.0f} x "
        f"{sizes[:, 0].mean():.0f} px; 1 thread; medians of {args.repeats}"
    )
    print("DCT scale chosen (denominator: images):")
    print(f"  RRC 224: {scale_histogram(images, dino=False)}")
    print(f"  DINO 2x224 + 8x96: {scale_histogram(images, dino=True)}")

    def timed(run):
        return measure(run, items=n, repeats=args.repeats).items_per_s

    def full_decode():
        for data in images:
            simplejpeg.decode_jpeg(data)

    def pil_decode():
        for data in images:
            Image.open(io.BytesIO(data)).convert("RGB")

    torchvision_rrc = transforms.Compose(
        [transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip()]
    )

    def torchvision_pipeline():
        torch.manual_seed(0)
        for data in images:
            torchvision_rrc(Image.open(io.BytesIO(data)).convert("RGB"))

    plain = timed(full_decode)
    table = Table("decode + crop, 1 thread (ratio = shardstream / peer)", "peer img/s")
    table.header()

    def add(name, peer, ours, note=""):
        fraction = f"{ours / plain:.0%} of plain decode"
        table.add(Row(name, peer, ours, "img/s", note=f"{fraction}{'; ' + note if note else ''}"))

    add("plain full decode (simplejpeg)", None, plain)
    add("PIL open + convert RGB", None, timed(pil_decode))
    tv = timed(torchvision_pipeline)
    add("RRC224+flip: torchvision PIL (peer)", None, tv)
    add("RRC224+flip: decode_crops, DCT scaled", tv, timed(rrc_pipeline(images, None)))
    add("RRC224+flip: decode_crops, forced full size", tv, timed(rrc_pipeline(images, 1)))
    add("DINO 2x224+8x96: decode once, DCT scaled", None, timed(dino_pipeline(images, None)))
    add("DINO 2x224+8x96: decode once, full size", None, timed(dino_pipeline(images, 1)))


if __name__ == "__main__":
    main()
