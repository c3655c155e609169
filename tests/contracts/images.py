"""JPEG and PNG bytes made with Pillow for the vision tests."""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image


def smooth_rgb(height: int, width: int) -> Image.Image:
    """A smooth test picture: a sine pattern in red, gradients in green and blue, a red disc."""
    y, x = np.mgrid[0:height, 0:width]
    red = 127 + 100 * np.sin(x / 13.0) * np.cos(y / 17.0)
    pixels = np.stack([red, x * 255 / width, y * 255 / height], -1)
    disc = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (min(height, width) / 4) ** 2
    pixels[disc] = [250, 30, 60]
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str = "JPEG", **kwargs) -> bytes:
    """``image`` saved to bytes in ``fmt``."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def exif_orientation_block(orientation: int, big_endian: bool) -> bytes:
    """A raw EXIF block (with the ``Exif`` prefix) whose IFD0 holds only the orientation tag."""
    order = ">" if big_endian else "<"
    header = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(order + "I", 8)
    entry = struct.pack(order + "HHIH", 0x0112, 3, 1, orientation) + b"\x00\x00"
    ifd = struct.pack(order + "H", 1) + entry + struct.pack(order + "I", 0)
    return b"Exif\x00\x00" + header + ifd


def photo_crops(count_per_photo: int = 4, photos_used: int = 8, size: int = 64) -> np.ndarray:
    """Crops of scikit-image's real photos, uint8 ``(N, size, size, 3)``, always the same ones.

    Skips the calling test when scikit-image's sample photos are not installed.
    """
    import pytest

    photos = pytest.importorskip("shardstream.sets.photos")
    rng = np.random.default_rng(0)
    out = []
    for photo in photos.PHOTO_CLASSES[:photos_used]:
        try:
            pixels = np.asarray(photos.load_photo(photo.files[0]))
        except ImportError:  # MissingDependencyError: scikit-image is not installed
            pytest.skip("scikit-image's sample photos are not installed")
        for _ in range(count_per_photo):
            top = rng.integers(0, pixels.shape[0] - size)
            left = rng.integers(0, pixels.shape[1] - size)
            out.append(pixels[top : top + size, left : left + size])
    return np.stack(out)
