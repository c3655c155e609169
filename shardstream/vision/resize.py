"""Resize many crops of one decoded image with Pillow's antialiased bicubic or bilinear filter, exactly.

dinov2 (and torchvision's transforms on PIL images) cut a box out of a PIL image and resize it with
``Image.resize(size, BICUBIC)`` (``BILINEAR`` for torchvision's default ``RandomResizedCrop``);
those are the pixels published models were trained on.
:func:`resize_crops` gives the same bytes: the optional C extension ``shardstream.vision._resample``
(built by ``setup.py``) computes Pillow's coefficients and fixed-point passes, in the order the
installed Pillow runs them (Pillow 13 runs the vertical pass first when the height shrinks by more
than twice as many pixels as the width; earlier releases always start horizontally), and writes
each view straight into its destination, mirrored if asked and channels-last or channels-first,
so no copy, flip or channel split follows. On the 10 views of a DINO sample (2 x 224 + 8 x 96 from
a ~400 x 350 photo, one thread) it measured 0.74 ms into channels-first memory, against 0.85 ms
for torch's uint8 ``interpolate(antialias=True)`` alone (channels-last, before the copies and the
channel split that the views then needed).

Without the extension the crops are resized by ``torch.nn.functional.interpolate(mode=...,
antialias=True)`` (Pillow's filter with its own rounding: within one level of Pillow on 99.8 % of
the pixels) and copied into place.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError
from ..fastpaths import warn_slow_path

try:
    from . import _resample
except ImportError:  # the optional extension was not built
    _resample = None  # type: ignore[assignment]  # mypy cannot type an optional module

__all__ = ["EXACT_RESIZE", "pillow_horizontal_first", "resize_crops"]

EXACT_RESIZE: bool = _resample is not None
"""Whether the C extension ``_resample`` is built: resizes are then bit-identical to Pillow's."""


def pillow_horizontal_first() -> bool:
    """Whether the installed Pillow always runs its horizontal pass first (releases before 13).

    Returns:
        ``True`` for Pillow < 13, ``False`` for Pillow 13 and later or when Pillow is missing.
    """
    try:
        import PIL
    except ImportError:
        return False
    try:
        return int(PIL.__version__.split(".")[0]) < 13
    except ValueError:
        return False


_HORIZONTAL_FIRST = pillow_horizontal_first()
_MAX_PER_CALL = 64  # the extension's limit per call
#: the extension's limits: image and output sides, and bytes of one output
MAX_SIDE = 2**28
MAX_OUT_BYTES = 2**31 - 1


def resize_crops(
    image: np.ndarray,
    boxes: Sequence[tuple[int, int, int, int]],
    flips: Sequence[bool] | np.ndarray,
    outs: Sequence[np.ndarray],
    *,
    interpolation: str = "bicubic",
    horizontal_first: bool | None = None,
    spans: Sequence[tuple[float, float, float, float] | None] | None = None,
) -> None:
    """Resize boxes of ``image`` into ``outs`` (antialiased when shrinking), mirrored on ``flips``.

    Each out receives ``Image.fromarray(image).crop(box).resize(size, filter, box=span)``
    (mirrored left to right when its flip is true), byte for byte where the extension is built.

    Args:
        image: uint8 ``(H, W, C)`` array, 1 to 4 interleaved channels (rows may be strided).
        boxes: ``(top, left, height, width)`` per crop, whole pixels inside the image.
        flips: one bool per crop.
        outs: one writable uint8 ``(h, w, C)`` array per crop, any strides: a channels-first
            ``(C, h, w)`` array's ``transpose(1, 2, 0)`` receives channels-first pixels directly.
        interpolation: ``"bicubic"`` (Pillow's ``BICUBIC``, dinov2's) or ``"bilinear"``
            (``BILINEAR``, torchvision's default).
        horizontal_first: run the horizontal pass first always, as Pillow before 13 does;
            ``None`` (default) follows the installed Pillow.
        spans: per crop, ``None`` (the whole crop) or the fractional region of it to resample,
            Pillow's ``resize(box=(x0, y0, x1, y1))`` in the crop's own pixels (taken in single
            precision, as Pillow takes it); ``None`` for all crops by default.

    Raises:
        ConfigError: the arrays have the wrong dtype, rank or channel count, are not writable
            (outs), or are larger than ``MAX_SIDE`` per side (``MAX_OUT_BYTES`` per out); a box
            is not whole pixels inside the image or a span not finite and inside its box; the
            sequences differ in length, or ``interpolation`` is unknown.
    """
    if interpolation not in ("bicubic", "bilinear"):
        raise ConfigError(f"interpolation must be 'bicubic' or 'bilinear', got {interpolation!r}")
    if horizontal_first is None:
        horizontal_first = _HORIZONTAL_FIRST
    if spans is not None and len(spans) != len(boxes):
        raise ConfigError("boxes, flips, outs and spans must have the same length")
    _check_boxes(image, boxes)
    if _resample is None:
        warn_slow_path("_resample")
        if spans is not None and any(span is not None for span in spans):
            _resize_with_pillow(image, boxes, flips, outs, interpolation, spans)
        else:
            _resize_with_torch(image, boxes, flips, outs, interpolation)
        return
    strides = getattr(image, "strides", None)
    if (
        strides is not None
        and image.ndim == 3
        and (strides[2] != 1 or strides[1] != image.shape[2] or strides[0] < 0)
    ):
        image = np.ascontiguousarray(image)  # e.g. an EXIF-transposed view
    try:
        for start in range(0, max(len(boxes), 1), _MAX_PER_CALL):
            stop = start + _MAX_PER_CALL
            _resample.resize_crops(
                image,
                boxes[start:stop],
                flips[start:stop],
                outs[start:stop],
                horizontal_first=horizontal_first,
                bilinear=interpolation == "bilinear",
                spans=None if spans is None else spans[start:stop],
            )
    except (ValueError, TypeError, OverflowError, BufferError) as error:
        raise ConfigError(f"cannot resize the crops: {error}") from None


def _resize_with_pillow(
    image: np.ndarray,
    boxes: Sequence[tuple[int, int, int, int]],
    flips: Sequence[bool] | np.ndarray,
    outs: Sequence[np.ndarray],
    interpolation: str,
    spans: Sequence[tuple[float, float, float, float] | None],
) -> None:
    """The fallback for fractional spans: Pillow itself, crop by crop."""
    from PIL import Image

    _check_crops(image, boxes, flips, outs)
    resample = (
        Image.Resampling.BILINEAR if interpolation == "bilinear" else Image.Resampling.BICUBIC
    )
    for (top, left, h, w), flip, out, span in zip(boxes, flips, outs, spans):
        region = np.ascontiguousarray(image[top : top + h, left : left + w])
        try:
            resized = Image.fromarray(region).resize(out.shape[1::-1], resample, box=span)
        except ValueError as error:
            raise ConfigError(f"cannot resize the crops: {error}") from None
        pixels = np.asarray(resized).reshape(out.shape)
        np.copyto(out, pixels[:, ::-1] if flip else pixels)


def _resize_with_torch(
    image: np.ndarray,
    boxes: Sequence[tuple[int, int, int, int]],
    flips: Sequence[bool] | np.ndarray,
    outs: Sequence[np.ndarray],
    interpolation: str = "bicubic",
) -> None:
    """The fallback: torch's uint8 antialiased kernel, then a (mirrored) copy."""
    import torch
    from torch.nn import functional

    _check_crops(image, boxes, flips, outs)
    if not image.flags.writeable or any(stride < 0 for stride in image.strides):
        image = np.array(image)
    pixels = torch.from_numpy(image).unsqueeze(0).permute(0, 3, 1, 2)  # (1, C, H, W) view
    for (top, left, h, w), flip, out in zip(boxes, flips, outs):
        if (h, w) == out.shape[:2]:
            region = image[top : top + h, left : left + w]
        else:
            # a contiguous channels-last copy takes torch's vectorised uint8 kernel
            resized = functional.interpolate(
                pixels[:, :, top : top + h, left : left + w].contiguous(
                    memory_format=torch.channels_last
                ),
                size=out.shape[:2],
                mode=interpolation,
                antialias=True,
            )
            region = resized[0].permute(1, 2, 0).numpy()
        np.copyto(out, region[:, ::-1] if flip else region)


def _check_boxes(image: np.ndarray, boxes: Sequence[tuple[int, int, int, int]]) -> None:
    """Every box inside the image, compared in Python's exact integers (ConfigError otherwise).

    Once per call and a few operations per box: the extension checks everything again in 64
    bits (and the outs, which only it checks on its path), and its errors become ConfigError
    too; this names a box such as ``(2**31 - 10, 0, 100, 8)`` that would not fit its C ints.
    """
    try:
        height, width = image.shape[:2]
    except (AttributeError, TypeError, ValueError):
        raise ConfigError(f"image must be a uint8 (H, W, C) array, got {type(image)}") from None
    for box in boxes:
        try:
            top, left, h, w = box
            inside = top >= 0 and left >= 0 and h > 0 and w > 0
            inside = inside and top + h <= height and left + w <= width
        except (TypeError, ValueError):
            raise ConfigError(
                f"a box must be 4 integers (top, left, height, width), got {box!r}"
            ) from None
        if not inside:
            raise ConfigError(f"box {tuple(box)} is not inside the {height} x {width} image")


def _check_crops(
    image: np.ndarray,
    boxes: Sequence[tuple[int, int, int, int]],
    flips: Sequence[bool] | np.ndarray,
    outs: Sequence[np.ndarray],
) -> None:
    """The fallbacks' checks of what the extension checks itself (ConfigError on failure)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
        raise ConfigError(
            f"image must be a uint8 (H, W, C) array, got {getattr(image, 'dtype', type(image))} "
            f"{getattr(image, 'shape', '')}"
        )
    height, width, channels = image.shape
    if not 1 <= channels <= 4 or height > MAX_SIDE or width > MAX_SIDE:
        raise ConfigError(
            f"image must have 1-4 channels and sides of at most {MAX_SIDE}, got {image.shape}"
        )
    try:
        same = len(boxes) == len(flips) == len(outs)
    except TypeError:
        raise ConfigError("boxes, flips and outs must be sequences") from None
    if not same:
        raise ConfigError("boxes, flips and outs must have the same length")
    _check_boxes(image, boxes)
    for i, (box, out) in enumerate(zip(boxes, outs)):
        if any(isinstance(v, (float, np.floating)) for v in box):
            raise ConfigError(f"box {i} must be 4 integers (top, left, height, width), got {box!r}")
        if (
            not isinstance(out, np.ndarray)
            or out.dtype != np.uint8
            or out.ndim != 3
            or out.shape[2] != channels
            or not out.flags.writeable
        ):
            raise ConfigError(f"out {i} must be a writable uint8 (h, w, {channels}) array")
        if min(out.shape[:2]) < 1 or max(out.shape[:2]) > MAX_SIDE or out.size > MAX_OUT_BYTES:
            raise ConfigError(
                f"out {i} has shape {out.shape}: sides must be 1 to {MAX_SIDE}, the whole at "
                f"most {MAX_OUT_BYTES} bytes"
            )
