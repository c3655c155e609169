"""Read a JPEG's size, colour layout and EXIF orientation from its markers, without decoding it.

The walk reads the segments before the first scan (SOS): the frame header (SOF) gives the size,
precision and components, an Adobe APP14 segment tells RGB from YCbCr and CMYK from YCCK, and the
EXIF block (APP1) gives the orientation (tag 0x0112, either byte order). Only the bytes of those
few segments are touched, so this costs microseconds whatever the image size.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import ImageDecodeError

__all__ = ["JpegInfo", "is_jpeg", "jpeg_info"]

_SOI = b"\xff\xd8"
# Frame markers (SOF0-SOF15 less DHT C4, JPG C8 and DAC CC) and the coding process each names.
_SOF_PROCESS = {
    0xC0: "baseline",
    0xC1: "extended",
    0xC2: "progressive",
    0xC3: "lossless",
    0xC5: "differential-sequential",
    0xC6: "differential-progressive",
    0xC7: "differential-lossless",
    0xC9: "extended-arithmetic",
    0xCA: "progressive-arithmetic",
    0xCB: "lossless-arithmetic",
    0xCD: "differential-sequential-arithmetic",
    0xCE: "differential-progressive-arithmetic",
    0xCF: "differential-lossless-arithmetic",
}
_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])  # TEM and RST0-7 carry no length
_SOS, _EOI, _APP1, _APP14 = 0xDA, 0xD9, 0xE1, 0xEE
_ORIENTATION_TAG = 0x0112
_TIFF_SHORT = 3


@dataclass(frozen=True, kw_only=True)
class JpegInfo:
    """What a JPEG's header says about its image.

    Attributes:
        width: stored width in pixels (before the EXIF orientation is applied).
        height: stored height in pixels.
        components: colour components in the frame (1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK).
        colorspace: ``"gray"``, ``"ycbcr"``, ``"rgb"``, ``"cmyk"`` or ``"ycck"``.
        subsampling: chroma subsampling of a 3-component image (``"444"``, ``"422"``,
            ``"420"``, ``"440"``, ``"411"``, or ``"other"``); ``"none"`` for other images.
        process: the coding process of the frame marker (``"baseline"``, ``"progressive"``, ...).
        precision: bits per sample (8 for nearly every JPEG).
        orientation: the EXIF orientation, 1-8 (1 when absent, malformed or out of range).
    """

    width: int
    height: int
    components: int
    colorspace: str
    subsampling: str
    process: str
    precision: int
    orientation: int

    @property
    def transposed(self) -> bool:
        """Whether the orientation swaps width and height (orientations 5-8)."""
        return self.orientation >= 5

    @property
    def oriented_size(self) -> tuple[int, int]:
        """``(height, width)`` of the image as displayed, after the EXIF orientation."""
        if self.transposed:
            return self.width, self.height
        return self.height, self.width


def is_jpeg(data: bytes | bytearray | memoryview) -> bool:
    """Whether ``data`` starts like a JPEG (the SOI marker followed by another marker).

    Args:
        data: the file's bytes.

    Returns:
        ``True`` when the first three bytes are ``FF D8 FF``.
    """
    return bytes(data[:3]) == b"\xff\xd8\xff"


def jpeg_info(data: bytes | bytearray | memoryview) -> JpegInfo:
    """Parse a JPEG's header segments (everything before the first scan).

    Args:
        data: the JPEG file's bytes.

    Returns:
        The :class:`JpegInfo` of the image.

    Raises:
        ImageDecodeError: the data is not a JPEG, a segment runs past the end of the data (a
            truncated file), a marker is malformed, there is no frame header before the first
            scan, or the frame has zero width or height or an unsupported component count.
            Malformed EXIF data is not an error: the orientation is then 1.
    """
    global _last_parsed
    last = _last_parsed
    if last is not None and last[0] is data:  # the same immutable bytes: its header again
        return last[1]
    info = _parse(data)
    if type(data) is bytes:
        _last_parsed = (data, info)
    return info


#: ``(data, info)`` of the last ``bytes`` parsed: a sample's header is read twice (its size to
#: plan the crops, then to decode it); the reference keeps ``data`` alive, so ``is`` is safe
_last_parsed: tuple[bytes, JpegInfo] | None = None


def _parse(data: bytes | bytearray | memoryview) -> JpegInfo:
    buf = memoryview(data).cast("B") if not isinstance(data, bytes) else data
    size = len(buf)
    if size < 2 or bytes(buf[:2]) != _SOI:
        raise ImageDecodeError("not a JPEG: the data does not start with the SOI marker FF D8")
    pos = 2
    frame: tuple[int, int, int, int, list[tuple[int, int, int]], int] | None = None
    adobe_transform: int | None = None
    orientation = 1
    while True:
        if pos >= size:
            raise ImageDecodeError(
                f"truncated JPEG: the data ends after {size} bytes, before the first scan"
            )
        if buf[pos] != 0xFF:
            raise ImageDecodeError(
                f"corrupt JPEG: expected a marker at byte {pos}, found 0x{buf[pos]:02X}"
            )
        while pos < size and buf[pos] == 0xFF:  # any number of fill bytes
            pos += 1
        if pos >= size:
            raise ImageDecodeError(f"truncated JPEG: the data ends inside a marker at byte {pos}")
        marker = buf[pos]
        pos += 1
        if marker in _STANDALONE:
            continue
        if marker in (0x00, 0xD8, _EOI):
            raise ImageDecodeError(
                f"corrupt JPEG: unexpected marker 0xFF{marker:02X} at byte {pos - 2} "
                "before the first scan"
            )
        if pos + 2 > size:
            raise ImageDecodeError(
                f"truncated JPEG: the data ends inside the length of marker 0xFF{marker:02X}"
            )
        length = (buf[pos] << 8) | buf[pos + 1]
        if length < 2:
            raise ImageDecodeError(
                f"corrupt JPEG: marker 0xFF{marker:02X} at byte {pos - 2} has length {length}"
            )
        end = pos + length
        if end > size:
            raise ImageDecodeError(
                f"truncated JPEG: segment 0xFF{marker:02X} at byte {pos - 2} needs {length} bytes, "
                f"only {size - pos} remain"
            )
        body = bytes(buf[pos + 2 : end])
        if marker == _SOS:
            break
        if marker in _SOF_PROCESS:
            if frame is not None:
                raise ImageDecodeError("corrupt JPEG: more than one frame header (SOF)")
            frame = _parse_frame(body, marker)
        elif marker == _APP1 and body.startswith(b"Exif\x00\x00"):
            orientation = _exif_orientation(body[6:])
        elif marker == _APP14 and body.startswith(b"Adobe") and len(body) >= 12:
            adobe_transform = body[11]
        pos = end
    if frame is None:
        raise ImageDecodeError("corrupt JPEG: the first scan (SOS) comes before any frame header")
    precision, height, width, marker, components, _ = frame
    count = len(components)
    return JpegInfo(
        width=width,
        height=height,
        components=count,
        colorspace=_colorspace(components, adobe_transform),
        subsampling=_subsampling(components),
        process=_SOF_PROCESS[marker],
        precision=precision,
        orientation=orientation,
    )


def _parse_frame(body: bytes, marker: int) -> tuple[int, int, int, int, list, int]:
    """Precision, height, width, marker and ``(id, h, v)`` per component of an SOF segment."""
    if len(body) < 6:
        raise ImageDecodeError(f"corrupt JPEG: frame header of {len(body) + 2} bytes is too short")
    precision, height, width, count = struct.unpack(">BHHB", body[:6])
    if len(body) < 6 + 3 * count:
        raise ImageDecodeError(
            f"corrupt JPEG: frame header lists {count} components but holds only "
            f"{(len(body) - 6) // 3}"
        )
    if count not in (1, 3, 4):
        raise ImageDecodeError(f"unsupported JPEG: {count} colour components (expected 1, 3 or 4)")
    if width == 0 or height == 0:
        raise ImageDecodeError(
            f"corrupt JPEG: the frame is {width} x {height} pixels (zero pixels)"
        )
    components = []
    for i in range(count):
        ident, sampling = body[6 + 3 * i], body[7 + 3 * i]
        components.append((ident, sampling >> 4, sampling & 0x0F))
    return precision, height, width, marker, components, count


def _colorspace(components: list[tuple[int, int, int]], adobe_transform: int | None) -> str:
    """The colour space as libjpeg infers it from the component count, Adobe segment and ids."""
    count = len(components)
    if count == 1:
        return "gray"
    if count == 3:
        if adobe_transform == 0:
            return "rgb"
        if adobe_transform is None and [c[0] for c in components] == [ord("R"), ord("G"), ord("B")]:
            return "rgb"
        return "ycbcr"
    return "ycck" if adobe_transform == 2 else "cmyk"


def _subsampling(components: list[tuple[int, int, int]]) -> str:
    """The chroma subsampling name of a 3-component frame (``"none"`` for other frames)."""
    if len(components) != 3:
        return "none"
    (_, h0, v0), (_, h1, v1), (_, h2, v2) = components
    if (h1, v1) != (h2, v2) or h1 == 0 or v1 == 0 or h0 % h1 or v0 % v1:
        return "other"
    return {(1, 1): "444", (2, 1): "422", (2, 2): "420", (1, 2): "440", (4, 1): "411"}.get(
        (h0 // h1, v0 // v1), "other"
    )


def _exif_orientation(tiff: bytes) -> int:
    """The orientation tag of IFD0 of an EXIF (TIFF) block; 1 when missing or malformed."""
    if len(tiff) < 8:
        return 1
    if tiff[:4] == b"II*\x00":
        order = "<"
    elif tiff[:4] == b"MM\x00*":
        order = ">"
    else:
        return 1
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        return 1
    (entries,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
    for i in range(entries):
        at = ifd + 2 + 12 * i
        if at + 12 > len(tiff):
            return 1
        tag, kind, count = struct.unpack(order + "HHI", tiff[at : at + 8])
        if tag == _ORIENTATION_TAG:
            if kind != _TIFF_SHORT or count != 1:
                return 1
            (value,) = struct.unpack(order + "H", tiff[at + 8 : at + 10])
            return value if 1 <= value <= 8 else 1
    return 1
