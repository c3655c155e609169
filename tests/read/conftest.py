"""Shared test data for the file-tree readers: a small tree of real JPEG and PNG files."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

#: Files of the test tree, relative to its root, in the natsorted order DirectoryReader uses.
TREE_FILES = [
    "b2/0.jpg",
    "b2/sub/1.png",
    "b10/0.png",
    "b10/1.jpg",
    "cat/0.png",
    "cat/2.jpg",
    "cat/10.jpg",
]
#: Labels of the tree, natsorted: their positions are the numeric labels.
TREE_LABELS = ["b2", "b10", "cat"]


def image_bytes(name: str, seed: int) -> bytes:
    """Encode a small deterministic RGB image as JPEG or PNG, chosen by ``name``'s suffix."""
    image = Image.new("RGB", (8 + seed, 6 + seed % 3), (seed * 37 % 256, seed * 11 % 256, 90))
    image.putpixel((1, 1), (255, 255 - seed, 0))
    out = io.BytesIO()
    image.save(out, format="PNG" if name.endswith(".png") else "JPEG", quality=90)
    return out.getvalue()


def tree_contents() -> dict[str, bytes]:
    """The bytes of every file of the test tree, by relative path."""
    return {name: image_bytes(name, seed) for seed, name in enumerate(TREE_FILES)}


def write_tree(root: Path, contents: dict[str, bytes]) -> Path:
    """Write ``contents`` (relative path -> bytes) below ``root``; return ``root``."""
    for name, data in contents.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture
def image_tree(tmp_path: Path) -> Path:
    """A directory ``tree/`` holding TREE_FILES, plus a stray ``notes.txt`` at its top."""
    root = write_tree(tmp_path / "tree", tree_contents())
    (root / "notes.txt").write_text("not a sample\n")
    return root
