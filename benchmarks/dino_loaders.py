"""DINO training fed by shardstream's loader and by torchvision's, on the same model and images.

Run:  python benchmarks/dino_loaders.py --device cuda                  (ViT-S/16, 2 x 224 + 8 x 96,
                                                                        batch 64; a GPU check)
      python benchmarks/dino_loaders.py --tiny --device cpu --steps 2  (every step in miniature)

Both loaders make dinov2's multi-crop views of the same demo images (generated once under
``--workdir``: an ImageFolder tree and its packed copy) and feed the same training step
(:class:`shardstream.DINO` on a timm encoder: forward, DINO loss, backward, AdamW, EMA teacher):

- ``shardstream``: ``Loader(packed).batch(B).shuffle().preset(DinoPreset(...), device)``
  with ``--workers`` processes (colour and normalisation on the device);
- ``shardstream-resize``: the same with ``DinoPreset(resize="device")`` (the workers decode and
  ship uint8 regions; the device cuts, resizes and flips the views);
- ``shardstream-decode``: ``DinoPreset(decode="device")`` (the workers ship JPEG bytes; the
  device decodes them with nvJPEG; CUDA only);
- ``torchvision``: ``torchvision.datasets.ImageFolder`` + ``shardstream.DataAugmentationDINO``
  (dinov2's augmentation, view for view) + ``DataLoader(num_workers, pin_memory)``, views stacked
  crop-major as dinov2's collate does, then copied to the device.

After ``--warmup`` steps (workers started, kernels chosen), ``--steps`` steps are timed. Each
step waits for its batch (the input stall), then trains; the device is synchronised after each
step so that the wait is not hidden in queued kernels. One line per loader:
``loader=NAME images/s=R stall=S%``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

#: ViT-S/16 and dinov2's crops, the GPU check's configuration.
FULL = {"encoder": "vit_small_patch16_224", "global": 224, "local": 96, "locals": 8, "batch": 64}
#: A tiny ViT and small crops: the same code in miniature, for a CPU dry run.
TINY = {"encoder": "vit_tiny_patch16_224", "global": 32, "local": 16, "locals": 2, "batch": 8}
TINY_ENCODER_KWARGS = {"patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3}


def prepare(workdir: Path, images: int, workers: int) -> tuple[Path, Path]:
    """The demo images as an ImageFolder tree and packed (made once; reused when present)."""
    from shardstream import FileWriter
    from shardstream.sets.demo import generate_demo_images

    folder, packed = workdir / f"images-{images}", workdir / f"demo-{images}.msgpack"
    if not folder.is_dir():
        generate_demo_images(folder, num_images=images, num_classes=10, workers=workers)
    if not packed.exists():
        classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
        with FileWriter(packed) as writer:
            for label, name in enumerate(classes):
                for path in sorted((folder / name).iterdir()):
                    writer.write({"key": path.name, "image": path.read_bytes(), "label": label})
    return folder, packed


def build(args: argparse.Namespace, shape: dict[str, Any], packed: Path) -> Any:
    """The DINO model and its optimizer on ``args.device``."""
    from shardstream.methods.train.config import DinoTrainConfig
    from shardstream.methods.train.loop import build_model

    config = DinoTrainConfig(
        data=str(packed),
        encoder_name=shape["encoder"],
        encoder_kwargs=dict(TINY_ENCODER_KWARGS) if args.tiny else {},
        global_crops_size=shape["global"],
        local_crops_size=shape["local"],
        local_crops_number=shape["locals"],
        batch_size=shape["batch"],
    )
    torch.manual_seed(0)
    model = build_model(config).to(args.device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    return model, optimizer


def shardstream_batches(
    args: argparse.Namespace, shape: dict[str, Any], packed: Path, mode: str = "cpu"
) -> Any:
    from shardstream import Loader
    from shardstream.vision.dino import DinoPreset

    preset = DinoPreset(
        global_crops_size=shape["global"],
        local_crops_size=shape["local"],
        local_crops_number=shape["locals"],
        resize="device" if mode in ("resize", "decode") else "cpu",
        decode="device" if mode == "decode" else "cpu",
    )
    loader = (
        Loader(packed, seed=0)
        .batch(shape["batch"], drop_last=True)
        .shuffle(True)
        .preset(preset, device=args.device)
        .pytorch(num_workers=args.workers, persistent_workers=True)
    )
    while True:
        for batch in loader:
            yield batch["collated_global_crops"], batch["collated_local_crops"]


def _stack_views(samples: list) -> tuple[torch.Tensor, torch.Tensor]:
    """dinov2's collate, crop-major: all first global views, then all second ones, ..."""
    views = [sample[0] for sample in samples]
    global_crops = torch.stack([v["global_crops"][i] for i in range(2) for v in views])
    count = len(views[0]["local_crops"])
    local_crops = torch.stack([v["local_crops"][i] for i in range(count) for v in views])
    return global_crops, local_crops


def torchvision_batches(args: argparse.Namespace, shape: dict[str, Any], folder: Path) -> Any:
    from torchvision.datasets import ImageFolder

    from shardstream import DataAugmentationDINO

    augment = DataAugmentationDINO(
        (0.32, 1.0),
        (0.05, 0.32),
        shape["locals"],
        global_crops_size=shape["global"],
        local_crops_size=shape["local"],
    )
    loader = torch.utils.data.DataLoader(
        ImageFolder(str(folder), transform=augment),
        batch_size=shape["batch"],
        shuffle=True,
        drop_last=True,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
        pin_memory=torch.device(args.device).type == "cuda",
        collate_fn=_stack_views,
    )
    while True:
        for global_crops, local_crops in loader:
            yield (
                global_crops.to(args.device, non_blocking=True),
                local_crops.to(args.device, non_blocking=True),
            )


def measure(name: str, batches: Any, args: argparse.Namespace, shape: dict[str, Any]) -> str:
    """Train ``--warmup`` + ``--steps`` steps on ``batches``; the result line of the timed ones."""
    model, optimizer = build(args, shape, args.packed)
    device = torch.device(args.device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else None
    waited = 0.0
    started = 0.0
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            sync()
            waited, started = 0.0, time.perf_counter()
        before = time.perf_counter()
        global_crops, local_crops = next(batches)
        sync()
        waited += time.perf_counter() - before
        if autocast is not None:
            with autocast:
                output = model(
                    global_views=list(global_crops.chunk(2)),
                    local_views=list(local_crops.chunk(shape["locals"])),
                )
        else:
            output = model(
                global_views=list(global_crops.chunk(2)),
                local_views=list(local_crops.chunk(shape["locals"])),
            )
        optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        optimizer.step()
        model.update_teacher()
        sync()
    seconds = time.perf_counter() - started
    rate = args.steps * shape["batch"] / seconds
    return (
        f"loader={name} images/s={rate:.1f} stall={100 * waited / seconds:.1f}% "
        f"steps={args.steps} batch={shape['batch']} encoder={shape['encoder']} "
        f"crops=2x{shape['global']}+{shape['locals']}x{shape['local']} device={args.device} "
        f"workers={args.workers} loss={float(output.loss.detach()):.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="training device (cuda)")
    parser.add_argument("--tiny", action="store_true", help="tiny ViT and crops (a dry run)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per loader (30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (5)")
    parser.add_argument("--images", type=int, default=2000, help="demo images (2000)")
    parser.add_argument("--workers", type=int, default=None, help="loader processes (cores - 2)")
    parser.add_argument("--workdir", type=Path, default=Path("bench-data/gpu-check"))
    parser.add_argument(
        "--loaders",
        default="shardstream,shardstream-resize,shardstream-decode,torchvision",
        help="which loaders, comma-separated (shardstream-decode needs CUDA)",
    )
    args = parser.parse_args(argv)
    if args.workers is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
        args.workers = max(1, cores - 2)
    from shardstream.fastpaths import check_device

    check_device(args.device, "dino_loaders.py --device")
    shape = TINY if args.tiny else FULL
    args.workdir.mkdir(parents=True, exist_ok=True)
    folder, args.packed = prepare(args.workdir, args.images, args.workers)
    for name in args.loaders.split(","):
        if name == "shardstream":
            batches = shardstream_batches(args, shape, args.packed)
        elif name in ("shardstream-resize", "shardstream-decode"):
            batches = shardstream_batches(args, shape, args.packed, name.split("-")[1])
        elif name == "torchvision":
            batches = torchvision_batches(args, shape, folder)
        else:
            parser.error(
                f"unknown loader {name!r} "
                "(shardstream, shardstream-resize, shardstream-decode, torchvision)"
            )
        try:
            print(measure(name, batches, args, shape), flush=True)
        finally:
            batches.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
