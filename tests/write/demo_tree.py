"""Small real image trees for the conversion tests, made by the demo generator, plus bad files."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

from PIL import Image

from shardstream.sets.demo import DEMO_CLASS_NAMES, generate_demo_images

#: Images and classes of the shared demo tree.
IMAGES = 12
CLASSES = 3
#: The class names of the tree, in label order (natsorted folder names).
CLASS_NAMES = sorted(DEMO_CLASS_NAMES[:CLASSES])

_cache: dict[str, Path] = {}


def demo_tree(cache_root: Path) -> Path:
    """Generate (once per ``cache_root``) a tree of 12 demo JPEGs in 3 class folders."""
    key = os.fspath(cache_root)
    if key not in _cache:
        demo = generate_demo_images(
            cache_root / "demo-tree", num_images=IMAGES, num_classes=CLASSES, workers=1
        )
        _cache[key] = demo.root
    return _cache[key]


def copy_tree(source: Path, target: Path) -> Path:
    """Copy a demo tree without its generator marker file; return ``target``."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".*"))
    return target


def tree_files(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` by '/'-separated relative path."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


def expected_keys(root: Path) -> list[str]:
    """The keys imagefolder gives a demo tree: class folders natsorted, files by index."""
    files = tree_files(root)
    return sorted(files, key=lambda key: (CLASS_NAMES.index(key.split("/")[0]), key))


def jpeg(size: tuple[int, int], *, mode: str = "RGB", quality: int = 90, seed: int = 0) -> bytes:
    """A JPEG of the given size with some structure (a gradient), so it compresses like a photo."""
    return encode(gradient(size, mode, seed), "JPEG", quality=quality)


def png(size: tuple[int, int], *, mode: str = "RGB") -> bytes:
    """A PNG of the given size."""
    return encode(gradient(size, mode, 1), "PNG")


def gradient(size: tuple[int, int], mode: str, seed: int) -> Image.Image:
    """A deterministic test image."""
    width, height = size
    image = Image.linear_gradient("L").resize(size)
    if mode == "L":
        return image
    other = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    blue = Image.new("L", size, (seed * 40) % 256)
    rgb = Image.merge("RGB", (image, other, blue))
    return rgb.convert(mode) if mode != "RGB" else rgb


def encode(image: Image.Image, image_format: str, **options) -> bytes:
    """Encode ``image``."""
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def truncated_jpeg(data: bytes) -> bytes:
    """A JPEG cut in the middle of its image data."""
    return data[: len(data) // 2]


#: A file that starts like a JPEG but whose header is garbage.
GARBAGE_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(7, 200))
#: A text file posing as an image.
NOT_AN_IMAGE = b"this is a text file, not an image\n"
