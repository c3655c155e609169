"""Helpers that build miniature data set sources (images, archives) for the datadings oracle tests."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["jpeg", "png", "write_tar", "write_zip"]


def jpeg(seed: int, size: tuple[int, int] = (24, 16)) -> bytes:
    """A small random RGB JPEG (``size`` is width, height)."""
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(out, "JPEG")
    return out.getvalue()


def png(array: np.ndarray, mode: str | None = None) -> bytes:
    """``array`` encoded as PNG."""
    out = io.BytesIO()
    Image.fromarray(array, mode).save(out, "PNG")
    return out.getvalue()


def write_zip(path: Path, members: Mapping[str, bytes]) -> Path:
    """A ZIP file with ``members`` (name -> bytes) in order, deflated."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def write_tar(path: Path, members: Mapping[str, bytes]) -> Path:
    """An uncompressed tar with ``members`` (name -> bytes) in order."""
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
