"""The band of whole rows a ``resize="device"`` worker decodes (see
:mod:`~shardstream.vision.device_views`), and where it puts the payload.

A JPEG at full size whose crops span most of its width ships the band of rows from the crops'
top to their bottom, decoded by the system libjpeg-turbo (the C extension ``_jpegregion``)
straight into the array shipped: libjpeg's raw Y/Cb/Cr planes where
:func:`~shardstream.vision.jpeg_planes.plane_layout` applies, else RGB. In a loader worker that
array is carved out of the batch's shared-memory slot (:class:`_SlotPayloads`). This runs once per
image in the workers, next to a decode of ~0.9 ms, so it is plain Python steps on ints.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import numpy as np

from ..engine.scratch import BatchBuffers
from .crops import CropBox
from .decode import _ends_with_eoi
from .decode_pil import check_pixels
from .jpeg import is_jpeg, jpeg_info
from .jpeg_planes import layout_fields

try:  # optional C extension (setup.py); without it every image takes the general path
    from . import _jpegregion
except ImportError:  # pragma: no cover - built where the tests run
    _jpegregion = None  # type: ignore[assignment]  # mypy cannot type an optional module

__all__ = ["full_size", "ship_band"]

_ALIGN = 64  # each payload starts 64-byte aligned in the ragged buffer, as the engine's arena
# aligns; the bytes between payloads are zero, so a batch is the same bytes however it was laid out


class _SlotPayloads:
    """Where this process's workers put the payloads they decode: straight into the batch's
    shared-memory slot when the engine's reusing buffers (remembered from the last
    :func:`~shardstream.vision.device_views.collate_shipped` in a loader worker) have an arena open, else new arrays."""

    def __init__(self) -> None:
        self.buffers: BatchBuffers | None = None
        self.lock = threading.Lock()  # the arena is a bump allocator; samples may run on threads

    def array(self, shape: tuple[int, ...]) -> np.ndarray:
        nbytes = math.prod(shape)
        buffers = self.buffers
        if buffers is not None and nbytes:
            with self.lock:
                flat = buffers.slot_array((-(-nbytes // _ALIGN) * _ALIGN,), np.uint8)
            if flat is not None:
                if flat.size > nbytes:
                    flat[nbytes:] = 0
                return flat[:nbytes] if len(shape) == 1 else flat[:nbytes].reshape(shape)
        return np.empty(shape, np.uint8)


_slot_payloads = _SlotPayloads()

_BAND_MIN_WIDTH = 0.6
# A union at least this fraction of the image's width ships as a band of whole rows, decoded
# straight into its array; a narrower one as the union itself, whose decode skips the columns
# outside it (jpeg_crop_scanline; decode.py's _CROP_COLUMNS_BELOW).
_PLANES = hasattr(_jpegregion, "decode_band_planes")  # an older build decodes RGB bands only


def full_size(boxes: Sequence[CropBox], sizes: Sequence[tuple[int, int]]) -> bool:
    """Whether the exact path decodes these crops (``(top, left, h, w)``, output sizes
    ``sizes``) at full size: some crop is less than twice
    its output size on an axis (:func:`~shardstream.vision.device_views.ship_region`'s
    ``fits < 2``, the same divisions)."""
    return any(box[2] / h < 2 or box[3] / w < 2 for box, (h, w) in zip(boxes, sizes))


def ship_band(
    data: bytes | bytearray | memoryview,
    boxes: Sequence[CropBox],
    max_pixels: int | None,
    planes: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """:func:`~shardstream.vision.device_views.ship_region`'s fast path: a JPEG at full size whose crops span most of its width.

    The rows from the boxes' top to their bottom are decoded at full width by the region decoder
    straight into the array shipped (no copy: measured ~4 % quicker per DINO image than the union
    cut out of the same rows, and ~20 % quicker than simplejpeg's full decode here). ``None``
    where it does not apply (other formats, EXIF-rotated or CMYK/YCCK JPEGs, no EOI marker,
    fractional, narrow or outside boxes, no extension) or libjpeg refuses: the general path then
    decodes, or reports the fault. With ``planes``, a JPEG that
    :func:`~shardstream.vision.jpeg_planes.plane_layout` takes ships its
    raw planes (flat uint8) and their layout as the third item; otherwise that is ``None``.
    """
    if _jpegregion is None or not is_jpeg(data):
        return None
    info = jpeg_info(data)
    rows, cols = info.height, info.width
    if info.orientation != 1 or info.colorspace in ("cmyk", "ycck") or max(rows, cols) < 8:
        return None
    top, bottom, left, right = rows, 0, cols, 0
    for box in boxes:
        y, x, h, w = box
        if type(y) is not int or type(x) is not int or type(h) is not int or type(w) is not int:
            return None
        if h <= 0 or w <= 0:
            return None
        if y < top:
            top = y
        if y + h > bottom:
            bottom = y + h
        if x < left:
            left = x
        if x + w > right:
            right = x + w
    if top < 0 or left < 0 or bottom > rows or right > cols or top >= bottom or left >= right:
        return None
    if right - left < _BAND_MIN_WIDTH * cols:
        return None
    check_pixels(cols, rows, max_pixels)
    if not _ends_with_eoi(data):  # a truncated file: the full decode reports it
        return None
    relative = np.array(boxes, np.float64)
    relative[:, 0] -= top
    layout = layout_fields(info, top, bottom) if planes and _PLANES else None
    if layout is not None:
        band_rows, _, y_stride, c_stride, c_rows, hf, vf, _, c_first = layout[:9]
        raw = _slot_payloads.array((band_rows * y_stride + 2 * c_rows * c_stride,))
        try:
            _jpegregion.decode_band_planes(
                data, raw, top, band_rows, y_stride, c_first, c_rows, c_stride, hf, vf
            )
        except (ValueError, NotImplementedError):  # corrupt, or a sampling it declines
            pass  # the RGB band decode below reports a fault or does it
        else:
            return raw, relative, np.array(layout, np.int64)
    pixels = _slot_payloads.array((bottom - top, cols, 3))
    try:
        _jpegregion.decode_region(data, pixels, top, 0, bottom - top, cols)
    except (ValueError, NotImplementedError):  # corrupt, or a layout it declines
        return None
    return pixels, relative, None
