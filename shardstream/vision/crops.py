"""Crop geometry: torchvision's random-resized-crop and resize + centre-crop boxes, and the DCT scale.

A crop box is ``(top, left, height, width)`` in pixels of the image as displayed (after its EXIF
orientation). Boxes from :func:`random_resized_crop_params` are whole pixels; boxes from
:func:`center_crop_params` may be fractional, since they describe a centre crop of a resized image
in the coordinates of the original.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = [
    "CropBox",
    "SCALE_DENOMINATORS",
    "check_dims",
    "random_resized_crop_params",
    "rrc_box",
    "resize_shorter_side",
    "center_crop_params",
    "choose_scale",
    "expand_sizes",
    "normalize_size",
]

CropBox = tuple[float, float, float, float]
"""``(top, left, height, width)`` of a crop, in pixels of the oriented image."""

SCALE_DENOMINATORS: tuple[int, ...] = (8, 4, 2, 1)
"""The DCT scales libjpeg-turbo decodes fast (1/8, 1/4, 1/2, full), smallest decode first.

Other n/8 scales exist but decode slower than full size on the images measured here.
"""


def check_dims(height: int, width: int) -> tuple[int, int]:
    """``(height, width)`` as ints.

    Raises:
        ConfigError: a dimension is not a positive int.
    """
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{name} must be a positive int, got {value!r}")
    return int(height), int(width)


def _check_range(name: str, value: Sequence[float], positive: bool) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a pair (min, max) of numbers, got {value!r}") from None
    if not low <= high or (positive and low <= 0) or not math.isfinite(high):
        raise ConfigError(
            f"{name} must be (min, max) with min <= max{' and min > 0' if positive else ''}, "
            f"got {value!r}"
        )
    return low, high


def normalize_size(size: int | Sequence[int], name: str = "size") -> tuple[int, int]:
    """An output size as ``(height, width)``: an int ``s`` means ``(s, s)``, as in torchvision.

    Args:
        size: an int or a ``(height, width)`` pair of positive ints.
        name: the argument's name, for the error message.

    Returns:
        ``(height, width)``.

    Raises:
        ConfigError: the size is not a positive int or a pair of them.
    """
    pair: tuple[Any, ...]  # checked item by item below
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        pair = (int(size), int(size))
    elif isinstance(size, Sequence) and len(size) == 2 and not isinstance(size, str):
        pair = tuple(size)
    else:
        raise ConfigError(f"{name} must be an int or a (height, width) pair, got {size!r}")
    if not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in pair
    ):
        raise ConfigError(f"{name} must hold positive ints, got {size!r}")
    return int(pair[0]), int(pair[1])


def random_resized_crop_params(
    height: int,
    width: int,
    scale: Sequence[float] = (0.08, 1.0),
    ratio: Sequence[float] = (3 / 4, 4 / 3),
    *,
    rng: np.random.Generator,
) -> tuple[int, int, int, int]:
    """A random crop box by the algorithm of torchvision's ``RandomResizedCrop.get_params``.

    Up to ten attempts draw an area fraction uniformly from ``scale`` and an aspect ratio
    log-uniformly from ``ratio``; the first box that fits is placed uniformly at random. When none
    fits, the fallback is the largest centred box whose aspect is clamped into ``ratio``.
    The distribution of boxes equals torchvision's; the stream of numbers differs, since the draws
    come from ``rng`` (a NumPy generator) instead of torch's global generator.

    Args:
        height: height of the (oriented) image in pixels.
        width: width of the image in pixels.
        scale: ``(min, max)`` fraction of the image area the crop covers before fitting.
        ratio: ``(min, max)`` aspect ratio (width / height) of the crop; both positive.
        rng: the generator every draw comes from.

    Returns:
        ``(top, left, crop_height, crop_width)`` in whole pixels, inside the image.

    Raises:
        ConfigError: a dimension is not a positive int, or ``scale`` / ``ratio`` is not an
            ordered pair (``ratio`` also positive).
    """
    height, width = check_dims(height, width)
    scale_lo, scale_hi = _check_range("scale", scale, positive=False)
    ratio_lo, ratio_hi = _check_range("ratio", ratio, positive=True)
    return rrc_box(height, width, scale_lo, scale_hi, ratio_lo, ratio_hi, rng)


def rrc_box(
    height: int,
    width: int,
    scale_lo: float,
    scale_hi: float,
    ratio_lo: float,
    ratio_hi: float,
    rng: np.random.Generator,
) -> tuple[int, int, int, int]:
    """:func:`random_resized_crop_params` without the checks, for callers that made them once.

    Args:
        height: height of the image, a positive int.
        width: width of the image, a positive int.
        scale_lo: smallest area fraction.
        scale_hi: largest area fraction, ``>= scale_lo``.
        ratio_lo: smallest aspect ratio, ``> 0``.
        ratio_hi: largest aspect ratio, ``>= ratio_lo``.
        rng: the generator every draw comes from.

    Returns:
        ``(top, left, crop_height, crop_width)``, the same box and the same draws as
        :func:`random_resized_crop_params` with these arguments.
    """
    area = height * width
    log_lo, log_hi = math.log(ratio_lo), math.log(ratio_hi)
    scale_span, log_span = scale_hi - scale_lo, log_hi - log_lo
    draw = rng.random  # lo + (hi - lo) * random() is exactly what rng.uniform(lo, hi) computes
    for _ in range(10):
        target_area = area * (scale_lo + scale_span * draw())
        aspect = math.exp(log_lo + log_span * draw())
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < ratio_lo:
        w = width
        h = int(round(w / ratio_lo))
    elif in_ratio > ratio_hi:
        h = height
        w = int(round(h * ratio_hi))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def resize_shorter_side(height: int, width: int, size: int) -> tuple[int, int]:
    """The size torchvision's ``Resize(size)`` (an int) gives: shorter side ``size``, aspect kept.

    The longer side is ``int(size * long / short)`` (truncated), as torchvision computes it.

    Args:
        height: image height in pixels.
        width: image width in pixels.
        size: the shorter side after resizing.

    Returns:
        ``(new_height, new_width)``.

    Raises:
        ConfigError: an argument is not a positive int.
    """
    height, width = check_dims(height, width)
    size = normalize_size(size, "size")[0]
    if width <= height:
        return int(size * height / width), size
    return size, int(size * width / height)


def center_crop_params(
    height: int, width: int, *, resize_size: int = 256, crop_size: int | Sequence[int] = 224
) -> tuple[float, float, float, float]:
    """The box of torchvision's ``Resize(resize_size)`` + ``CenterCrop(crop_size)``, in source pixels.

    The centre crop is computed on the resized size exactly as torchvision does (offsets
    ``int(round((resized - crop) / 2))``), then mapped back into the original image, so resizing
    this box to ``crop_size`` samples the same points as resizing the whole image and cropping.

    Args:
        height: height of the (oriented) image in pixels.
        width: width of the image in pixels.
        resize_size: the shorter side after resizing.
        crop_size: the output size, an int or ``(height, width)``; at most the resized size.

    Returns:
        ``(top, left, box_height, box_width)``, possibly fractional.

    Raises:
        ConfigError: an argument is not a positive int (pair), or the crop is larger than the
            resized image (torchvision would pad; this pipeline does not).
    """
    height, width = check_dims(height, width)
    new_h, new_w = resize_shorter_side(height, width, resize_size)
    crop_h, crop_w = normalize_size(crop_size, "crop_size")
    if crop_h > new_h or crop_w > new_w:
        raise ConfigError(
            f"crop_size {crop_size!r} is larger than the resized image ({new_h} x {new_w}); "
            "padding is not supported"
        )
    top = int(round((new_h - crop_h) / 2.0))
    left = int(round((new_w - crop_w) / 2.0))
    sy, sx = height / new_h, width / new_w
    return top * sy, left * sx, crop_h * sy, crop_w * sx


def choose_scale(
    height: int,
    width: int,
    crops: Sequence[CropBox],
    out_sizes: Sequence[int | Sequence[int]] | int | Sequence[int],
) -> int:
    """The largest DCT scale denominator at which every crop keeps at least its output resolution.

    Decoding at ``1/d`` gives a ``ceil(height / d) x ceil(width / d)`` image in which pixel ``i``
    covers source pixels ``[i * d, (i + 1) * d)``, so a crop of ``h x w`` source pixels becomes
    ``h / d x w / d``. The chosen ``d`` (from :data:`SCALE_DENOMINATORS`) is the largest with
    ``h / d >= out_h`` and ``w / d >= out_w`` for every crop: no crop is ever upscaled from a
    reduced decode. A crop that is smaller than its output in the full image forces ``d = 1``.

    Args:
        height: height of the (oriented) image in pixels.
        width: width of the image in pixels.
        crops: the planned boxes ``(top, left, h, w)``; with no crops the answer is 8.
        out_sizes: the output size of each crop (an int or ``(h, w)`` each), or one int for all.

    Returns:
        The denominator, one of 1, 2, 4 or 8.

    Raises:
        ConfigError: a dimension or size is invalid, or the number of sizes differs from the
            number of crops.
    """
    check_dims(height, width)
    sizes = expand_sizes(out_sizes, len(crops))
    best = SCALE_DENOMINATORS[0]
    for (_, _, h, w), (out_h, out_w) in zip(crops, sizes):
        fits = min(h / out_h, w / out_w)
        while best > 1 and fits < best:
            best //= 2
    return best


def expand_sizes(
    out_sizes: Sequence[int | Sequence[int]] | int | Sequence[int], count: int
) -> list[tuple[int, int]]:
    """One ``(height, width)`` per crop, from a list of per-crop sizes or one int shared by all.

    Args:
        out_sizes: an int (every crop ``s x s``), or ``count`` sizes, each an int or ``(h, w)``.
        count: the number of crops.

    Returns:
        ``count`` pairs ``(height, width)``.

    Raises:
        ConfigError: a size is invalid, or a per-crop list does not have ``count`` entries.
    """
    if isinstance(out_sizes, (int, np.integer)) and not isinstance(out_sizes, bool):
        return [normalize_size(out_sizes, "out_sizes")] * count
    if not isinstance(out_sizes, Sequence) or isinstance(out_sizes, str):
        raise ConfigError(f"out_sizes must be an int or a list of sizes, got {out_sizes!r}")
    if len(out_sizes) != count:
        raise ConfigError(f"out_sizes has {len(out_sizes)} entries for {count} crops")
    return [normalize_size(size, f"out_sizes[{i}]") for i, size in enumerate(out_sizes)]
