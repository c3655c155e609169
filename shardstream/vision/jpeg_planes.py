"""A band of a JPEG's rows as libjpeg's raw Y, Cb and Cr planes (the worker side).

``resize="device"`` workers decode the band of whole rows the crops span. Of libjpeg-turbo's
decode, entropy decoding and the IDCT must run where the bytes are; upsampling the chroma and
converting YCbCr to RGB need not. For a Y:Cb:Cr JPEG with 4:2:0, 4:2:2 or 4:4:4 sampling the
worker therefore ships the IDCT's planes (``jpeg_read_raw_data``, C extension ``_jpegregion``):
half the bytes of RGB at 4:2:0, and ~8 % less CPU per DINO demo image (0.89 against 0.97 ms).
The device step does libjpeg's "fancy" (triangle) upsampling and its fixed-point colour
conversion in integer torch ops (:mod:`~shardstream.vision.device_planes`), so the pixels are
those of libjpeg's RGB decode, bit for bit.

A payload of planes is one flat uint8 array: the band's luma rows (``y_stride`` bytes each, the
MCU-padded plane width), then the chroma rows it needs (``c_rows`` of ``c_stride`` bytes: the
rows under the band plus the context row either side that the upsampling reads), Cb then Cr. Its
layout travels as :data:`LAYOUT_FIELDS` (int64, the batch field ``payload_layout``).
"""

from __future__ import annotations

import numpy as np

from .jpeg import JpegInfo

__all__ = [
    "LAYOUT_FIELDS",
    "NO_LAYOUT",
    "layout_fields",
    "plane_arguments",
    "plane_layout",
    "planes_nbytes",
]

LAYOUT_FIELDS: tuple[str, ...] = (
    "rows",  # luma rows shipped: the band [top, top + rows)
    "width",  # the image's width (pixels of a row)
    "y_stride",  # bytes per luma row shipped
    "c_stride",  # bytes per chroma row shipped
    "c_rows",  # chroma rows shipped per chroma plane
    "h_factor",  # luma samples per chroma sample across (1 or 2)
    "v_factor",  # luma rows per chroma row (1 or 2)
    "top",  # the band's first row in the image
    "c_first",  # the first chroma row shipped, in the chroma plane
    "c_height",  # the chroma plane's height (libjpeg's downsampled_height)
    "c_width",  # the chroma plane's width (libjpeg's downsampled_width)
)
"""The fields of a payload's layout, in order (``payload_layout[b]``)."""

NO_LAYOUT = np.zeros(len(LAYOUT_FIELDS), np.int64)
"""The layout of a payload that is not planes (pixels or JPEG bytes): zeros."""

_FACTORS = {"420": (2, 2), "422": (2, 1), "444": (1, 1)}
_PROCESSES = frozenset(("baseline", "extended", "progressive"))


def plane_layout(info: JpegInfo, top: int, bottom: int) -> np.ndarray | None:
    """The layout of rows ``[top, bottom)`` of a JPEG shipped as planes, or ``None`` where
    planes do not apply (not Y:Cb:Cr 4:2:0 / 4:2:2 / 4:4:4 at 8 bits, an EXIF orientation, or a
    chroma plane narrower than libjpeg's fancy upsampling takes).

    Args:
        info: the JPEG's header (:func:`~shardstream.vision.jpeg.jpeg_info`).
        top: the band's first row (``0 <= top < bottom <= info.height``, checked by the caller).
        bottom: one past its last row.

    Returns:
        int64 ``(len(LAYOUT_FIELDS),)``, or ``None``.
    """
    fields = layout_fields(info, top, bottom)
    return None if fields is None else np.array(fields, np.int64)


def layout_fields(info: JpegInfo, top: int, bottom: int) -> tuple[int, ...] | None:
    """:func:`plane_layout` as a tuple of Python ints (what a worker computes with: indexing a
    tuple is several times quicker than reading numpy scalars), or ``None``."""
    factors = _FACTORS.get(info.subsampling)
    if (
        factors is None
        or info.colorspace != "ycbcr"
        or info.precision != 8
        or info.orientation != 1
        or info.process not in _PROCESSES
    ):
        return None
    hf, vf = factors
    width, height = info.width, info.height
    c_width, c_height = -(-width // hf), -(-height // vf)
    if hf == 2 and c_width <= 2:  # libjpeg then replicates instead of its fancy upsampling
        return None
    mcus = -(-width // (8 * hf))
    if vf == 2:  # the upsampling reads the chroma row above or below each row's own
        c_first = max(top // 2 - 1, 0)
        c_last = min((bottom - 1) // 2 + 1, c_height - 1)
    else:
        c_first, c_last = top, bottom - 1
    return (
        bottom - top,
        width,
        mcus * hf * 8,
        mcus * 8,
        c_last - c_first + 1,
        hf,
        vf,
        top,
        c_first,
        c_height,
        c_width,
    )


def planes_nbytes(layout: np.ndarray | tuple[int, ...]) -> int:
    """Bytes of a payload of planes with this layout (luma rows, then Cb and Cr rows)."""
    rows, _, y_stride, c_stride, c_rows = (int(v) for v in layout[:5])
    return rows * y_stride + 2 * c_rows * c_stride


def plane_arguments(layout: np.ndarray | tuple[int, ...]) -> tuple[int, ...]:
    """The arguments after ``out`` of ``_jpegregion.decode_band_planes`` for a layout: ``(top,
    rows, y_stride, c_first, c_rows, c_stride, h_factor, v_factor)``."""
    rows, _, y_stride, c_stride, c_rows, hf, vf, top, c_first = (int(v) for v in layout[:9])
    return top, rows, y_stride, c_first, c_rows, c_stride, hf, vf
