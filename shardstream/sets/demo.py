"""A deterministic, ImageNet-like set of JPEG images cut from real photos, for demos and benchmarks.

Image ``i`` belongs to class ``i % num_classes``; each class is one source photo (or a stereo pair) of
:data:`~shardstream.sets.photos.PHOTO_CLASSES`, so classes are visually distinct. An image is a random
crop (10 % to 100 % of the photo's area) resized with Lanczos so that its shorter side is 300-500 px
and its aspect ratio (width / height) is 0.75-1.5, with small per-channel colour shifts, film-grain
noise (upscaled crops of small photos would otherwise compress far better than real photos), a
random horizontal flip, and JPEG encoding with 4:2:0 chroma subsampling. At quality 90 the mean
size is about 398 x 350 px and 66 KB (ImageNet's ~110 KB mean needs more pixels or detail than
these photos have: even pure noise of that size encodes to only ~127 KB at quality 90, 4:2:0).

Every random choice of image ``i`` comes from ``numpy.random.default_rng(SeedSequence([seed, i]))``,
so any image can be made alone, in any process, and is byte-identical for the same Pillow build.
Files are laid out like ImageNet: ``root/<class>/<class>_<index>.jpg``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import io
import json
import math
import operator
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image, ImageChops

from ..errors import ConfigError, DatasetExistsError
from ..format.atomic import TEMP_SUFFIX, open_temp
from .photos import PHOTO_CLASSES, load_photo

__all__ = [
    "DEMO_CLASS_NAMES",
    "DemoSet",
    "generate_demo_images",
    "iter_demo_samples",
    "render_demo_image",
    "demo_sample_key",
]

DEMO_CLASS_NAMES: tuple[str, ...] = tuple(photo_class.name for photo_class in PHOTO_CLASSES)
"""Names of every available class, in label order; a set of ``C`` classes uses the first ``C``."""

GENERATOR_VERSION = 2
"""Bumped whenever a change to this module changes the images it makes."""

MARKER_NAME = ".shardstream-demo.json"
"""File in the root recording the parameters a demo set was generated with."""

# Geometry of an output image (pixels and width / height).
# The shorter side is 300 + 200 * Beta(1.2, 4.8) (mean 340), the longer one 1.0-1.5 times it (mode 1.1),
# and 15 % of the images are portraits: a mean size near 400 x 350, like ImageNet's.
_MIN_SHORT_SIDE, _MAX_SHORT_SIDE = 300, 500
_SHORT_SIDE_BETA = (1.2, 4.8)
_MODE_ELONGATION = 1.1
_MIN_ASPECT, _MAX_ASPECT = 0.75, 1.5
_PORTRAIT_FRACTION = 0.15
_MIN_AREA_FRACTION, _MAX_AREA_FRACTION = 0.1, 1.0
# Colour shifts: per-channel gain and offset, and a brightness factor common to all channels.
_CHANNEL_GAIN, _CHANNEL_OFFSET, _BRIGHTNESS = 0.08, 8.0, 0.15
# Film grain: standard deviation (in 8-bit levels) of the luma noise, drawn per image.
_MIN_GRAIN, _MAX_GRAIN = 32.0, 52.0
_GRAIN_CHROMA_RATIO = 0.35
_GRAIN_TILE = 1024
_GRAIN_UNIT = 24.0  # levels per standard deviation in the stored grain tile

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True, kw_only=True)
class DemoSet:
    """What :func:`generate_demo_images` wrote (or found already written).

    Attributes:
        root: the folder holding one sub-folder per class.
        paths: every image file, in index order.
        labels: the label of each image (``index % num_classes``), in index order.
        class_names: the class names, in label order (also the sub-folder names).
        total_bytes: the summed size of all image files.
        mean_bytes: ``total_bytes / len(paths)``.
    """

    root: Path
    paths: tuple[Path, ...]
    labels: tuple[int, ...]
    class_names: tuple[str, ...]
    total_bytes: int
    mean_bytes: float


def generate_demo_images(
    root: str | os.PathLike,
    *,
    num_images: int = 2000,
    num_classes: int = 10,
    seed: int = 0,
    quality: int = 90,
    workers: int | None = None,
    progress: bool = False,
) -> DemoSet:
    """Write the demo image set under ``root`` as ``<class>/<class>_<index>.jpg``, in parallel.

    Each file is written under a hidden temp name and renamed into place, so an interrupted run
    leaves only complete images. Running again with the same parameters keeps the images already
    there and makes only the missing ones; the parameters are recorded in ``root/.shardstream-demo.json``.

    Args:
        root: the output folder (created if missing).
        num_images: how many images to make (at least 1).
        num_classes: how many classes; image ``i`` gets label ``i % num_classes``.
        seed: a non-negative seed; the same seed makes the same bytes.
        quality: the JPEG quality, 1-100.
        workers: processes to use; ``None`` uses every core available, 1 works in this process.
        progress: show a tqdm progress bar.

    Returns:
        A :class:`DemoSet` describing the files.

    Raises:
        ConfigError: an argument is of the wrong type or out of range.
        DatasetExistsError: ``root`` holds a demo set made with other parameters, or class folders
            that this function did not write.
        MissingDependencyError: scikit-image (the source of the photos) is not installed.
    """
    num_images, num_classes, seed, quality = _check_params(num_images, num_classes, seed, quality)
    workers = _check_workers(workers)
    root = Path(root)
    class_names = DEMO_CLASS_NAMES[:num_classes]
    params = {
        "num_images": num_images,
        "num_classes": num_classes,
        "seed": seed,
        "quality": quality,
    }
    _claim_root(root, class_names, params)

    keys = [
        demo_sample_key(i, num_images=num_images, num_classes=num_classes)
        for i in range(num_images)
    ]
    paths = tuple(root / key for key in keys)
    sizes = [0] * num_images
    todo: list[int] = []
    for index, path in enumerate(paths):
        try:
            sizes[index] = path.stat().st_size
        except FileNotFoundError:
            todo.append(index)

    bar = _progress_bar(progress, total=num_images, initial=num_images - len(todo))
    try:
        tasks = [
            (str(root), [(i, keys[i]) for i in chunk], num_classes, seed, quality)
            for chunk in _chunks(todo, _chunk_size(len(todo), workers))
        ]
        for written in _ordered_map(_write_chunk, tasks, workers):
            for index, size in written:
                sizes[index] = size
            if bar is not None:
                bar.update(len(written))
    finally:
        if bar is not None:
            bar.close()

    total = sum(sizes)
    return DemoSet(
        root=root,
        paths=paths,
        labels=tuple(i % num_classes for i in range(num_images)),
        class_names=class_names,
        total_bytes=total,
        mean_bytes=total / num_images,
    )


def iter_demo_samples(
    *,
    num_images: int = 2000,
    num_classes: int = 10,
    seed: int = 0,
    quality: int = 90,
    workers: int | None = 1,
) -> Iterator[dict[str, Any]]:
    """Make the demo images in memory, in index order, as samples ready to pack.

    The bytes and keys are exactly those :func:`generate_demo_images` writes for the same
    parameters. Nothing touches the disk.

    Args:
        num_images: how many images to make (at least 1).
        num_classes: how many classes; image ``i`` gets label ``i % num_classes``.
        seed: a non-negative seed; the same seed makes the same bytes.
        quality: the JPEG quality, 1-100.
        workers: processes rendering ahead of the consumer (a bounded window, so memory stays
            small); 1 renders in this process, ``None`` uses every core available.

    Returns:
        An iterator of ``{"key": "<class>/<class>_<index>.jpg", "image": <JPEG bytes>,
        "label": <int>}``.

    Raises:
        ConfigError: an argument is of the wrong type or out of range (raised on the call, before
            the first sample).
        MissingDependencyError: scikit-image (the source of the photos) is not installed.
    """
    num_images, num_classes, seed, quality = _check_params(num_images, num_classes, seed, quality)
    workers = _check_workers(workers)
    return _iter_samples(num_images, num_classes, seed, quality, workers)


def render_demo_image(
    index: int, *, num_classes: int = 10, seed: int = 0, quality: int = 90
) -> bytes:
    """Make the JPEG bytes of one demo image (the same bytes every time, in any process).

    Args:
        index: the image's index (non-negative); its label is ``index % num_classes``.
        num_classes: how many classes the set has.
        seed: a non-negative seed.
        quality: the JPEG quality, 1-100.

    Returns:
        The encoded JPEG (RGB, 4:2:0).

    Raises:
        ConfigError: an argument is of the wrong type or out of range.
        MissingDependencyError: scikit-image (the source of the photos) is not installed.
    """
    _, num_classes, seed, quality = _check_params(1, num_classes, seed, quality)
    return _render(_check_int("index", index, minimum=0), num_classes, seed, quality)


def demo_sample_key(index: int, *, num_images: int, num_classes: int) -> str:
    """The key (and path relative to the root) of demo image ``index``: ``<class>/<class>_<index>.jpg``.

    The index is zero-padded to at least six digits (more when ``num_images`` needs them), so keys
    sort in index order within a class.

    Args:
        index: the image's index, ``0 <= index < num_images``.
        num_images: how many images the set has.
        num_classes: how many classes the set has.

    Returns:
        The key, with ``/`` as separator.

    Raises:
        ConfigError: an argument is of the wrong type or out of range.
    """
    num_images = _check_int("num_images", num_images, minimum=1)
    num_classes = _check_int("num_classes", num_classes, minimum=1, maximum=len(DEMO_CLASS_NAMES))
    index = _check_int("index", index, minimum=0, maximum=num_images - 1)
    name = DEMO_CLASS_NAMES[index % num_classes]
    width = max(6, len(str(num_images - 1)))
    return f"{name}/{name}_{index:0{width}d}.jpg"


# ---------------------------------------------------------------------------------------------
# Rendering one image


def _render(index: int, num_classes: int, seed: int, quality: int) -> bytes:
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    photo_class = PHOTO_CLASSES[index % num_classes]
    # Draw every parameter up front, always in the same order.
    photo_choice = int(rng.integers(len(photo_class.files)))
    short_side = round(
        _MIN_SHORT_SIDE + (_MAX_SHORT_SIDE - _MIN_SHORT_SIDE) * float(rng.beta(*_SHORT_SIDE_BETA))
    )
    portrait = bool(rng.random() < _PORTRAIT_FRACTION)
    elongation = float(rng.triangular(1.0, _MODE_ELONGATION, _MAX_ASPECT))
    area_fraction = float(rng.uniform(_MIN_AREA_FRACTION, _MAX_AREA_FRACTION))
    crop_x, crop_y = rng.random(2)
    gains = 1.0 + rng.uniform(-_CHANNEL_GAIN, _CHANNEL_GAIN, 3)
    offsets = rng.uniform(-_CHANNEL_OFFSET, _CHANNEL_OFFSET, 3)
    brightness = 1.0 + float(rng.uniform(-_BRIGHTNESS, _BRIGHTNESS))
    grain = float(rng.uniform(_MIN_GRAIN, _MAX_GRAIN))
    grain_x, grain_y = rng.random(2)
    flip = bool(rng.random() < 0.5)

    width, height = _output_size(short_side, elongation, portrait)
    photo = load_photo(photo_class.files[photo_choice])
    box = _crop_box(photo.size, width / height, area_fraction, crop_x, crop_y)
    image = photo.resize((width, height), Image.Resampling.LANCZOS, box=box)
    image = image.point(_colour_table(gains * brightness, offsets))
    image = _add_grain(image, grain, grain_x, grain_y)
    if flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, subsampling=2)
    return buffer.getvalue()


def _output_size(short_side: int, elongation: float, portrait: bool) -> tuple[int, int]:
    """Width and height with the given shorter side; the longer side is rounded, then clamped."""
    if portrait:
        long_side = min(round(short_side * elongation), math.floor(short_side / _MIN_ASPECT))
        return short_side, long_side
    long_side = min(round(short_side * elongation), math.floor(short_side * _MAX_ASPECT))
    return long_side, short_side


def _crop_box(
    size: tuple[int, int], aspect: float, area_fraction: float, where_x: float, where_y: float
) -> tuple[float, float, float, float]:
    """A crop of the given aspect covering ``area_fraction`` of the photo (less if it must fit)."""
    photo_width, photo_height = size
    crop_width = math.sqrt(area_fraction * photo_width * photo_height * aspect)
    crop_height = crop_width / aspect
    fit = min(1.0, photo_width / crop_width, photo_height / crop_height)
    # min/max: rounding can leave the fitted crop a hair (1e-13 px) outside the photo
    crop_width = min(crop_width * fit, float(photo_width))
    crop_height = min(crop_height * fit, float(photo_height))
    left = where_x * max(0.0, photo_width - crop_width)
    top = where_y * max(0.0, photo_height - crop_height)
    return (left, top, left + crop_width, top + crop_height)


def _colour_table(scales: np.ndarray, offsets: np.ndarray) -> list[int]:
    """A Pillow ``point`` table mapping each RGB channel through ``value * scale + offset``."""
    levels = np.arange(256, dtype=np.float64)
    table = np.clip(np.rint(levels[None, :] * scales[:, None] + offsets[:, None]), 0, 255)
    return table.astype(np.int64).ravel().tolist()


def _add_grain(image: Image.Image, sigma: float, where_x: float, where_y: float) -> Image.Image:
    """Add zero-mean noise of standard deviation ``sigma``, cut from a fixed per-process tile."""
    width, height = image.size
    left = int(where_x * (_GRAIN_TILE - width))
    top = int(where_y * (_GRAIN_TILE - height))
    noise = _grain_tile().crop((left, top, left + width, top + height))
    scale = sigma / _GRAIN_UNIT
    levels = np.arange(256, dtype=np.float64)
    table = np.clip(np.rint(128.0 + (levels - 128.0) * scale), 0, 255).astype(np.int64)
    noise = noise.point(np.tile(table, 3).tolist())
    return ImageChops.add(image, noise, scale=1.0, offset=-128)


def _warm_up() -> None:
    """Decode every source photo and make the grain tile, so this process has them cached."""
    for photo_class in PHOTO_CLASSES:
        for filename in photo_class.files:
            load_photo(filename)
    _grain_tile()


@functools.lru_cache(maxsize=1)
def _grain_tile() -> Image.Image:
    """A fixed RGB noise tile: shared luma noise plus weaker per-channel noise, centred on 128."""
    rng = np.random.default_rng(np.random.SeedSequence([0x5EED, GENERATOR_VERSION]))
    shape = (_GRAIN_TILE, _GRAIN_TILE)
    luma = rng.standard_normal(shape, dtype=np.float32)[..., None]
    chroma = rng.standard_normal((*shape, 3), dtype=np.float32) * np.float32(_GRAIN_CHROMA_RATIO)
    tile = np.clip(np.rint(128.0 + (luma + chroma) * np.float32(_GRAIN_UNIT)), 0, 255)
    return Image.fromarray(tile.astype(np.uint8), mode="RGB")


# ---------------------------------------------------------------------------------------------
# Writing files and running in parallel


def _iter_samples(
    num_images: int, num_classes: int, seed: int, quality: int, workers: int
) -> Iterator[dict[str, Any]]:
    chunks = _chunks(range(num_images), _chunk_size(num_images, workers))
    tasks = [(list(chunk), num_classes, seed, quality) for chunk in chunks]
    for images in _ordered_map(_render_chunk, tasks, workers):
        for index, data in images:
            key = demo_sample_key(index, num_images=num_images, num_classes=num_classes)
            yield {"key": key, "image": data, "label": index % num_classes}


def _render_chunk(
    indices: list[int], num_classes: int, seed: int, quality: int
) -> list[tuple[int, bytes]]:
    return [(index, _render(index, num_classes, seed, quality)) for index in indices]


def _write_chunk(
    root: str, items: list[tuple[int, str]], num_classes: int, seed: int, quality: int
) -> list[tuple[int, int]]:
    written = []
    for index, key in items:
        data = _render(index, num_classes, seed, quality)
        _write_atomically(Path(root, key), data)
        written.append((index, len(data)))
    return written


def _write_atomically(path: Path, data: bytes) -> None:
    """Write under a hidden temp name in the same folder, then rename (not fsynced: regenerable)."""
    fd, temp = open_temp(path)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise


def _ordered_map(
    function: Callable[..., _R], tasks: Sequence[tuple[Any, ...]], workers: int
) -> Iterator[_R]:
    """``function(*task)`` for each task, in order; in a process pool keeping a bounded window."""
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield function(*task)
        return
    _warm_up()  # forked workers inherit the decoded photos and the grain tile
    executor = concurrent.futures.ProcessPoolExecutor(max_workers=min(workers, len(tasks)))
    try:
        pending: collections.deque[concurrent.futures.Future[_R]] = collections.deque()
        remaining = iter(tasks)
        for task in remaining:
            pending.append(executor.submit(function, *task))
            if len(pending) >= 3 * workers:
                break
        while pending:
            result = pending.popleft().result()
            for task in remaining:
                pending.append(executor.submit(function, *task))
                break
            yield result
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _chunks(items: Iterable[_T], size: int) -> list[list[_T]]:
    items = list(items)
    return [items[start : start + size] for start in range(0, len(items), size)]


def _chunk_size(count: int, workers: int) -> int:
    """Small enough to balance the workers and the progress bar, large enough to amortise IPC."""
    return max(1, min(16, count // (4 * workers) if workers > 1 else 16))


def _claim_root(root: Path, class_names: tuple[str, ...], params: dict[str, int]) -> None:
    """Check ``root`` holds nothing but a demo set with ``params``, record them, make folders."""
    marker = root / MARKER_NAME
    recorded = {"generator": "shardstream.sets.demo", "version": GENERATOR_VERSION, **params}
    if marker.is_file():
        try:
            found = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise DatasetExistsError(
                root,
                f"{MARKER_NAME} is unreadable ({error}); delete the folder or use another root",
            ) from error
        if found != recorded:
            differences = (
                ", ".join(
                    f"{name}={found.get(name)!r} (asked {value!r})"
                    for name, value in recorded.items()
                    if found.get(name) != value
                )
                if isinstance(found, dict)
                else "an unexpected record"
            )
            raise DatasetExistsError(
                root,
                f"holds a demo set made with {differences}; pass the same parameters, "
                "delete the folder or use another root",
            )
    else:
        for name in class_names:
            folder = root / name
            if folder.is_dir() and any(folder.iterdir()):
                raise DatasetExistsError(
                    folder,
                    f"holds files but {root} has no {MARKER_NAME}, so they were not written by "
                    "generate_demo_images; use an empty or new root",
                )
        root.mkdir(parents=True, exist_ok=True)
        _write_atomically(marker, (json.dumps(recorded, indent=2) + "\n").encode("utf-8"))
    for name in class_names:
        folder = root / name
        folder.mkdir(exist_ok=True)
        for stale in folder.glob(f".{name}_*.jpg.*{TEMP_SUFFIX}"):
            stale.unlink(missing_ok=True)


def _progress_bar(enabled: bool, *, total: int, initial: int) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="demo images", unit="img")


# ---------------------------------------------------------------------------------------------
# Argument checks


def _check_params(
    num_images: object, num_classes: object, seed: object, quality: object
) -> tuple[int, int, int, int]:
    return (
        _check_int("num_images", num_images, minimum=1),
        _check_int("num_classes", num_classes, minimum=1, maximum=len(DEMO_CLASS_NAMES)),
        _check_int("seed", seed, minimum=0),
        _check_int("quality", quality, minimum=1, maximum=100),
    )


def _check_workers(workers: int | None) -> int:
    if workers is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)
    return _check_int("workers", workers, minimum=1)


def _check_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = operator.index(value)
    if value < minimum or (maximum is not None and value > maximum):
        allowed = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
        raise ConfigError(f"{name} must be {allowed}, got {value}")
    return value
