"""Pillow's side of the decoder: images that are not baseline JPEG (PNG, WebP, CMYK, ...), with
their EXIF orientation, and the pixel limit every decode checks first.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ..errors import ImageDecodeError

__all__ = ["check_pixels", "decode_pil", "open_pil", "pil_orientation"]

#: the EXIF tag of the orientation
EXIF_ORIENTATION = 0x0112


def check_pixels(width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise ImageDecodeError(
            f"the image is {width} x {height} = {width * height} pixels, "
            f"more than the limit of {max_pixels}"
        )


def open_pil(data) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))
    except Image.UnidentifiedImageError:
        raise ImageDecodeError("not an image Pillow recognises (nor a JPEG)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageDecodeError(f"corrupt image header: {error}") from error


def pil_orientation(image: Image.Image) -> int:
    try:
        orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # malformed EXIF is not worth failing the image for
        return 1
    return orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1


def decode_pil(data, denominator: int | None, max_pixels: int | None, pick=None):
    """Decode with Pillow to a stored-frame RGB array; returns it and the EXIF orientation."""
    with open_pil(data) as image:
        width, height = image.size
        if width == 0 or height == 0:
            raise ImageDecodeError(f"the image is {width} x {height} pixels (zero pixels)")
        check_pixels(width, height, max_pixels)
        orientation = pil_orientation(image)
        if pick is not None:
            oriented = (width, height) if orientation >= 5 else (height, width)
            denominator = pick(*oriented)
            denominator = 1 if image.format != "JPEG" else denominator
        if denominator and denominator > 1 and image.format == "JPEG":
            image.draft(None, (max(1, width // denominator), max(1, height // denominator)))
        try:
            rgb = image.convert("RGB")
        except (OSError, ValueError, SyntaxError) as error:
            raise ImageDecodeError(f"corrupt or truncated image data: {error}") from error
    return np.asarray(rgb), orientation
