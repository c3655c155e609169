"""Image checks and transcoding for the conversion engine: cheap validation, downscale, re-encode.

Without transcoding, :func:`check_image` decides whether bytes are a usable image *without
decoding pixels* (decoding would cost ~1 ms per image, ten times what packing and md5 cost):

- empty data is refused;
- a JPEG (``FF D8 FF``) has its segment headers walked up to the first scan: every segment must
  fit in the file, a frame header (SOF) with a non-zero width must come before the scan, and an
  end-of-image marker must follow the scan header. This catches truncated files, garbage
  headers and files cut before their image data (about 2 us per image). Damage inside the
  entropy-coded data is *not* detected, as it would need a full decode. A JPEG far larger than
  its frame header allows is refused too (a valid header followed by junk, e.g. a gigabyte of
  zeros): the data after the headers may take at most :data:`JPEG_MAX_BYTES_PER_SAMPLE` bytes
  per sample (width x height x components, each side rounded up to 16) plus
  :data:`JPEG_SLACK_BYTES` for trailers (maker notes, previews or a short video appended after
  the image, as phones write). Huffman coding spends at most 16 + 11 bits on a coefficient, ~3.4
  bytes per sample, and byte stuffing at most doubles that, so no real JPEG reaches the bound;
  a header whose height is 0 (set later by a DNL marker) is not held to it;
- anything else must be identified by Pillow and pass ``Image.verify()`` (for PNG, the chunk
  CRCs; for other formats, the header).

With transcoding (:func:`transcode_image`), the image is fully decoded, so damaged image data is
caught as well (libjpeg warnings count as errors when simplejpeg is installed).

A JPEG that keeps its size (``max_side`` not exceeded) and whose quantization tables are
already the standard tables of the wanted quality (8-bit, 4:2:0 YCbCr or grayscale) keeps its
DCT coefficients: re-encoding its pixels would quantize them with the same tables again, so
keeping them is what a re-encode aims at, without its generation loss (the output decodes to
exactly the source's pixels; the pixel path gives 41 dB PSNR to the source, 35 dB at worst, on
the benchmark's quality-90 photos). A baseline JPEG is written with its own scan data and
Huffman tables and without its metadata segments (APPn, COM) or any bytes after its end; every
coefficient is entropy-decoded to check it (C extension ``shardstream.write._jpegrequant``,
``verify``). A progressive one is written again as a baseline JPEG from its coefficients
(``requantize``, which can also requantize to other tables; for those the pixel path is kept, as
it was as fast on the benchmark's photos). On the benchmark machine this costs ~0.8 ms per
~400 x 350 quality-90 photo against ~1.7 ms for decoding and encoding the pixels (one core).
Other JPEGs take the pixel path, as every JPEG does where the extension is not built: the
re-encoded bytes then differ (as they do with and without simplejpeg), so the machines of a Ray
cluster need the same build for the engines' outputs to be equal byte for byte.

When a JPEG is downscaled, it is decoded at the smallest DCT scale (1/2, 1/4, 1/8: libjpeg-turbo's
scaled IDCT) whose size is still at least :data:`REDUCING_GAP` times the target, and Pillow's
Lanczos filter makes the rest of the reduction (Pillow's ``thumbnail`` uses the same gap).
Against decoding at full size and Lanczos, on scikit-image's colour photos reduced to 1/4 and 1/8
of their size, this gives 30.5-47.6 dB PSNR (the lowest on the finely detailed motorcycle photo);
decoding straight at the target's scale (a gap of 1) gave only 25.5-42.1 dB
(``benchmarks/convert_engines.py``, ``draft_psnr``). A source less than twice the target is
decoded at full size.

Transcoded images are baseline JPEGs with 4:2:0 chroma subsampling (grayscale stays grayscale,
everything else becomes RGB; alpha is dropped). Pixels are kept as stored: the EXIF orientation is
not applied, as decoders in a training pipeline ignore it too, and metadata (EXIF, ICC) is not
copied.
"""

from __future__ import annotations

import functools
import io
import re
import struct
from collections.abc import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

try:  # libjpeg-turbo with DCT-domain downscaling and strict error checks, ~15 % faster than Pillow
    import simplejpeg
except ImportError:  # pragma: no cover - simplejpeg is optional
    simplejpeg = None
_requantize: Callable[..., bytes | None] | None
_verify_coefficients: Callable[[bytes], tuple[int, int]] | None
try:  # the C extension built by setup.py against the system libjpeg-turbo (optional)
    from ._jpegrequant import requantize as _requantize
    from ._jpegrequant import verify as _verify_coefficients
except ImportError:  # pragma: no cover - not built
    _requantize = _verify_coefficients = None

__all__ = [
    "DEFAULT_QUALITY",
    "REDUCING_GAP",
    "JPEG_MAX_BYTES_PER_SAMPLE",
    "JPEG_SLACK_BYTES",
    "ImageFault",
    "check_image",
    "check_image_in",
    "target_size",
    "transcode_image",
]

#: JPEG quality used when an image must be re-encoded (it is larger than ``max_side``) but no
#: quality was given.
DEFAULT_QUALITY = 90
#: A downscaled JPEG is decoded at the smallest DCT scale at least this many times the target.
REDUCING_GAP = 2
#: Bytes a JPEG's data (after its headers) may take per sample (see the module docstring).
JPEG_MAX_BYTES_PER_SAMPLE = 8
#: Bytes a JPEG may hold beyond that bound (trailers after the image).
JPEG_SLACK_BYTES = 4 << 20

_JPEG_MAGIC = b"\xff\xd8\xff"
_EOI = b"\xff\xd9"
# Start-of-frame markers: C0-CF except DHT (C4), JPG (C8) and DAC (CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_SOS = 0xDA
_STANDALONE = frozenset([0x01, 0xD8, *range(0xD0, 0xD8)])
_unpack_size = struct.Struct(">HH").unpack_from
_SOI = b"\xff\xd8"
# APP0 as libjpeg writes it: JFIF 1.01, no units, 1:1 density, no thumbnail
_JFIF = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
# The standard tables of the JPEG specification (Annex K), in natural order
_STD_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
_STD_CHROMA = (
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    *(99,) * 32,
)  # fmt: skip
# the natural index of each zigzag position
_ZIGZAG = (
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
)  # fmt: skip
_BYTES_LITERAL = re.compile(r"b'(?:[^'\\]|\\.)*'" + r'|b"(?:[^"\\]|\\.)*"')


class ImageFault(Exception):
    """Internal signal that image bytes are unusable; the engine turns it into a report entry.

    Not part of the error hierarchy on purpose: it never leaves the conversion engine (callers
    see :class:`~shardstream.errors.BadSourceError`).
    """


def check_image(data: bytes) -> None:
    """Check cheaply that ``data`` is an image file (see the module docstring for what is checked).

    Args:
        data: the encoded image.

    Raises:
        ImageFault: empty data, not an image, or a corrupt or truncated header.
    """
    if not data:
        raise ImageFault("empty file (0 bytes)")
    if data.startswith(_JPEG_MAGIC):
        _check_jpeg(data)
        return
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except UnidentifiedImageError:
        raise ImageFault(_not_an_image(data)) from None
    except Exception as e:  # Pillow raises many kinds (SyntaxError, OSError, struct.error, ...)
        raise ImageFault(f"corrupt image: {_describe(e)}") from None


def target_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """The size after downscaling so that the longer side is at most ``max_side`` (aspect kept).

    Images already small enough keep their size; neither side becomes smaller than 1.

    Args:
        width: the image width.
        height: the image height.
        max_side: the largest allowed side; ``None`` keeps the size.

    Returns:
        ``(width, height)`` after downscaling.
    """
    longer = max(width, height)
    if max_side is None or longer <= max_side:
        return width, height
    scale = max_side / longer
    if width >= height:
        return max_side, max(1, round(height * scale))
    return max(1, round(width * scale)), max_side


def transcode_image(
    data: bytes, *, max_side: int | None = None, quality: int | None = None
) -> bytes:
    """Downscale and/or re-encode an image as JPEG; return ``data`` itself when nothing changes.

    The image is re-encoded when it is larger than ``max_side`` (at ``quality``, or
    :data:`DEFAULT_QUALITY` when ``quality`` is ``None``) or when ``quality`` is given. An image
    that fits and has no ``quality`` to meet is only checked (:func:`check_image`) and kept
    byte for byte, so transcoding never adds a generation of loss for nothing.

    Args:
        data: the encoded image (any format Pillow reads).
        max_side: the largest allowed side in pixels, or ``None``.
        quality: the JPEG quality 1-100, or ``None``.

    Returns:
        The JPEG bytes, or ``data`` unchanged.

    Raises:
        ImageFault: the data is empty, not an image, or cannot be decoded.
    """
    if not data:
        raise ImageFault("empty file (0 bytes)")
    if simplejpeg is not None and data.startswith(_JPEG_MAGIC):
        result = _transcode_simplejpeg(data, max_side, quality)
        if result is not None:
            return result
    return _transcode_pillow(data, max_side, quality)


# ---------------------------------------------------------------------------------------------


def check_image_in(buffer: bytes | bytearray, start: int, stop: int) -> None:
    """:func:`check_image` of ``buffer[start:stop]``, without copying it when it is a JPEG.

    Raises:
        ImageFault: as :func:`check_image` (byte positions counted from ``start``).
    """
    if stop > start and buffer.startswith(_JPEG_MAGIC, start, stop):
        _check_jpeg(buffer, start, stop)
        return
    check_image(bytes(buffer[start:stop]))


def _check_jpeg(data: bytes | bytearray, start: int = 0, stop: int | None = None) -> None:
    """Walk the marker segments of ``data[start:stop]`` up to the first scan; raise ImageFault
    on anything broken (positions in messages are counted from ``start``)."""
    stop = len(data) if stop is None else stop
    size = stop - start
    position = start + 2
    frame = False
    samples = 0  # width x height x components of the frame, sides rounded up to 16
    while True:
        if position + 1 >= stop:
            raise ImageFault("truncated JPEG: the file ends inside its headers, before any scan")
        if data[position] != 0xFF:
            raise ImageFault(
                f"corrupt JPEG: expected a marker at byte {position - start}, found "
                f"0x{data[position]:02x}"
            )
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker in _STANDALONE:
            position += 2
            continue
        if marker == 0xD9:
            raise ImageFault("corrupt JPEG: end-of-image marker before any image data")
        if position + 4 > stop:
            raise ImageFault("truncated JPEG: the file ends inside a segment header")
        length = (data[position + 2] << 8) | data[position + 3]
        end = position + 2 + length
        if length < 2 or end > stop:
            raise ImageFault(
                f"truncated JPEG: segment 0xFF{marker:02X} at byte {position - start} runs past "
                f"the end of the file ({size} bytes)"
                if length >= 2
                else f"corrupt JPEG: segment 0xFF{marker:02X} at byte {position - start} has "
                f"length {length}"
            )
        if marker in _SOF_MARKERS:
            if length < 8:
                raise ImageFault(
                    f"corrupt JPEG: frame header at byte {position - start} is too short"
                )
            height, width = _unpack_size(data, position + 5)
            if width == 0:
                raise ImageFault("corrupt JPEG: the frame header gives a width of 0")
            frame = True
            components = data[position + 9]
            samples = (-(-width // 16) * 16) * (-(-height // 16) * 16) * components
        elif marker == _SOS:
            if not frame:
                raise ImageFault("corrupt JPEG: image data before any frame header (SOF)")
            bound = end - start + JPEG_MAX_BYTES_PER_SAMPLE * samples + JPEG_SLACK_BYTES
            if samples and size > bound:
                raise ImageFault(
                    f"JPEG too large for its frame: {size:,} bytes, while {width}x{height} "
                    f"pixels with {components} components take at most {bound:,} (junk or "
                    "padding after the image data?)"
                )
            if data.rfind(_EOI, end, stop) < 0:
                raise ImageFault("truncated JPEG: no end-of-image marker after the image data")
            return
        position = end


def _transcode_simplejpeg(data: bytes, max_side: int | None, quality: int | None) -> bytes | None:
    """Transcode a YCbCr or grayscale JPEG with simplejpeg; ``None`` for other colour spaces."""
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError as e:
        raise ImageFault(f"corrupt JPEG: {e}") from None
    if colorspace not in ("YCbCr", "Gray"):
        return None  # CMYK, YCCK, RGB-coded: Pillow handles their colour conversion
    target = target_size(width, height, max_side)
    if target == (width, height) and quality is None:
        _check_jpeg(data)
        return data
    if target == (width, height) and _verify_coefficients is not None:
        kept = _keep_coefficients(data, quality or DEFAULT_QUALITY)
        if kept is None and _requantize is not None:  # e.g. progressive: made baseline
            try:
                kept = _requantize(data, quality or DEFAULT_QUALITY, same_tables_only=True)
            except ValueError as e:
                raise ImageFault(f"corrupt JPEG: {e}") from None
        if kept is not None:
            return kept
    gray = colorspace == "Gray"
    try:
        pixels = simplejpeg.decode_jpeg(
            data,
            colorspace="GRAY" if gray else "RGB",
            min_width=target[0] * REDUCING_GAP,
            min_height=target[1] * REDUCING_GAP,
            strict=True,
        )
    except ValueError as e:
        raise ImageFault(f"corrupt JPEG: {e}") from None
    if (pixels.shape[1], pixels.shape[0]) != target:
        image = Image.fromarray(pixels[:, :, 0] if gray else pixels)
        pixels = np.asarray(image.resize(target, Image.Resampling.LANCZOS))
    return simplejpeg.encode_jpeg(
        pixels if pixels.ndim == 3 else pixels[:, :, None],
        quality=quality or DEFAULT_QUALITY,
        colorspace="GRAY" if gray else "RGB",
        colorsubsampling="Gray" if gray else "420",
    )


def _keep_coefficients(data: bytes, quality: int) -> bytes | None:
    """``data`` without its metadata when it is a baseline 8-bit JPEG, 4:2:0 YCbCr or
    grayscale, quantized with the standard tables of ``quality``: re-encoding it would quantize
    its coefficients with the tables they already have, so they are kept (see the module
    docstring). Every coefficient is entropy-decoded to check the data, as a decode would.
    ``None`` for any other JPEG.

    Raises:
        ImageFault: corrupt data (libjpeg's warnings count as errors).
    """
    verify = _verify_coefficients
    if verify is None:
        return None
    kept = [_SOI, _JFIF]  # JFIF: 3 components are YCbCr to every decoder
    tables: dict[int, bytes] = {}
    frame: list[tuple[int, int]] = []  # (sampling, table) per component
    position, size = 2, len(data)
    while position + 4 <= size and data[position] == 0xFF:
        marker = data[position + 1]
        end = position + 2 + ((data[position + 2] << 8) | data[position + 3])
        if marker == 0xFF or end > size:
            return None  # fill bytes or a damaged header: the decoders report it
        if marker == _SOS:
            break
        if marker == 0xDB:  # DQT: 8-bit tables only (a 16-bit one is no baseline table)
            at = position + 4
            while at < end:
                if data[at] >> 4 or at + 65 > end:
                    return None
                tables[data[at] & 15] = data[at + 1 : at + 65]
                at += 65
        elif marker in _SOF_MARKERS:
            count = data[position + 9] if end >= position + 10 else 0
            if marker != 0xC0 or data[position + 4] != 8 or count not in (1, 3):
                return None  # not baseline 8-bit, or not grayscale / three components
            if end < position + 10 + 3 * count:
                return None
            frame = [(data[at + 1], data[at + 2]) for at in range(position + 10, end - 2, 3)]
        if not (0xE0 <= marker <= 0xEF or marker == 0xFE):  # APPn and COM: metadata
            kept.append(data[position:end])
        position = end
    else:
        return None
    luma, chroma = _quality_tables(quality)
    wanted = [(0x11, luma)] if len(frame) == 1 else [(0x22, luma), (0x11, chroma), (0x11, chroma)]
    if len(frame) != len(wanted) or any(
        (len(frame) > 1 and sampling != want_sampling) or tables.get(table) != want_table
        for (sampling, table), (want_sampling, want_table) in zip(frame, wanted, strict=True)
    ):
        return None
    try:
        end, colour_space = verify(data)
    except ValueError as e:
        raise ImageFault(f"corrupt JPEG: {e}") from None
    if colour_space != (1 if len(frame) == 1 else 3):  # JCS_GRAYSCALE, JCS_YCbCr
        return None
    kept.append(data[position:end])
    return b"".join(kept)


@functools.cache
def _quality_tables(quality: int) -> tuple[bytes, bytes]:
    """libjpeg's luminance and chrominance tables for ``quality`` (``jpeg_set_quality`` with
    ``force_baseline``), in the zigzag order of a DQT segment."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return tuple(  # type: ignore[return-value]
        bytes(min(255, max(1, (base[i] * scale + 50) // 100)) for i in _ZIGZAG)
        for base in (_STD_LUMA, _STD_CHROMA)
    )


def _transcode_pillow(data: bytes, max_side: int | None, quality: int | None) -> bytes:
    try:
        with Image.open(io.BytesIO(data)) as image:
            target = target_size(image.width, image.height, max_side)
            if target == image.size and quality is None:
                check_image(data)
                return data
            mode = "L" if image.mode in ("L", "I;16", "I", "1") else "RGB"
            if image.format == "JPEG":
                # decode at the smallest DCT scale that is >= REDUCING_GAP x target
                image.draft(mode, (target[0] * REDUCING_GAP, target[1] * REDUCING_GAP))
            image.load()
            converted = image if image.mode == mode else image.convert(mode)
            if converted.size != target:
                converted = converted.resize(target, Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            converted.save(buffer, format="JPEG", quality=quality or DEFAULT_QUALITY, subsampling=2)
            return buffer.getvalue()
    except UnidentifiedImageError:
        raise ImageFault(_not_an_image(data)) from None
    except ImageFault:
        raise
    except Exception as e:
        raise ImageFault(f"cannot decode the image: {_describe(e)}") from None


def _not_an_image(data: bytes) -> str:
    # the bytes themselves are never quoted: messages end up in reports, which must not hold
    # file content (the file may be anything, e.g. a secret a link pointed at)
    return f"not an image (no image format recognised in its {len(data):,} bytes)"


def _describe(error: BaseException) -> str:
    """The error's type and message, with any quoted bytes (file content) elided."""
    text = _BYTES_LITERAL.sub("b'...'", str(error))
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
