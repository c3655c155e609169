"""The full DINOv2 multi-crop recipe: torchvision's pipeline against shardstream's DinoPreset, one run.

Run:  python benchmarks/bench_dino.py            (20,000 demo images; 1,920 per timed pass, 3 repeats)
      python benchmarks/bench_dino.py --quick    (2,000 demo images; 640 per pass, 2 repeats)
      python benchmarks/bench_dino.py --device-only --device cuda --batch 256
                                                  (device-side augmentation alone, e.g. on a GPU)

Every pipeline makes dinov2's views (2 x 224 global + 8 x 96 local crops, colour jitter in random
order, grayscale, Gaussian blur, solarisation, normalisation) with ``--workers`` loader processes
(2 by default) on the same demo images (generated once under ``bench-data/convert``, as
``bench_convert.py`` makes them, and packed once into ``bench-data/dino/``). Side by side:

- plain full-size JPEG decoding of the same files on ``--workers`` processes (simplejpeg, the
  fastest decoder here): the reference rate of target (b); for context also with Pillow (what
  dinov2's ``ImageFolder`` loader decodes with, and the rate the issue quotes, ~1,520 img/s),
  and the steady-state (b) rate against it (no target);
- baseline: torchvision ``ImageFolder`` + a ``DataAugmentationDINO`` built from torchvision
  transforms exactly as dinov2 builds it (below) + ``DataLoader(num_workers, batch_size)`` with a
  collate that stacks the views crop-major as dinov2's does;
- (a) shardstream end to end, normalised float batches on the CPU:
  ``Loader(path).batch(B).preset(DinoPreset(), device="cpu").pytorch(num_workers)``;
  target >= 4x the baseline;
- (b) the worker side alone (decode, crops, resizes, flips, colour parameters, masks, uint8 out):
  the same loader with a device step that returns the batch untouched. Its target, >= 50 % of the
  plain decode rate, is checked on the steady-state row: from the end of the pass's first sixth of
  batches to its last, so without starting the workers, like for like with the plain decode row
  (whose processes are started before its clock). The row for whole passes, which also fork the
  workers and fill the pipeline every 1,920 images (~0.19 s to the first batch), is printed for
  context. The loader's ``stats()`` split of the worker time is printed, and a finer split of the
  worker step measured in this process on one thread.
- (c) the worker side of ``DinoPreset(resize="device")`` (header, crop plan, colour parameters,
  masks, one decode of the rows the crops span, out as libjpeg's raw Y/Cb/Cr planes: the
  upsampling and colour conversion run in the device step; the device step excluded) in
  steady state: target >= 0.85x the plain decode rate. Its workers decode with the
  system libjpeg-turbo (shardstream's C extension ``_jpegregion``), so plain decoding is timed
  with it too (full images into new arrays, as simplejpeg returns them), and (c)'s peer is the
  quicker of the two plain decoders in each repeat. Both plain decodes, (b) and (c) are timed
  in turn in each repeat (a shared machine's load drifts between rows), and the ratios are
  printed per repeat under the table with every repeat's rate (the spread). Its device step
  (planes to RGB, cut, resize, flip, colour, normalisation) timed alone on the CPU gives the
  other side of the split, in ms per image, with its resize part (planes to RGB included) and
  its planes-to-RGB part on their own. ``--shipped-only`` runs only these rows. Last, the worker side's split per
  part in this process's CPU time (laid out as in a loader worker: payloads decoded into the
  batch's slot), next to a plain full decode's. A pass's first batches per worker collate
  outside their slots while the engine sizes them to the ragged payloads (copied, fresh pages);
  some of those fall inside a 30-batch pass's steady window.

Each timed pass loads the first ``--per-run`` images in file order (no shuffling) and includes
starting the workers, for every pipeline alike. Medians of ``--repeats`` passes. The machine is
shared: figures are provisional.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Row, Table, measure  # noqa: E402

from shardstream.engine.scratch import FRESH  # noqa: E402
from shardstream.sets.demo import GENERATOR_VERSION, generate_demo_images  # noqa: E402

# --- the baseline: dinov2's DataAugmentationDINO in torchvision transforms --------------------


def make_dinov2_augmentation(
    global_crops_scale=(0.32, 1.0),
    local_crops_scale=(0.05, 0.32),
    local_crops_number=8,
    global_crops_size=224,
    local_crops_size=96,
):
    """dinov2's ``DataAugmentationDINO`` as it ships (torchvision v1 transforms on PIL images).

    Includes dinov2's ``GaussianBlur(p)``, which blurs with probability ``1 - p``.
    """
    from torchvision import transforms

    class GaussianBlur(transforms.RandomApply):
        def __init__(self, *, p=0.5, radius_min=0.1, radius_max=2.0):
            blur = transforms.GaussianBlur(kernel_size=9, sigma=(radius_min, radius_max))
            super().__init__(transforms=[blur], p=1 - p)  # dinov2's inversion, kept

    flip_and_crop = {
        kind: transforms.Compose(
            [
                transforms.RandomResizedCrop(
                    size, scale=scale, interpolation=transforms.InterpolationMode.BICUBIC
                ),
                transforms.RandomHorizontalFlip(p=0.5),
            ]
        )
        for kind, size, scale in (
            ("global", global_crops_size, global_crops_scale),
            ("local", local_crops_size, local_crops_scale),
        )
    }
    color_jittering = transforms.Compose(
        [
            transforms.RandomApply(
                [transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)],
                p=0.8,
            ),
            transforms.RandomGrayscale(p=0.2),
        ]
    )
    normalize = transforms.Compose(
        [
            transforms.ToTensor(),
            transforms.Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
        ]
    )
    global_1 = transforms.Compose([color_jittering, GaussianBlur(p=1.0), normalize])
    global_2 = transforms.Compose(
        [
            color_jittering,
            GaussianBlur(p=0.1),
            transforms.RandomSolarize(threshold=128, p=0.2),
            normalize,
        ]
    )
    local = transforms.Compose([color_jittering, GaussianBlur(p=0.5), normalize])

    def augment(image):
        first = global_1(flip_and_crop["global"](image))
        second = global_2(flip_and_crop["global"](image))
        return {
            "global_crops": [first, second],
            "global_crops_teacher": [first, second],
            "local_crops": [
                local(flip_and_crop["local"](image)) for _ in range(local_crops_number)
            ],
            "offsets": (),
        }

    return augment


def stack_crop_major(samples):
    """Collate ``(views, label)`` pairs: crops stacked crop-major, as dinov2's collate does."""
    import torch

    views = [s[0] for s in samples]
    out = {}
    for key in ("global_crops", "local_crops"):
        count = len(views[0][key])
        out[key] = torch.stack([v[key][i] for i in range(count) for v in views])
    out["labels"] = torch.tensor([s[1] for s in samples])
    return out


class _Augment:
    """Picklable wrapper (DataLoader workers may be spawned)."""

    def __init__(self):
        self.augment = None

    def __call__(self, image):
        if self.augment is None:
            self.augment = make_dinov2_augmentation()
        return self.augment(image)


# --- shardstream side -----------------------------------------------------------------------


class WorkerSideOnly:
    """A DinoPreset whose device step returns the collated uint8 batch untouched."""

    def __init__(self, preset):
        self.preset = preset
        self.fields = preset.fields

    def in_place_fields(self):
        return self.preset.in_place_fields()

    def worker(self, sample, rng, out=None):
        return self.preset.worker(sample, rng, out=out)

    def device(self, batch):
        return batch


class ShippedWorkerSideOnly(WorkerSideOnly):
    """A ``resize="device"`` DinoPreset's worker side: its ragged collation, no device step."""

    def collate(self, samples, buffers=FRESH):
        return self.preset.collate(samples, buffers)


def children_cpu_s() -> float | None:
    """CPU seconds (user + system) so far of this process's live child processes, from /proc
    (``None`` where there is no /proc): the loader's workers, or a decode pool's processes."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    me, total = os.getpid(), 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if int(fields[1]) == me:
            total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def shardstream_pass(
    path: Path,
    preset,
    batches: int,
    batch_size: int,
    workers: int,
    stats: list,
    marks=None,
    cpu_from: int | None = None,
    cpu: list | None = None,
):
    """Load ``batches`` batches through the loader; keep its stats() (and each batch's time;
    with ``cpu_from``, the workers' CPU seconds after that batch and after the last in
    ``cpu``)."""
    from shardstream.loader.loader import Loader

    loader = (
        Loader(path, seed=0)
        .batch(batch_size, drop_last=True)
        .preset(preset, device="cpu")
        .pytorch(num_workers=workers)
    )
    try:
        for count, _ in enumerate(loader, start=1):
            if marks is not None:
                marks.append(time.perf_counter())
            if cpu is not None and count in (cpu_from, batches):
                cpu.append(children_cpu_s())
            if count == batches:
                break
        stats.append(loader.stats())
    finally:
        loader.close()


def steady_rate(
    path: Path, preset, batches: int, batch_size: int, workers: int, cpu_ms: list | None = None
) -> float:
    """Images/s of one loader pass after its first sixth of batches (worker start-up excluded);
    with ``cpu_ms``, append the workers' CPU milliseconds per image over that window (where
    there are workers and /proc), a figure the machine's load hardly moves."""
    warm = max(1, batches // 6)
    marks: list[float] = []
    cpu: list = []
    shardstream_pass(path, preset, batches, batch_size, workers, [], marks, warm, cpu)
    if len(marks) <= warm:
        raise SystemExit(f"steady state needs more than {warm} batches, got {len(marks)}")
    if cpu_ms is not None and workers > 0 and len(cpu) == 2 and None not in cpu:
        cpu_ms.append((cpu[1] - cpu[0]) / ((len(marks) - warm) * batch_size) * 1e3)
    return (len(marks) - warm) * batch_size / (marks[-1] - marks[warm - 1])


def torchvision_pass(root: Path, batches: int, batch_size: int, workers: int):
    """Load ``batches`` batches through ImageFolder + DataAugmentationDINO + DataLoader."""
    import torch
    from torchvision.datasets import ImageFolder

    dataset = ImageFolder(str(root), transform=_Augment())
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        shuffle=False,
        drop_last=True,
        collate_fn=stack_crop_major,
    )
    for count, _ in enumerate(loader, start=1):
        if count == batches:
            break
    del loader


# --- plain decode on N processes ------------------------------------------------------------

_IMAGES: list[bytes] = []


def _decode_share(bounds: tuple[int, int]) -> int:
    import simplejpeg

    start, stop = bounds
    for data in _IMAGES[start:stop]:
        simplejpeg.decode_jpeg(data)
    return stop - start


def _decode_share_pillow(bounds: tuple[int, int]) -> int:
    import io

    from PIL import Image

    start, stop = bounds
    for data in _IMAGES[start:stop]:
        with Image.open(io.BytesIO(data)) as image:  # what dinov2's ImageFolder loader does
            image.convert("RGB")
    return stop - start


def _decode_share_turbo(bounds: tuple[int, int]) -> int:
    from shardstream.vision import _jpegregion
    from shardstream.vision.jpeg import jpeg_info

    start, stop = bounds
    for data in _IMAGES[start:stop]:
        info = jpeg_info(data)
        pixels = np.empty((info.height, info.width, 3), np.uint8)  # a new array, as simplejpeg's
        _jpegregion.decode_region(data, pixels, 0, 0, info.height, info.width)
    return stop - start


_SHARES = {
    "simplejpeg": _decode_share,
    "pillow": _decode_share_pillow,
    "turbo": _decode_share_turbo,
}


def plain_decode_rate(
    images: list[bytes],
    workers: int,
    repeats: int,
    decoder: str = "simplejpeg",
    cpu_ms: list | None = None,
) -> float:
    """Images/s decoding ``images`` full size with ``workers`` forked processes, with simplejpeg
    (its bundled libjpeg-turbo), ``decoder="turbo"`` (the system libjpeg-turbo through
    shardstream's C extension ``_jpegregion``: the decoder of the ``resize="device"`` workers,
    ~15-20 % quicker than simplejpeg's here; the same pixels) or ``decoder="pillow"``. With
    ``cpu_ms`` (and workers), append the processes' CPU milliseconds per image."""
    share = _SHARES[decoder]
    _IMAGES[:] = images
    n = len(images)
    if workers <= 0:
        return measure(lambda: share((0, n)), items=n, repeats=repeats).items_per_s
    shares = [(n * i // workers, n * (i + 1) // workers) for i in range(workers)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(share, [(0, min(n, 8))] * workers)  # start the processes
        before = children_cpu_s() if cpu_ms is not None else None
        rate = measure(
            lambda: pool.map(share, shares, chunksize=1), items=n, repeats=repeats
        ).items_per_s
        after = children_cpu_s() if cpu_ms is not None else None
        if cpu_ms is not None and before is not None and after is not None:
            cpu_ms.append((after - before) / (n * (repeats + 1)) * 1e3)  # with the warm-up
        return rate


# --- worker-step split ----------------------------------------------------------------------


def worker_split(images: list[bytes], preset) -> dict[str, float]:
    """Milliseconds per image of each part of DinoPreset.worker, one thread, in this process."""
    import simplejpeg

    from shardstream.vision import image_size
    from shardstream.vision.masking import masks_upperbound, sample_masks

    parts = {
        "worker step, whole": 0.0,
        "  header + crop plan": 0.0,
        "  decode (full size)": 0.0,
        "  crop + resize + flip (incl. decode)": 0.0,
        "  colour parameters": 0.0,
        "  masks": 0.0,
    }
    rng = np.random.default_rng(0)
    clock = time.perf_counter
    for i, data in enumerate(images):
        sample = {"image": data, "label": 0}
        t0 = clock()
        preset.worker(sample, np.random.default_rng(i))
        t1 = clock()
        height, width = image_size(data)
        boxes, flips = preset.plan(height, width, rng)
        t2 = clock()
        simplejpeg.decode_jpeg(data)
        t3 = clock()
        preset._cut(data, height, width, boxes, flips)
        t4 = clock()
        preset.draw_params(rng)
        t5 = clock()
        masks = sample_masks(preset.mask_generator, 2, preset.mask_ratio_tuple, 0.5, rng)
        masks_upperbound(masks, preset.mask_ratio_tuple)
        t6 = clock()
        for key, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
            parts[key] += seconds
    return {key: seconds / len(images) * 1e3 for key, seconds in parts.items()}


def device_worker_split(images: list[bytes], preset) -> dict[str, float]:
    """CPU milliseconds per image (this thread's CPU time: the machine is shared) of each part of
    a ``resize="device"`` DinoPreset's worker side, one thread, in this process, laid out as a
    loader worker lays it out (64-image batches collated in a slot: an arena over a reused
    buffer, where the payloads are decoded in place)."""
    from shardstream.engine.scratch import BatchBuffers
    from shardstream.loader.sample_streams import sample_generator
    from shardstream.vision import device_views, image_size

    clock = time.thread_time
    parts = dict.fromkeys(
        (
            "resize='device' worker step + collation",
            "  worker step",
            "  header",
            "  crop plan + flips (C draws)",
            "  colour parameters (their draws)",
            "  masks",
            "  band decode into the slot (+ its glue)",
            "  collation (payloads in place)",
            "  the sample's generator (seeded in C)",
        ),
        0.0,
    )
    buffers = BatchBuffers(reuse=True)
    slot = np.empty(64 << 20, np.uint8)
    rng = np.random.default_rng(0)
    before = device_views._slot_payloads.buffers
    device_views._slot_payloads.buffers = buffers  # as after a loader worker's first batch
    try:
        for start in range(0, len(images), 64):
            chunk = images[start : start + 64]
            with buffers.arena(slot):
                t0 = clock()
                outs = [
                    preset.worker({"image": data, "label": 0}, np.random.default_rng(i))
                    for i, data in enumerate(chunk, start)
                ]
                t1 = clock()
                preset.collate(outs, buffers)
                t2 = clock()
            parts["resize='device' worker step + collation"] += t2 - t0
            parts["  worker step"] += t1 - t0
            parts["  collation (payloads in place)"] += t2 - t1
            del outs
            with buffers.arena(slot):
                for data in chunk:
                    t0 = clock()
                    height, width = image_size(data)
                    t1 = clock()
                    boxes, flips = preset.plan(height, width, rng)
                    t2 = clock()
                    preset._view_params(rng)  # the draws; the batch's values at collation
                    t3 = clock()
                    preset._mask_sampler.draw(rng)
                    t4 = clock()
                    preset._ship(data, height, width, boxes, flips)
                    t5 = clock()
                    sample_generator(0, 0, start)
                    t6 = clock()
                    for key, seconds in zip(
                        [*list(parts)[2:7], list(parts)[8]],
                        (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5),
                    ):
                        parts[key] += seconds
    finally:
        device_views._slot_payloads.buffers = before
    return {key: seconds / len(images) * 1e3 for key, seconds in parts.items()}


def device_rate(
    preset,
    images: list[bytes],
    batch_size: int,
    device: str,
    repeats: int,
    resize_only: bool = False,
    images_only: bool = False,
) -> float:
    """Images/s of DinoPreset.device alone on batches of ``batch_size`` on ``device`` (with
    ``resize_only``, of a ``resize="device"`` preset's cut, resize and flip alone, which
    includes making its images; with ``images_only``, of making them alone: the upsampling
    and colour conversion of shipped planes)."""
    import torch

    from shardstream.engine.collate import to_torch

    outs = [
        preset.worker({"image": images[i % len(images)], "label": 0}, np.random.default_rng(i))
        for i in range(batch_size)
    ]
    batch = to_torch(preset.collate(outs))

    def move(tree):
        if isinstance(tree, dict):
            return {k: move(v) for k, v in tree.items()}
        return tree.to(device) if isinstance(tree, torch.Tensor) else tree

    host = ("payload",) if getattr(preset, "decode", "cpu") == "device" else ()  # nvJPEG input
    batch = {k: v if k in host else move(v) for k, v in batch.items()}
    from shardstream.vision.device_resize import payload_images, shipped_views

    def run():
        if images_only:
            out = payload_images(batch, batch["boxes"].device)
        elif resize_only:
            out = shipped_views(batch, preset._sizes(), "bicubic")
        else:
            out = preset.device(batch)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return out

    return measure(run, items=batch_size, repeats=repeats).items_per_s


# --- main -----------------------------------------------------------------------------------


def prepare(args) -> tuple[Path, Path, list[bytes]]:
    """The demo ImageFolder, its packed file, and the bytes of the images a pass loads."""
    from shardstream.sets.imagefolder import scan_folder
    from shardstream.write.conversion import convert

    root = args.images_dir / f"demo-images-v{GENERATOR_VERSION}-{args.images}"
    demo = generate_demo_images(root, num_images=args.images, num_classes=10, workers=2)
    packed = args.workdir / f"demo-v{GENERATOR_VERSION}-{args.images}.msgpack"
    if not packed.exists():
        packed.parent.mkdir(parents=True, exist_ok=True)
        convert(scan_folder(root).items, packed, workers=2, overwrite=True, progress=False)
    from shardstream import MsgpackReader

    with MsgpackReader(packed) as reader:
        images = [bytes(reader.get(i)["image"]) for i in range(min(args.per_run, len(reader)))]
    del demo
    return root, packed, images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000, help="demo set size (20000)")
    parser.add_argument("--per-run", type=int, default=1920, help="images per timed pass")
    parser.add_argument("--batch", type=int, default=64, help="batch size (64)")
    parser.add_argument("--workers", type=int, default=2, help="loader processes (2)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--images-dir", type=Path, default=Path("bench-data/convert"))
    parser.add_argument("--workdir", type=Path, default=Path("bench-data/dino"))
    parser.add_argument("--device", default="cpu", help="device of the --device-only rows")
    parser.add_argument(
        "--device-only", action="store_true", help="only time DinoPreset.device on --device"
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the torchvision rows")
    parser.add_argument(
        "--shipped-only",
        action="store_true",
        help="only the resize='device' rows: (c) and both plain decodes in turn, its device step "
        "on the CPU and its worker split",
    )
    parser.add_argument(
        "--main-threads",
        type=int,
        default=1,
        help="torch threads of this process, which runs the device step (1: the workers hold "
        "the other cores; more threads oversubscribe them and spin)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.per_run, args.repeats = 2000, 640, 2
    args.per_run = max(args.batch, args.per_run // args.batch * args.batch)
    batches = args.per_run // args.batch

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(args.main_threads)
    try:
        return _run(args, batches)
    finally:
        torch.set_num_threads(threads)


def _run(args, batches: int) -> int:
    """The measurements of :func:`main`."""
    import torch

    from shardstream.vision.dino import DinoPreset

    preset = DinoPreset()
    shipped = DinoPreset(resize="device")
    root, packed, images = prepare(args)
    if args.device_only:
        rate = device_rate(preset, images, args.batch, args.device, args.repeats)
        table = Table(f"DinoPreset.device alone, batch {args.batch}", "peer")
        table.header()
        table.add(Row(f"device step on {args.device}", None, rate, "img/s"))
        modes = [("resize='device'", shipped)]
        if args.device.startswith("cuda"):
            modes.append(("decode='device'", DinoPreset(decode="device")))
        for name, mode in modes:
            rate = device_rate(mode, images, args.batch, args.device, args.repeats)
            table.add(Row(f"device step on {args.device}, {name}", None, rate, "img/s"))
        return 0

    if args.shipped_only:
        return _run_shipped(args, batches, shipped, images, packed)
    print(
        f"{args.images:,} demo images under {root}; timed passes of {args.per_run:,} images "
        f"({batches} batches of {args.batch}); {args.workers} workers; {os.cpu_count()} cores; "
        f"torch {torch.__version__}; medians of {args.repeats}; shared machine: provisional",
        flush=True,
    )
    table = Table("DINOv2 recipe 2x224 + 8x96 (ratio = shardstream / peer)", "peer img/s")
    table.header()
    plain = plain_decode_rate(images, args.workers, args.repeats)
    table.add(Row(f"plain full decode, {args.workers} processes", None, plain, "img/s"))
    plain_pillow = plain_decode_rate(images, args.workers, args.repeats, decoder="pillow")
    table.add(Row("  the same with Pillow (dinov2's loader)", None, plain_pillow, "img/s"))
    baseline = None
    if not args.no_baseline:
        baseline = measure(
            lambda: torchvision_pass(root, batches, args.batch, args.workers),
            items=args.per_run,
            repeats=args.repeats,
            warmup=0,
        ).items_per_s
        table.add(Row("torchvision ImageFolder + DataAugmentationDINO", None, baseline, "img/s"))

    end_to_end_stats: list = []
    end_to_end = measure(
        lambda: shardstream_pass(
            packed, preset, batches, args.batch, args.workers, end_to_end_stats
        ),
        items=args.per_run,
        repeats=args.repeats,
        warmup=0,
    ).items_per_s
    table.add(
        Row(
            "(a) end to end, normalised float on the CPU",
            baseline,
            end_to_end,
            "img/s",
            target=4.0,
            note="peer: torchvision baseline",
        )
    )
    worker_stats: list = []
    worker_side = measure(
        lambda: shardstream_pass(
            packed, WorkerSideOnly(preset), batches, args.batch, args.workers, worker_stats
        ),
        items=args.per_run,
        repeats=args.repeats,
        warmup=0,
    ).items_per_s
    table.add(
        Row(
            "(b) worker side alone, uint8 out",
            plain,
            worker_side,
            "img/s",
            note="peer: plain decode; each pass forks its workers (context)",
        )
    )
    steadies: list[float] = []
    shipped_steadies: list[float] = []
    plains: list[float] = []
    turbos: list[float] = []
    for _ in range(args.repeats):  # in turn, so that all four see the same machine
        plains.append(plain_decode_rate(images, args.workers, 1))
        turbos.append(plain_decode_rate(images, args.workers, 1, decoder="turbo"))
        steadies.append(
            steady_rate(packed, WorkerSideOnly(preset), batches, args.batch, args.workers)
        )
        shipped_steadies.append(
            steady_rate(packed, ShippedWorkerSideOnly(shipped), batches, args.batch, args.workers)
        )
    steady = statistics.median(steadies)
    shipped_steady = statistics.median(shipped_steadies)
    # (c)'s peer: the quicker plain decoder of each repeat (its workers decode with the system
    # libjpeg-turbo, quicker than simplejpeg's here: against simplejpeg alone it would gain)
    fastest = [max(p, t) for p, t in zip(plains, turbos)]
    plain_paired = statistics.median(fastest)
    table.add(
        Row(
            "plain full decode, system libjpeg-turbo (in turn)",
            None,
            statistics.median(turbos),
            "img/s",
        )
    )
    table.add(
        Row(
            "(b) the same in steady state (start-up excluded)",
            plain,
            steady,
            "img/s",
            target=0.5,
            note="peer: plain decode",
        )
    )
    table.add(
        Row(
            "  (b) steady vs Pillow decode (context, no target)",
            plain_pillow,
            steady,
            "img/s",
            note="peer: Pillow decode",
        )
    )
    table.add(
        Row(
            "(c) resize='device' worker side, steady state",
            plain_paired,
            shipped_steady,
            "img/s",
            target=0.85,
            note="peer: the quicker plain decode of each repeat, timed in turn with it; uint8 "
            "regions out, no device step",
        )
    )
    table.add(
        Row(
            "  (c) against (b), the exact path's worker side",
            steady,
            shipped_steady,
            "img/s",
            note="peer: (b) steady",
        )
    )
    cpu_device = device_rate(preset, images, args.batch, "cpu", args.repeats)
    table.add(Row(f"device step alone on the CPU, batch {args.batch}", None, cpu_device, "img/s"))
    shipped_device = device_rate(shipped, images, args.batch, "cpu", args.repeats)
    table.add(
        Row("  the same, resize='device' (cut + resize + colour)", None, shipped_device, "img/s")
    )
    shipped_resize = device_rate(shipped, images, args.batch, "cpu", args.repeats, True)
    table.add(Row("  its cut + resize + flip alone", None, shipped_resize, "img/s"))
    shipped_planes = device_rate(shipped, images, args.batch, "cpu", args.repeats, images_only=True)
    table.add(Row("  its planes to RGB alone (upsampling + colour)", None, shipped_planes, "img/s"))
    print(
        f"\nper repeat, img/s: plain decode (simplejpeg) {', '.join(f'{r:,.0f}' for r in plains)}; "
        f"plain decode (system libjpeg-turbo) {', '.join(f'{r:,.0f}' for r in turbos)}; "
        f"(b) steady {', '.join(f'{r:,.0f}' for r in steadies)}; "
        f"(c) steady {', '.join(f'{r:,.0f}' for r in shipped_steadies)}",
        flush=True,
    )
    paired = [c / p for c, p in zip(shipped_steadies, fastest)]
    against_simplejpeg = [c / p for c, p in zip(shipped_steadies, plains)]
    print(
        f"(c) / the quicker plain decode per repeat: {', '.join(f'{r:.2f}' for r in paired)} "
        f"(median {statistics.median(paired):.2f}); (c) / simplejpeg: "
        f"{', '.join(f'{r:.2f}' for r in against_simplejpeg)} "
        f"(median {statistics.median(against_simplejpeg):.2f}); (b) / simplejpeg: "
        f"{', '.join(f'{b / p:.2f}' for b, p in zip(steadies, plains))}",
        flush=True,
    )
    print(
        f"CPU ms per image, {args.main_threads} torch thread(s): exact device step "
        f"{1e3 / cpu_device:.2f}; resize='device' device step {1e3 / shipped_device:.2f} "
        f"(its cut + resize + flip {1e3 / shipped_resize:.2f}, of which planes to RGB "
        f"{1e3 / shipped_planes:.2f})",
        flush=True,
    )

    for name, stats in (("(a) end to end", end_to_end_stats), ("(b) worker side", worker_stats)):
        if stats:
            last = stats[-1]
            shown = {
                k: (f"{v:.3g}" if isinstance(v, float) else v)
                for k, v in last.items()
                if not isinstance(v, (dict, list))
            }
            print(f"\nloader stats() of the last pass, {name}: {shown}", flush=True)
    split = worker_split(images[: min(len(images), 200)], preset)
    print("\nworker step per image, 1 thread, this process (ms):", flush=True)
    for key, ms in split.items():
        print(f"  {key:40} {ms:7.3f}", flush=True)
    sample = images[: min(len(images), 256)]
    runs = [device_worker_split(sample, shipped) for _ in range(3)]
    _IMAGES[:] = sample
    turbo = []
    for _ in range(3):
        started = time.thread_time()
        _decode_share_turbo((0, len(sample)))
        turbo.append((time.thread_time() - started) / len(sample) * 1e3)
    print(
        "\nresize='device' worker side per image, CPU ms of this thread, best of 3 (plain full "
        f"decode, system libjpeg-turbo, new arrays: {min(turbo):.3f}):",
        flush=True,
    )
    for key in runs[0]:
        print(f"  {key:42} {min(run[key] for run in runs):7.3f}", flush=True)
    return 0


def _run_shipped(args, batches: int, shipped, images: list[bytes], packed: Path) -> int:
    """The ``--shipped-only`` rows: (c) in turn with both plain decoders, per repeat."""
    shipped_steadies: list[float] = []
    plains: list[float] = []
    turbos: list[float] = []
    cpu: dict[str, list[float]] = {"simplejpeg": [], "turbo": [], "shipped": []}
    for _ in range(args.repeats):  # in turn, so that all three see the same machine
        plains.append(plain_decode_rate(images, args.workers, 1, cpu_ms=cpu["simplejpeg"]))
        turbos.append(
            plain_decode_rate(images, args.workers, 1, decoder="turbo", cpu_ms=cpu["turbo"])
        )
        shipped_steadies.append(
            steady_rate(
                packed,
                ShippedWorkerSideOnly(shipped),
                batches,
                args.batch,
                args.workers,
                cpu_ms=cpu["shipped"],
            )
        )
    fastest = [max(p, t) for p, t in zip(plains, turbos)]
    paired = [c / p for c, p in zip(shipped_steadies, fastest)]
    table = Table("resize='device' worker side (ratio = shardstream / peer)", "peer img/s")
    table.header()
    table.add(
        Row(
            "(c) resize='device' worker side, steady state",
            statistics.median(fastest),
            statistics.median(shipped_steadies),
            "img/s",
            target=0.85,
            note="peer: the quicker plain decode of each repeat, timed in turn with it",
        )
    )
    print(
        f"\nper repeat, img/s: plain decode (simplejpeg) {', '.join(f'{r:,.0f}' for r in plains)}; "
        f"plain decode (system libjpeg-turbo) {', '.join(f'{r:,.0f}' for r in turbos)}; "
        f"(c) steady {', '.join(f'{r:,.0f}' for r in shipped_steadies)}",
        flush=True,
    )
    print(
        f"(c) / the quicker plain decode per repeat: {', '.join(f'{r:.2f}' for r in paired)} "
        f"(median {statistics.median(paired):.2f}, range {min(paired):.2f}-{max(paired):.2f})",
        flush=True,
    )
    if all(len(values) == args.repeats for values in cpu.values()):
        # CPU time of the processes over the same windows: what a loaded machine moves least
        by_cpu = [min(a, b) / c for a, b, c in zip(cpu["simplejpeg"], cpu["turbo"], cpu["shipped"])]
        print(
            "CPU ms per image in the worker processes, per repeat: plain decode (simplejpeg) "
            + ", ".join(f"{v:.3f}" for v in cpu["simplejpeg"])
            + "; plain decode (system libjpeg-turbo) "
            + ", ".join(f"{v:.3f}" for v in cpu["turbo"])
            + "; (c) steady "
            + ", ".join(f"{v:.3f}" for v in cpu["shipped"])
            + "\n(c) by CPU time, the cheaper plain decode's ms / (c)'s ms per repeat: "
            + ", ".join(f"{r:.2f}" for r in by_cpu)
            + f" (median {statistics.median(by_cpu):.2f})",
            flush=True,
        )
    _print_shipped_device_rows(args, shipped, images)
    return 0


def _print_shipped_device_rows(args, shipped, images: list[bytes]) -> None:
    """resize='device''s device step on the CPU and its worker split, printed."""
    shipped_device = device_rate(shipped, images, args.batch, "cpu", args.repeats)
    shipped_resize = device_rate(shipped, images, args.batch, "cpu", args.repeats, True)
    shipped_planes = device_rate(shipped, images, args.batch, "cpu", args.repeats, images_only=True)
    print(
        f"CPU ms per image, {args.main_threads} torch thread(s): resize='device' device step "
        f"{1e3 / shipped_device:.2f} (its cut + resize + flip {1e3 / shipped_resize:.2f}, of "
        f"which planes to RGB {1e3 / shipped_planes:.2f})",
        flush=True,
    )
    sample = images[: min(len(images), 256)]
    runs = [device_worker_split(sample, shipped) for _ in range(3)]
    _IMAGES[:] = sample
    turbo = []
    for _ in range(3):
        started = time.thread_time()
        _decode_share_turbo((0, len(sample)))
        turbo.append((time.thread_time() - started) / len(sample) * 1e3)
    print(
        "\nresize='device' worker side per image, CPU ms of this thread, best of 3 (plain full "
        f"decode, system libjpeg-turbo, new arrays: {min(turbo):.3f}):",
        flush=True,
    )
    for key in runs[0]:
        print(f"  {key:42} {min(run[key] for run in runs):7.3f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
