"""Decode an image once, at the smallest DCT scale its crops allow, and cut out resized crops.

JPEGs are decoded with simplejpeg (libjpeg-turbo, releases the GIL) at scale 1/1, 1/2, 1/4 or
1/8, chosen by :func:`~shardstream.vision.crops.choose_scale` so that no crop is upscaled from a
reduced decode. CMYK/YCCK JPEGs, JPEGs simplejpeg rejects, and other formats (PNG, WebP, ...) are
decoded with Pillow (JPEGs still DCT-scaled through ``Image.draft``). Grey and palette images
become RGB; an alpha channel is dropped, as torchvision's ``pil_loader`` does.

Crops are planned in the *oriented* frame: the image as displayed once its EXIF orientation is
applied (width and height swap for orientations 5-8), which is what ``PIL.ImageOps.exif_transpose``
gives. :func:`image_size` returns that frame's size, so plan crops from it.

Each crop follows torchvision's ``resized_crop`` on a PIL image: the box is cut out, then resized
with Pillow's filter (bicubic by default, antialiased when shrinking), then optionally mirrored.
Pixels outside a box never contribute to it. On a reduced decode the box is mapped into the scaled
image, where it may start and end between pixels, and exactly that fractional box is resampled.
Bilinear and bicubic resizes run in :func:`~shardstream.vision.resize.resize_crops` (Pillow's
arithmetic, bit for bit, in a C extension; measured 1.3-1.4x faster per evaluation crop than
Pillow itself here); nearest and Lanczos go through Pillow.

Region decoding: when the crops need only part of a JPEG, :func:`decode_crops` and
:func:`decode_region` decode just the bounding box of the pixels they read (the union of the
crops), with the optional C extension ``shardstream.vision._jpegregion`` (built by ``setup.py``
against the system libjpeg-turbo): ``jpeg_skip_scanlines`` skips the rows above the box (entropy
decoding only), decoding stops after its last row, and for a box under 60 % of the width
``jpeg_crop_scanline`` also skips the IDCT of the columns outside it. The pixels are identical to
those of the full decode (tests/vision/test_jpegregion.py). The full decode is used instead when
the extension is not built, for CMYK/YCCK JPEGs, images under 8 x 8 pixels, data that does not end
with the EOI marker (so a truncated file still raises), whenever libjpeg refuses the region decode
(the full decode then raises or decodes as it always did), and in :func:`decode_crops` when the
union covers more than 85 % of the image (no faster there). Entropy decoding, which cannot skip
anything above the box, is most of the cost: on ~400 x 350 quality-90 photos a random-resized-crop
box decodes ~10 % faster (~30 % for boxes under 30 % of the area).

As decoding stops at the box's last row, damage confined to the rows below it (a flipped bit in
the entropy data, stray bytes before EOI) goes unnoticed where a full decode would report it. (A
full decode that reports damage hands the file to Pillow, which often decodes it leniently anyway:
then the pixels agree.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from ..errors import ConfigError, ImageDecodeError
from ..fastpaths import warn_slow_path
from .crops import SCALE_DENOMINATORS, CropBox, choose_scale, expand_sizes
from .decode_pil import check_pixels, decode_pil, open_pil, pil_orientation
from .jpeg import is_jpeg, jpeg_info
from .resize import MAX_OUT_BYTES, MAX_SIDE, resize_crops

try:  # the fast path; without it Pillow decodes every image
    import simplejpeg as _simplejpeg
except ImportError:  # pragma: no cover - simplejpeg is installed where the tests run
    _simplejpeg = None

try:  # optional C extension (setup.py): decode only the part of a JPEG the crops read
    from . import _jpegregion
except ImportError:  # pragma: no cover - built where the tests run; elsewhere: full decodes
    _jpegregion = None  # type: ignore[assignment]  # mypy cannot type an optional module

__all__ = [
    "INTERPOLATIONS",
    "REGION_DECODER",
    "image_size",
    "decode_image",
    "decode_region",
    "decode_crops",
    "orient",
]

REGION_DECODER: bool = _jpegregion is not None
"""Whether the region decoder (the C extension ``_jpegregion``) is built and importable; without
it :func:`decode_region` and :func:`decode_crops` decode whole images (same pixels, slower)."""

INTERPOLATIONS: dict[str, int] = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
"""The resampling filters :func:`decode_crops` accepts, by name (Pillow's, as torchvision uses)."""

# filters computed by resize_crops (bit-identical to Pillow's); the others go through Pillow
_KERNEL_FILTERS: dict[int, str] = {
    Image.Resampling.BILINEAR: "bilinear",
    Image.Resampling.BICUBIC: "bicubic",
}

_CROP_COLUMNS_BELOW = 0.6
# A region narrower than this fraction of the image also skips the IDCT of the columns outside it
# (jpeg_crop_scanline); wider ones decode whole rows and copy the region's columns out, which
# measured faster there (entropy decoding, which cannot skip columns, dominates). See _jpegregion.c.

_UNION_MAX_AREA = 0.85
# decode_crops decodes the whole image when its crops' union covers more of it than this: there
# the region decode measured no faster than simplejpeg's full decode (a DINO image's 10 crops
# cover ~88 % on average). decode_region decodes any region: it also saves its caller a copy.

# Per EXIF orientation, for the oriented y and x axes: (stored axis, whether it runs reversed).
_ORIENTED_AXES = {
    1: ((0, False), (1, False)),
    2: ((0, False), (1, True)),
    3: ((0, True), (1, True)),
    4: ((0, True), (1, False)),
    5: ((1, False), (0, False)),
    6: ((1, False), (0, True)),
    7: ((1, True), (0, True)),
    8: ((1, True), (0, False)),
}


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """A view of a stored image as displayed under an EXIF orientation (no pixel is copied).

    Args:
        array: an ``H x W (x C)`` image as stored.
        orientation: the EXIF orientation, 1-8 (anything else is treated as 1).

    Returns:
        The oriented view: the same pixels as ``PIL.ImageOps.exif_transpose`` gives.
    """
    if orientation == 2:
        return array[:, ::-1]
    if orientation == 3:
        return array[::-1, ::-1]
    if orientation == 4:
        return array[::-1]
    if orientation in (5, 6, 7, 8):
        swapped = array.swapaxes(0, 1)
        if orientation == 6:
            return swapped[:, ::-1]
        if orientation == 7:
            return swapped[::-1, ::-1]
        if orientation == 8:
            return swapped[::-1]
        return swapped
    return array


def image_size(data: bytes | bytearray | memoryview) -> tuple[int, int]:
    """``(height, width)`` of an image as displayed (after EXIF orientation), without decoding it.

    JPEGs are measured from their markers; other formats from Pillow's lazy header read.

    Args:
        data: the encoded image.

    Returns:
        ``(height, width)`` of the oriented image; plan crops in this frame.

    Raises:
        ImageDecodeError: the data is not an image Pillow recognises, or its header is corrupt.
    """
    if is_jpeg(data):
        return jpeg_info(data).oriented_size
    with open_pil(data) as image:
        width, height = image.size
        if pil_orientation(image) >= 5:
            width, height = height, width
    if width == 0 or height == 0:
        raise ImageDecodeError(f"the image is {width} x {height} pixels (zero pixels)")
    return height, width


def decode_image(
    data: bytes | bytearray | memoryview, *, scale: int = 1, max_pixels: int | None = None
) -> np.ndarray:
    """Decode a whole image to RGB, oriented, optionally at a reduced DCT scale.

    Args:
        data: the encoded image.
        scale: the denominator 1, 2, 4 or 8; JPEGs are decoded at ``1/scale`` (``ceil(h / scale)
            x ceil(w / scale)``), other formats always at full size.
        max_pixels: refuse images with more (stored) pixels than this; ``None`` for no limit.

    Returns:
        A ``H x W x 3`` uint8 array (a possibly non-contiguous view when the image is rotated).

    Raises:
        ImageDecodeError: the data is not an image, is truncated or corrupt, or has too many
            pixels.
        ConfigError: ``scale`` is not one of 1, 2, 4, 8.
    """
    _check_scale(scale)
    return _decode(data, lambda height, width: scale, max_pixels)[0]


def decode_region(
    data: bytes | bytearray | memoryview,
    box: CropBox,
    *,
    scale: int = 1,
    max_pixels: int | None = None,
) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode only the pixels of an image that cover a box, to RGB, oriented.

    The result equals ``decode_image(data, scale=scale)[y : y + h, x : x + w]`` exactly, for the
    ``(y, x)`` it returns; a JPEG is decoded only that far (see the module notes), other images
    are decoded whole and sliced.

    Args:
        data: the encoded image.
        box: ``(top, left, h, w)`` in pixels of the oriented image at full size (see
            :func:`image_size`); fractional values are allowed. It must lie inside the image and
            have a positive size.
        scale: the DCT scale denominator 1, 2, 4 or 8 (as in :func:`decode_image`); at ``1/scale``
            the box covers decoded rows ``floor(top / scale)`` to ``ceil((top + h) / scale)``
            (and likewise columns), counted in the oriented decoded image.
        max_pixels: refuse images with more (stored) pixels than this, whatever the box;
            ``None`` for no limit.

    Returns:
        ``(pixels, (y, x))``: a ``h' x w' x 3`` uint8 array of the decoded pixels covering the box
        (C-contiguous when the image needs no rotation; otherwise a view of the region, like
        :func:`decode_image`), and the row and column of its first pixel in the whole decoded,
        oriented image. With ``scale=1`` and a whole-pixel box, ``pixels`` is exactly the box
        and ``(y, x) == (top, left)``.

    Raises:
        ImageDecodeError: the data is not an image, is truncated or corrupt, or has too many
            pixels.
        ConfigError: ``box`` is empty or outside the image, or ``scale`` is not 1, 2, 4 or 8.
    """
    _check_scale(scale)

    def pick(height: int, width: int) -> int:
        _check_boxes([box], height, width)
        return scale

    image, y_map, x_map, window = _decode(data, pick, max_pixels, boxes=[box])
    y0, y1, x0, x1 = _box_pixels(box, y_map, x_map, window[2:])
    return image[y0 - window[0] : y1 - window[0], x0 - window[1] : x1 - window[1]], (y0, x0)


def decode_crops(
    data: bytes | bytearray | memoryview,
    crops: Sequence[CropBox],
    out_sizes: int | Sequence[int | Sequence[int]],
    *,
    flip: Sequence[bool] | np.ndarray | None = None,
    interpolation: str = "bicubic",
    scale: int | None = None,
    max_pixels: int | None = None,
) -> list[np.ndarray]:
    """Decode an image once and return each planned crop resized to its output size.

    Args:
        data: the encoded image (JPEG fast path; anything Pillow reads otherwise).
        crops: boxes ``(top, left, h, w)`` in the oriented frame (see :func:`image_size`), e.g.
            from :func:`~shardstream.vision.crops.random_resized_crop_params`; each must lie
            inside the image and have a positive size.
        out_sizes: the output size of each crop (an int or ``(h, w)`` each), or one int for all.
            Crops smaller than their output are upscaled.
        flip: per crop, whether to mirror the output left to right; ``None`` flips none.
        interpolation: ``"bicubic"`` (default), ``"bilinear"``, ``"nearest"`` or ``"lanczos"``.
        scale: force the DCT scale denominator (1, 2, 4 or 8); ``None`` picks the smallest
            decode that gives every crop at least its output resolution.
        max_pixels: refuse images with more (stored) pixels than this; ``None`` for no limit.

    Returns:
        One C-contiguous, writable ``out_h x out_w x 3`` uint8 array per crop, in order.

    Raises:
        ImageDecodeError: the data is not an image, is truncated or corrupt, or has too many
            pixels (the message names the fault; the caller adds the sample key).
        ConfigError: a crop lies outside the image or is empty, the sizes or flips do not match
            the crops, an output size is past :data:`~shardstream.vision.resize.MAX_SIDE` (or
            ``MAX_OUT_BYTES``), or ``interpolation`` / ``scale`` is not a known value.
    """
    sizes = expand_sizes(out_sizes, len(crops))
    for out_h, out_w in sizes:  # before any pixel is allocated for them
        if max(out_h, out_w) > MAX_SIDE or out_h * out_w * 3 > MAX_OUT_BYTES:
            raise ConfigError(
                f"output size {out_h} x {out_w} is too large: sides must be at most {MAX_SIDE} "
                f"and an RGB output at most {MAX_OUT_BYTES} bytes"
            )
    flips = _check_flips(flip, len(crops))
    try:
        resample = INTERPOLATIONS[interpolation]
    except (KeyError, TypeError):
        raise ConfigError(
            f"interpolation must be one of {sorted(INTERPOLATIONS)}, got {interpolation!r}"
        ) from None
    if scale is not None:
        _check_scale(scale)

    def pick(height: int, width: int) -> int:
        _check_boxes(crops, height, width)
        return scale if scale is not None else choose_scale(height, width, crops, sizes)

    image, y_map, x_map, window = _decode(
        data, pick, max_pixels, boxes=crops, max_area=_UNION_MAX_AREA
    )
    return [
        _resized_crop(image, box, y_map, x_map, window, size, resample, flipped)
        for box, size, flipped in zip(crops, sizes, flips)
    ]


def _check_scale(scale: int) -> None:
    if isinstance(scale, bool) or scale not in SCALE_DENOMINATORS:
        raise ConfigError(f"scale must be one of {sorted(SCALE_DENOMINATORS)}, got {scale!r}")


def _check_flips(flip: Sequence[bool] | np.ndarray | None, count: int) -> list[bool]:
    if flip is None:
        return [False] * count
    flips = [bool(f) for f in flip]
    if len(flips) != count:
        raise ConfigError(f"flip has {len(flips)} entries for {count} crops")
    return flips


def _check_boxes(crops: Sequence[CropBox], height: int, width: int) -> None:
    """Every box is inside the ``height x width`` image and not empty (to 1e-6 pixel)."""
    eps = 1e-6
    for i, box in enumerate(crops):
        try:
            top, left, h, w = (float(v) for v in box)
        except (TypeError, ValueError):
            raise ConfigError(f"crops[{i}] must be (top, left, h, w), got {box!r}") from None
        if not (
            h > 0
            and w > 0
            and top >= -eps
            and left >= -eps
            and top + h <= height + eps
            and left + w <= width + eps
        ):
            raise ConfigError(
                f"crops[{i}] = {box!r} is empty or outside the {height} x {width} image"
            )


def _decode(
    data,
    pick,
    max_pixels: int | None,
    boxes: Sequence[CropBox] | None = None,
    region: bool = True,
    max_area: float = 1.0,
) -> tuple[np.ndarray, tuple, tuple, tuple[int, int, int, int]]:
    """The oriented RGB image (or the part of it ``boxes`` read), how source coordinates map into
    it, and where it lies in the whole decoded image.

    Returns ``(image, y_map, x_map, window)``. Per oriented axis, ``(scale, offset)``: oriented
    source coordinate ``c`` lies at ``c * scale + offset`` in the whole decoded, oriented image.
    ``window = (y, x, rows, cols)``: ``image`` starts at row ``y``, column ``x`` of that whole
    decoded image, which is ``rows x cols``; for a full decode ``image`` is all of it.

    ``pick(height, width)`` receives the oriented size and returns the scale denominator.
    ``boxes`` (oriented source pixels, already checked by ``pick``): decode only the pixels they
    cover, where the region decoder can (``region=False`` forces the full decode, as where the
    extension is missing), and only when the region is at most ``max_area`` of the image.
    Images under 8 x 8 pixels are always decoded whole: there simplejpeg
    may pick another libjpeg scale of the same output size (e.g. 3/8 for 1/4), whose pixels the
    region decoder (always exactly ``1/denominator``) would not reproduce.
    """
    if not is_jpeg(data):
        stored, orientation = decode_pil(data, None, max_pixels, pick=pick)
        image = orient(stored, orientation)
        return image, (1.0, 0.0), (1.0, 0.0), (0, 0, *image.shape[:2])
    info = jpeg_info(data)
    check_pixels(info.width, info.height, max_pixels)
    denominator = pick(*info.oriented_size)
    rows, cols = -(-info.height // denominator), -(-info.width // denominator)
    y_map, x_map = _oriented_maps(info, rows, cols)
    full = (rows, cols) if not info.transposed else (cols, rows)
    if region and boxes and _jpegregion is None:
        warn_slow_path("_jpegregion")
    if (
        region
        and boxes
        and _jpegregion is not None
        and info.colorspace not in ("cmyk", "ycck")
        and (info.height >= 8 or info.width >= 8)
        and _ends_with_eoi(data)
    ):
        y0, y1, x0, x1 = _union_pixels(boxes, y_map, x_map, full)
        if (y1 - y0) * (x1 - x0) <= max_area * full[0] * full[1] and (y1 - y0, x1 - x0) != full:
            window = _decode_window(data, info, denominator, (rows, cols), (y0, y1, x0, x1))
            if window is not None:
                return window, y_map, x_map, (y0, x0, *full)
    stored = _decode_full_jpeg(data, info, denominator, max_pixels)
    if stored.shape[:2] != (rows, cols):  # Pillow's draft scale: map by the actual size
        y_map, x_map = _oriented_maps(info, *stored.shape[:2])
    image = orient(stored, info.orientation)
    return image, y_map, x_map, (0, 0, *image.shape[:2])


def _decode_full_jpeg(data, info, denominator: int, max_pixels: int | None) -> np.ndarray:
    """The whole JPEG in the stored frame at ``1/denominator``: simplejpeg, else Pillow."""
    if _simplejpeg is None or info.colorspace in ("cmyk", "ycck"):
        return decode_pil(data, denominator, max_pixels)[0]
    try:
        return _simplejpeg.decode_jpeg(
            data,
            colorspace="RGB",
            min_height=-(-info.height // denominator),
            min_width=-(-info.width // denominator),
        )
    except ValueError as error:  # simplejpeg refuses: try Pillow, report both
        try:
            return decode_pil(data, denominator, max_pixels)[0]
        except ImageDecodeError as pil_error:
            raise ImageDecodeError(
                f"corrupt JPEG: libjpeg-turbo: {error}; Pillow: {pil_error.problem}"
            ) from error


def _oriented_maps(info, rows: int, cols: int) -> tuple[tuple, tuple]:
    """Per oriented axis ``(scale, offset)`` into the oriented ``rows x cols`` (stored) decode."""
    fy, fx = _scale_factors(info.height, info.width, rows, cols)
    # On a reduced decode the last row / column also covers pixels past the image's edge, so
    # an axis that the orientation reverses starts (decoded - source * f) pixels in.
    oy, ox = rows - info.height * fy, cols - info.width * fx
    y_axis, x_axis = _ORIENTED_AXES.get(info.orientation, _ORIENTED_AXES[1])
    axes = ((fy, oy), (fx, ox))
    y_map = (axes[y_axis[0]][0], axes[y_axis[0]][1] if y_axis[1] else 0.0)
    x_map = (axes[x_axis[0]][0], axes[x_axis[0]][1] if x_axis[1] else 0.0)
    return y_map, x_map


def _ends_with_eoi(data) -> bool:
    """Whether the JPEG ends with the EOI marker ``FF D9`` (zero padding after it allowed).

    A region decode stops after the box's last row, so a file cut short below the box would
    decode; without EOI the full decode runs instead and reports the truncation.
    """
    tail = bytes(data[-2:])
    if tail == b"\xff\xd9":
        return True
    if tail[-1:] != b"\x00":
        return False
    return bytes(data[-64:]).rstrip(b"\x00").endswith(b"\xff\xd9")


def _box_pixels(
    box: CropBox, y_map: tuple, x_map: tuple, full: tuple[int, int]
) -> tuple[int, int, int, int]:
    """The decoded pixels ``[y0, y1) x [x0, x1)`` (whole decoded, oriented image) a box reads:
    the same rounding as :func:`_resized_crop`."""
    top, left, h, w = (float(v) for v in box)
    rows, cols = full
    (fy, oy), (fx, ox) = y_map, x_map
    y0, x0 = _floor(max(top * fy + oy, 0.0)), _floor(max(left * fx + ox, 0.0))
    y1 = max(_ceil(min((top + h) * fy + oy, rows)), y0 + 1)
    x1 = max(_ceil(min((left + w) * fx + ox, cols)), x0 + 1)
    return y0, y1, x0, x1


def _union_pixels(
    boxes: Sequence[CropBox], y_map: tuple, x_map: tuple, full: tuple[int, int]
) -> tuple[int, int, int, int]:
    """The bounding box ``(y0, y1, x0, x1)`` of the decoded pixels all ``boxes`` read."""
    spans = [_box_pixels(box, y_map, x_map, full) for box in boxes]
    return (
        max(0, min(s[0] for s in spans)),
        min(full[0], max(s[1] for s in spans)),
        max(0, min(s[2] for s in spans)),
        min(full[1], max(s[3] for s in spans)),
    )


def _decode_window(
    data, info, denominator: int, stored_size: tuple[int, int], window: tuple[int, int, int, int]
) -> np.ndarray | None:
    """The oriented pixels ``window = (y0, y1, x0, x1)`` of the decoded, oriented image, decoded
    by the region decoder; ``None`` when libjpeg refuses (the caller then decodes in full)."""
    y0, y1, x0, x1 = window
    spans = {}  # stored axis -> (start, stop) in the stored decoded image
    (y_axis, y_rev), (x_axis, x_rev) = _ORIENTED_AXES.get(info.orientation, _ORIENTED_AXES[1])
    for axis, reverse, (start, stop) in ((y_axis, y_rev, (y0, y1)), (x_axis, x_rev, (x0, x1))):
        size = stored_size[axis]
        spans[axis] = (size - stop, size - start) if reverse else (start, stop)
    (top, bottom), (left, right) = spans[0], spans[1]
    stored = np.empty((bottom - top, right - left, 3), np.uint8)
    crop_columns = right - left < _CROP_COLUMNS_BELOW * stored_size[1]
    try:
        _jpegregion.decode_region(
            data,
            stored,
            top,
            left,
            bottom - top,
            right - left,
            denominator,
            crop_columns=crop_columns,
        )
    except (ValueError, NotImplementedError):  # corrupt, or a layout it declines
        return None
    return orient(stored, info.orientation)


def _scale_factors(height: int, width: int, out_h: int, out_w: int) -> tuple[float, float]:
    """Decoded pixels per source pixel: ``n / 8`` for libjpeg's scale ``n/8``, else the ratio."""
    for numerator in (8, 4, 2, 1, *range(3, 17)):
        if -(-height * numerator // 8) == out_h and -(-width * numerator // 8) == out_w:
            return numerator / 8, numerator / 8
    return out_h / height, out_w / width


def _resized_crop(
    image: np.ndarray,
    box: CropBox,
    y_map: tuple[float, float],
    x_map: tuple[float, float],
    window: tuple[int, int, int, int],
    size: tuple[int, int],
    resample: int,
    flipped: bool,
) -> np.ndarray:
    """Cut ``box`` (source pixels) out of ``image`` (mapped by ``(scale, offset)`` into the whole
    decoded image, of which ``image`` is the part at ``window``) and resize it."""
    top, left, h, w = (float(v) for v in box)
    wy, wx, rows, cols = window
    (fy, oy), (fx, ox) = y_map, x_map
    y0, x0 = max(top * fy + oy, 0.0), max(left * fx + ox, 0.0)
    y1, x1 = min((top + h) * fy + oy, rows), min((left + w) * fx + ox, cols)
    iy0, ix0 = _floor(y0), _floor(x0)
    iy1, ix1 = max(_ceil(y1), iy0 + 1), max(_ceil(x1), ix0 + 1)
    out_h, out_w = size
    integral = (iy0, ix0, iy1, ix1) == (y0, x0, y1, x1)
    rel = (x0 - ix0, y0 - iy0, max(x1 - ix0, x0 - ix0 + 1e-3), max(y1 - iy0, y0 - iy0 + 1e-3))
    if resample in _KERNEL_FILTERS and image.ndim == 3:  # Pillow's arithmetic, without Pillow
        out = np.empty((out_h, out_w, image.shape[2]), np.uint8)
        resize_crops(
            image,
            [(iy0 - wy, ix0 - wx, iy1 - iy0, ix1 - ix0)],
            [flipped],
            [out],
            interpolation=_KERNEL_FILTERS[resample],
            spans=[None if integral else rel],
        )
        return out
    region = Image.fromarray(np.ascontiguousarray(image[iy0 - wy : iy1 - wy, ix0 - wx : ix1 - wx]))
    if integral:
        resized = region.resize((out_w, out_h), resample)
    else:
        resized = region.resize((out_w, out_h), resample, box=rel)
    if flipped:
        resized = resized.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.array(resized)


def _floor(value: float) -> int:
    nearest = round(value)
    return int(nearest) if abs(value - nearest) < 1e-6 else math.floor(value)


def _ceil(value: float) -> int:
    nearest = round(value)
    return int(nearest) if abs(value - nearest) < 1e-6 else math.ceil(value)
