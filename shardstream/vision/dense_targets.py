"""Dense targets for the dense presets: decoding label images and saliency maps, and moving them.

A label image ("mask") holds class indices. It is decoded with Pillow, which gives a palette
PNG's *indices* (OpenCV would turn the palette into colours), an 8-bit grey PNG's values and a
16-bit PNG's values (``uint16``), all in C without per-pixel Python. A colour-coded label image
(RGB) is refused: as datadings does, such a set maps colours to class indices when it is written.
Masks are resized with torch's ``"nearest"`` rule (the one torchvision's ``transforms.v2`` uses
for ``tv_tensors.Mask``): output pixel ``i`` of ``n`` takes source pixel
``min(floor(i * float32(m / n)), m - 1)``, computed in single precision as torch does.

A saliency map is a grey 8-bit image, resized like an image (Pillow's antialiased bilinear,
:func:`~shardstream.vision.resize.resize_crops`).

Pixel layers are cut with :func:`crop_pad`: a window that reaches outside the layer is padded
with a fill value (the ignore index for masks, 0 for images and maps).
"""

from __future__ import annotations

import io

import numpy as np

from ..errors import TargetError
from .resize import resize_crops

__all__ = [
    "MASK_MODES",
    "crop_pad",
    "decode_mask",
    "decode_saliency",
    "nearest_indices",
    "resize_mask",
    "resize_saliency",
]

MASK_MODES = ("P", "L", "1", "I;16", "I;16L", "I;16B", "I")
"""Pillow modes a label image may have (palette indices, grey, 16- and 32-bit integers)."""


def _open(data, field: str, size: tuple[int, int] | None):
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(bytes(data)))
    except (UnidentifiedImageError, OSError, ValueError, TypeError) as error:
        raise TargetError(f"field {field!r} is not an image Pillow can read: {error}") from None
    if size is not None and (image.height, image.width) != tuple(size):
        image.close()
        raise TargetError(
            f"field {field!r} is {image.height} x {image.width} pixels, its image "
            f"{size[0]} x {size[1]}"
        )
    return image


def _as_array(value, field: str, size: tuple[int, int] | None) -> np.ndarray | None:
    """An already decoded 2-D array target, checked; ``None`` for encoded bytes."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return None
    array = np.asarray(value)
    if array.ndim != 2 or array.dtype.kind not in "uib":
        raise TargetError(
            f"field {field!r} must be encoded image bytes or a 2-D integer array, got "
            f"{array.dtype} {array.shape}"
        )
    if size is not None and array.shape != tuple(size):
        raise TargetError(f"field {field!r} is {array.shape}, its image {tuple(size)}")
    return array


def decode_mask(value, *, field: str = "mask", size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode a label image to its class indices.

    Args:
        value: PNG (or other Pillow-readable) bytes, or a decoded 2-D integer array.
        field: the field's name, for error messages.
        size: the ``(height, width)`` the map must have (its image's); ``None``: any.

    Returns:
        A 2-D array: ``uint8`` for palette (the indices), grey and 1-bit images, ``uint16`` for
        16-bit PNGs, ``int32`` for 32-bit ones; an array input as it is (bool as uint8).

    Raises:
        TargetError: not an image, a colour (RGB / RGBA / grey-alpha) image, or the wrong size.
    """
    array = _as_array(value, field, size)
    if array is not None:
        return array.astype(np.uint8) if array.dtype == bool else array
    with _open(value, field, size) as image:
        if image.mode not in MASK_MODES:
            raise TargetError(
                f"field {field!r} is a {image.mode} image, not a label image of class indices "
                f"(modes {', '.join(MASK_MODES)}); map its colours to indices when writing"
            )
        try:
            array = np.asarray(image)
        except (OSError, ValueError) as error:
            raise TargetError(f"field {field!r} cannot be decoded: {error}") from None
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.dtype.byteorder == ">":  # I;16B
        return array.astype(array.dtype.newbyteorder("="))
    return array


def decode_saliency(
    value, *, field: str = "saliency", size: tuple[int, int] | None = None
) -> np.ndarray:
    """Decode a saliency (or fixation density) map to a grey ``uint8`` array.

    Args:
        value: image bytes (a colour map is converted to grey as Pillow's ``convert("L")``),
            or a decoded 2-D ``uint8`` array.
        field: the field's name, for error messages.
        size: the ``(height, width)`` the map must have; ``None``: any.

    Returns:
        A C-contiguous ``(H, W)`` uint8 array.

    Raises:
        TargetError: not an image, an array that is not 2-D uint8, or the wrong size.
    """
    array = _as_array(value, field, size)
    if array is not None:
        if array.dtype != np.uint8:
            raise TargetError(f"field {field!r}: a saliency array must be uint8, got {array.dtype}")
        return np.ascontiguousarray(array)
    with _open(value, field, size) as image:
        try:
            grey = image if image.mode == "L" else image.convert("L")
            return np.array(grey)
        except (OSError, ValueError) as error:
            raise TargetError(f"field {field!r} cannot be decoded: {error}") from None


def nearest_indices(in_size: int, out_size: int) -> np.ndarray:
    """Source indices of torch's ``"nearest"`` interpolation from ``in_size`` to ``out_size``.

    Args:
        in_size: the source length, positive.
        out_size: the output length, positive.

    Returns:
        An ``intp`` array of ``out_size`` indices in ``[0, in_size)``.
    """
    if out_size == in_size:
        return np.arange(out_size)
    if out_size == 2 * in_size:
        return np.arange(out_size) >> 1
    scale = np.float32(in_size) / np.float32(out_size)
    positions = np.arange(out_size, dtype=np.float32) * scale  # single precision, as torch
    return np.minimum(np.floor(positions).astype(np.intp), in_size - 1)


def resize_mask(
    mask: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int], flip: bool = False
) -> np.ndarray:
    """Resize the whole-pixel ``box`` of a mask to ``size`` by nearest neighbour, mirrored on ``flip``.

    Args:
        mask: a 2-D array.
        box: ``(top, left, height, width)`` inside the mask.
        size: ``(out_height, out_width)``.
        flip: mirror the result left to right.

    Returns:
        A C-contiguous ``size`` array of the mask's dtype.
    """
    top, left, h, w = (int(v) for v in box)
    rows = top + nearest_indices(h, size[0])
    cols = left + nearest_indices(w, size[1])
    if flip:
        cols = cols[::-1]
    return mask[rows].take(cols, axis=1)  # two gathers: ~3x faster than a 2-D fancy index


def resize_saliency(
    saliency: np.ndarray,
    box: tuple[int, int, int, int],
    size: tuple[int, int],
    flip: bool = False,
    interpolation: str = "bilinear",
) -> np.ndarray:
    """Resize the whole-pixel ``box`` of a uint8 map to ``size`` (Pillow's antialiased filter).

    Args:
        saliency: a 2-D uint8 array.
        box: ``(top, left, height, width)`` inside the map.
        size: ``(out_height, out_width)``.
        flip: mirror the result left to right.
        interpolation: ``"bilinear"`` or ``"bicubic"``.

    Returns:
        A C-contiguous uint8 ``size`` array.
    """
    out = np.empty(size, np.uint8)
    top, left, height, width = box
    resize_crops(
        saliency[:, :, None],
        [(int(top), int(left), int(height), int(width))],
        [flip],
        [out[:, :, None]],
        interpolation=interpolation,
    )
    return out


def crop_pad(
    layer: np.ndarray, top: int, left: int, height: int, width: int, fill: int
) -> np.ndarray:
    """The ``height x width`` window of ``layer`` at ``(top, left)``, padded with ``fill`` outside.

    Args:
        layer: an array whose first two axes are rows and columns.
        top: first row of the window (may be negative or reach past the layer).
        left: first column of the window (likewise).
        height: window height.
        width: window width.
        fill: the value of the window's pixels outside the layer.

    Returns:
        A new C-contiguous array ``(height, width, ...)`` of the layer's dtype.
    """
    rows, cols = layer.shape[:2]
    y0, y1 = max(top, 0), min(top + height, rows)
    x0, x1 = max(left, 0), min(left + width, cols)
    if (y0, x0, y1, x1) == (top, left, top + height, left + width):
        return np.ascontiguousarray(layer[y0:y1, x0:x1])
    out = np.full((height, width, *layer.shape[2:]), fill, layer.dtype)
    if y1 > y0 and x1 > x0:
        out[y0 - top : y1 - top, x0 - left : x1 - left] = layer[y0:y1, x0:x1]
    return out
