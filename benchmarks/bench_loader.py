"""Loader throughput: shardstream's Loader against datadings + DataLoader, torchvision and FFCV.

Run:  python benchmarks/bench_loader.py            (20,000 demo images, 3 repeats of >= 5 s each:
                                                     ~10-15 minutes on 2 cores, after the data exist)
      python benchmarks/bench_loader.py --quick    (4,000 images, 3 repeats of >= 2 s)

One run, one data set, 2 workers for every loader, batches of 256 (``drop_last`` everywhere, so
every batch holds 256 samples). The demo images (``shardstream.sets.demo``) are generated once under
``--workdir`` (default ``bench-data/loader/``) as an ImageFolder tree; the same JPEG files, byte for
byte, are packed into a shardstream/datadings ``.msgpack`` file and into an FFCV ``.beton``.

(a) Raw batches of image bytes, sequential order: ``torch.utils.data.DataLoader(num_workers=2,
    batch_size=256)`` over datadings' own ``datadings.torch.Dataset(MsgpackReader(path))``, against
    ``Loader(path).batch(256).pytorch(num_workers=2, decode_method={"image": "tobytes"})``.
    Target >= 2x.
(b) Decode + RandomResizedCrop 224 + horizontal flip + normalise to float32 batches, random order:
    torchvision ``ImageFolder`` + ``DataLoader`` (PIL decode, ``RandomResizedCrop(224)``,
    ``RandomHorizontalFlip()``, ``ToTensor()``, ``Normalize``); FFCV's ``Loader`` (2 threads,
    ``RandomResizedCropRGBImageDecoder((224, 224))``, ``RandomHorizontalFlip()``,
    ``NormalizeImage(mean * 255, std * 255, np.float32)``, ``ToTensor()``, ``ToTorchImage()``);
    shardstream's ``Loader(path).shuffle().batch(256).preset(SupervisedPreset(), device="cpu")
    .pytorch(num_workers=2)``. Target >= 1.2x FFCV. Each rate is also given as a fraction of the
    plain full-size decode rate of the same files measured in the same run
    (``simplejpeg.decode_jpeg`` over the JPEG bytes held in memory, 2 processes).
(c) The 1 -> 2 worker speed-up of shardstream's (b) pipeline against the 1 -> 2 process speed-up
    of plain decoding. Target >= 90 % of it.

Persistent workers for every loader, each timed repeat runs ``>= --min-seconds`` of batches on a
loader that is already streaming (worker start-up and FFCV's numba compilation are excluded);
medians of ``--repeats``. Targets are printed, never asserted (the 2 cores are shared).

FFCV is not a dependency of shardstream. Installed here for this benchmark (Debian 12, Python
3.11; ffcv 1.0.2 builds from its sdist against the system libraries) with:

    apt-get update && apt-get install -y pkg-config libturbojpeg0-dev libopencv-dev
    pip install ffcv       # also installs numba, llvmlite, opencv-python, pytorch_pfn_extras

No cupy is needed on the CPU. Without ffcv the FFCV row prints "not installed". Two FFCV details:
- The ``.beton`` holds the original JPEG bytes: FFCV's ``RGBImageField`` always re-encodes (its
  ``'jpg'`` mode runs ``cv2.imencode``, ``'raw'`` stores pixels), so a subclass of it writes the
  file's own bytes as a ``'jpg'``-mode record (height and width from the JPEG header); FFCV's
  reader is told to read that field as an ``RGBImageField`` (``custom_fields``).
- On the CPU, ``NormalizeImage`` must come before ``ToTensor``: in the order of FFCV's GPU example
  (``..., ToTensor(), ToTorchImage(), NormalizeImage(...)``) the CPU ``NormalizeImage`` is a numba
  stage after a non-numba one, and ffcv 1.0.2's ``Graph.group_operations`` then loops forever.
"""

from __future__ import annotations

import argparse
import gc
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Row, Table, measure  # noqa: E402

import shardstream  # noqa: E402
from shardstream.sets.demo import GENERATOR_VERSION, DemoSet, generate_demo_images  # noqa: E402
from shardstream.vision.supervised import (  # noqa: E402
    IMAGENET_MEAN,
    IMAGENET_STD,
    SupervisedPreset,
)

_IMAGES: list[bytes] = []  # the JPEG bytes plain-decode processes inherit (fork)


# --- data --------------------------------------------------------------------------------------


def demo_images(workdir: Path, count: int, progress: bool) -> DemoSet:
    """The demo set as an ImageFolder tree (generated once, reused)."""
    root = workdir / f"demo-images-v{GENERATOR_VERSION}-{count}"
    return generate_demo_images(
        root, num_images=count, num_classes=10, workers=2, progress=progress
    )


def packed_file(workdir: Path, demo: DemoSet) -> Path:
    """The same JPEG files packed by shardstream's writer (datadings' format)."""
    path = workdir / f"demo-v{GENERATOR_VERSION}-{len(demo.paths)}.msgpack"
    if not path.exists():
        with shardstream.FileWriter(path, overwrite=True, disable=True) as writer:
            for file, label in zip(demo.paths, demo.labels):
                key = file.relative_to(demo.root).as_posix()
                writer.write({"key": key, "image": file.read_bytes(), "label": label})
    return path


class _FileBytes:
    """An indexed dataset of ``(JPEG bytes, label)`` for FFCV's writer."""

    def __init__(self, demo: DemoSet):
        self.paths, self.labels = demo.paths, demo.labels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[bytes, int]:
        return self.paths[index].read_bytes(), self.labels[index]


def _original_jpeg_field():
    """An FFCV ``RGBImageField`` that stores each JPEG's own bytes (no re-encoding)."""
    from ffcv.fields import RGBImageField
    from ffcv.fields.rgb_image import IMAGE_MODES

    from shardstream.vision import image_size

    class OriginalJpegField(RGBImageField):
        def __init__(self):
            super().__init__(write_mode="jpg")

        def encode(self, destination, data, malloc):
            height, width = image_size(data)
            destination["mode"] = IMAGE_MODES["jpg"]
            destination["height"], destination["width"] = height, width
            destination["data_ptr"], storage = malloc(len(data))
            storage[:] = np.frombuffer(data, np.uint8)

    return OriginalJpegField


def beton_file(workdir: Path, demo: DemoSet) -> Path:
    """The same JPEG files in an FFCV ``.beton`` (written once with FFCV's ``DatasetWriter``)."""
    from ffcv.fields import IntField
    from ffcv.writer import DatasetWriter

    path = workdir / f"demo-v{GENERATOR_VERSION}-{len(demo.paths)}.beton"
    if not path.exists():
        partial = path.with_name(path.name + ".tmp")
        fields = {"image": _original_jpeg_field()(), "label": IntField()}
        DatasetWriter(str(partial), fields, num_workers=2).from_indexed_dataset(_FileBytes(demo))
        partial.rename(path)
    return path


def ffcv_available() -> bool:
    """Whether ffcv imports (it is optional)."""
    try:
        import ffcv  # noqa: F401
        from ffcv.loader import Loader  # noqa: F401
    except ImportError:
        return False
    return True


# --- timing ------------------------------------------------------------------------------------


def forever(loader) -> Iterator:
    """Batches of ``loader``, epoch after epoch."""
    while True:
        yield from loader


def stream_rate(
    batches: Iterator, batch_size: int, min_seconds: float, repeats: int, check=None
) -> float:
    """Median samples/s over ``repeats`` runs of ``>= min_seconds`` of batches from ``batches``."""
    first = next(batches)
    if check is not None:
        check(first)
    next(batches)
    start, count = time.perf_counter(), 0
    while count < 2 or time.perf_counter() - start < min(1.0, min_seconds / 2):
        next(batches)
        count += 1
    per_batch = (time.perf_counter() - start) / count
    per_repeat = max(2, math.ceil(min_seconds / per_batch))

    def run():
        for _ in range(per_repeat):
            next(batches)

    return measure(run, items=per_repeat * batch_size, repeats=repeats, warmup=0).items_per_s


def _decode_range(bounds: tuple[int, int, int]) -> int:
    import simplejpeg

    start, stop, rounds = bounds
    for _ in range(rounds):
        for data in _IMAGES[start:stop]:
            simplejpeg.decode_jpeg(data)
    return (stop - start) * rounds


def plain_decode_rate(processes: int, min_seconds: float, repeats: int) -> float:
    """Median images/s of full-size ``simplejpeg.decode_jpeg`` over ``_IMAGES`` in processes."""
    count = len(_IMAGES)
    single = measure(lambda: _decode_range((0, min(count, 100), 1)), items=1, repeats=1)
    estimate = processes * min(count, 100) / single.median
    rounds = max(1, math.ceil(min_seconds * estimate / count))
    chunks = 8 * processes
    bounds = [(count * i // chunks, count * (i + 1) // chunks, rounds) for i in range(chunks)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        pool.map(_decode_range, bounds[:processes])  # start the processes

        def run():
            pool.map(_decode_range, bounds, chunksize=1)

        return measure(run, items=count * rounds, repeats=repeats, warmup=0).items_per_s


def check_float_batch(batch_size: int) -> Callable:
    """A check that a batch holds ``batch_size`` normalised float32 images of 3 x 224 x 224."""

    def check(images) -> None:
        if tuple(images.shape) != (batch_size, 3, 224, 224) or str(images.dtype) != "torch.float32":
            raise SystemExit(f"unexpected batch: {tuple(images.shape)} {images.dtype}")

    return check


# --- the pipelines -----------------------------------------------------------------------------


def datadings_raw(path: Path, batch_size: int, workers: int):
    """datadings' torch Dataset over its MsgpackReader, in a torch DataLoader (raw bytes)."""
    from datadings.reader import MsgpackReader
    from datadings.torch import Dataset
    from torch.utils.data import DataLoader

    dataset = Dataset(MsgpackReader(path))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        drop_last=True,
        persistent_workers=workers > 0,
    )


def shardstream_raw(path: Path, batch_size: int, workers: int):
    """shardstream's Loader yielding batches of raw image bytes."""
    return (
        shardstream.Loader(path, seed=0)
        .batch(batch_size, drop_last=True)
        .pytorch(num_workers=workers, decode_method={"image": "tobytes"}, persistent_workers=True)
    )


def torchvision_rrc(root: Path, batch_size: int, workers: int):
    """torchvision's ImageFolder + RandomResizedCrop + flip + normalise, in a DataLoader."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    transform = transforms.Compose(
        [
            transforms.RandomResizedCrop(224),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    return DataLoader(
        datasets.ImageFolder(root, transform=transform),
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        persistent_workers=workers > 0,
    )


def ffcv_rrc(path: Path, batch_size: int, workers: int):
    """FFCV's Loader with the same pipeline on the CPU."""
    from ffcv.fields import RGBImageField
    from ffcv.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
    from ffcv.loader import Loader, OrderOption
    from ffcv.transforms import (
        NormalizeImage,
        RandomHorizontalFlip,
        Squeeze,
        ToTensor,
        ToTorchImage,
    )

    mean, std = np.array(IMAGENET_MEAN) * 255, np.array(IMAGENET_STD) * 255
    return Loader(
        str(path),
        batch_size=batch_size,
        num_workers=workers,
        order=OrderOption.RANDOM,
        os_cache=True,
        drop_last=True,
        seed=0,
        custom_fields={"image": RGBImageField},
        pipelines={
            "image": [
                RandomResizedCropRGBImageDecoder((224, 224)),
                RandomHorizontalFlip(),
                NormalizeImage(mean, std, np.float32),
                ToTensor(),
                ToTorchImage(),
            ],
            "label": [IntDecoder(), ToTensor(), Squeeze()],
        },
    )


def shardstream_rrc(path: Path, batch_size: int, workers: int):
    """shardstream's Loader with the SupervisedPreset (normalised on the CPU)."""
    return (
        shardstream.Loader(path, seed=0)
        .shuffle()
        .batch(batch_size, drop_last=True)
        .preset(SupervisedPreset(), device="cpu")
        .pytorch(num_workers=workers, persistent_workers=True)
    )


def close(loader) -> None:
    """Stop a loader's workers (shardstream and FFCV have ``close``; DataLoader has none)."""
    closer = getattr(loader, "close", None)
    if closer is not None:
        closer()


# --- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min-seconds", type=float, default=5.0, help="per timed repeat")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workdir", type=Path, default=Path("bench-data/loader"))
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.min_seconds = min(args.images, 4000), min(args.min_seconds, 2.0)
    args.workdir.mkdir(parents=True, exist_ok=True)
    batch, workers, repeats, seconds = args.batch_size, args.workers, args.repeats, args.min_seconds

    demo = demo_images(args.workdir, args.images, progress=sys.stderr.isatty())
    packed = packed_file(args.workdir, demo)
    has_ffcv = ffcv_available()
    beton = beton_file(args.workdir, demo) if has_ffcv else None
    _IMAGES[:] = [path.read_bytes() for path in demo.paths]
    mean_kb = demo.mean_bytes / 1e3
    print(
        f"{len(demo.paths)} demo images ({mean_kb:.0f} KB mean), batch {batch}, {workers} workers "
        f"each; medians of {repeats} repeats of >= {seconds:g} s; os.cpu_count() = {os.cpu_count()}"
    )

    # plain decode first, before any loader starts threads or processes
    decode_one = plain_decode_rate(1, seconds, repeats)
    decode_all = plain_decode_rate(workers, seconds, repeats)
    _IMAGES.clear()

    def rate(make, source, n_workers, check=None, field=None):
        loader = make(source, batch, n_workers)
        batches = forever(loader)
        try:
            picked = batches if field is None else (b[field] for b in batches)
            return stream_rate(picked, batch, seconds, repeats, check), loader
        finally:
            batches.close()  # ends the epoch's iterator (DataLoader workers go with it)
            close(loader)
            gc.collect()

    table = Table("loader throughput, img/s (ratio = shardstream / peer)", "peer")
    table.header()
    table.add(Row(f"plain full decode, {workers} processes (reference)", None, decode_all, "img/s"))

    dd_raw, _ = rate(datadings_raw, packed, workers)
    ss_raw, _ = rate(shardstream_raw, packed, workers)
    table.add(
        Row(
            "(a) raw bytes vs datadings Dataset+DataLoader",
            dd_raw,
            ss_raw,
            "img/s",
            target=2.0,
        )
    )

    # shardstream before FFCV: forking after numba's thread pool exists makes it print warnings
    check = check_float_batch(batch)
    ours, loader = rate(shardstream_rrc, packed, workers, check, field="image")
    stages = loader.stats()
    ours_one, _ = rate(shardstream_rrc, packed, 1, check, field="image")
    tv, _ = rate(torchvision_rrc, demo.root, workers, check, field=0)
    ffcv = rate(ffcv_rrc, beton, workers, check, field=0)[0] if has_ffcv else None

    def share(value: float | None) -> str:
        return f"{value / decode_all:.0%}" if value else "-"

    fractions = f"of plain decode: ours {share(ours)}, torchvision {share(tv)}"
    table.add(
        Row("(b) RRC224+flip+norm vs torchvision ImageFolder", tv, ours, "img/s", note=fractions)
    )
    table.add(
        Row(
            "(b) RRC224+flip+norm vs FFCV Loader",
            ffcv,
            ours,
            "img/s",
            target=1.2,
            note=f"FFCV {share(ffcv)} of plain decode" if has_ffcv else "FFCV not installed",
        )
    )
    ours_speedup, decode_speedup = ours / ours_one, decode_all / decode_one
    table.add(
        Row(
            f"(c) 1->{workers} worker speed-up vs plain decode's",
            decode_speedup,
            ours_speedup,
            "x",
            target=0.9,
            note=f"ours {ours_one:,.0f} -> {ours:,.0f} img/s ({ours_speedup:.2f}x); decode "
            f"{decode_one:,.0f} -> {decode_all:,.0f} img/s ({decode_speedup:.2f}x)",
        )
    )
    busy = {k: stages.get(f"{k}_s", 0.0) for k in ("read", "decode", "transform", "collate")}
    total = sum(busy.values()) or 1.0
    split = ", ".join(f"{k} {v / total:.0%}" for k, v in busy.items())
    print(
        f"shardstream (b) stage split of worker time: {split}; stall {stages.get('stall_pct', 0):.0f} %"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
