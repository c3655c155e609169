"""Small real data sets for the dinov2 loader tests, made from the demo generator's JPEGs.

Every image is ``render_demo_image(i, num_classes=NUM_CLASSES)``, so a test can decode the
expected picture of any file independently of the code under test.
"""

from __future__ import annotations

import functools
import io
import subprocess
from pathlib import Path

import numpy as np
import torch
import torch.utils.data
from PIL import Image

from shardstream import FileWriter
from shardstream.sets.demo import render_demo_image

NUM_CLASSES = 3
THUMB = 8
"""Side of the thumbnails the loader tests turn images into."""


@functools.cache
def jpeg(index: int) -> bytes:
    """The JPEG bytes of demo image ``index``."""
    return render_demo_image(index, num_classes=NUM_CLASSES)


def decoded(index: int) -> Image.Image:
    """Demo image ``index`` decoded independently (PIL, RGB)."""
    with Image.open(io.BytesIO(jpeg(index))) as image:
        return image.convert("RGB")


def pixels(index: int) -> np.ndarray:
    """The RGB pixels of demo image ``index``."""
    return np.asarray(decoded(index))


def thumbnail(image: Image.Image) -> torch.Tensor:
    """The transform of the loader tests: a THUMB x THUMB uint8 CHW tensor."""
    small = image.resize((THUMB, THUMB), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.array(small)).permute(2, 0, 1).contiguous()


def expected_thumbnail(index: int) -> torch.Tensor:
    """``thumbnail`` of demo image ``index``, computed from the independent decode."""
    return thumbnail(decoded(index))


def write_packed(path: Path, indices: range, *, field: str = "image", label: bool = True) -> Path:
    """Write demo images ``indices`` as ``{"key", field: JPEG, "label": i % NUM_CLASSES}``."""
    with FileWriter(path, overwrite=True, disable=True) as writer:
        for i in indices:
            sample = {"key": f"img-{i:04d}", field: jpeg(i)}
            if label:
                sample["label"] = i % NUM_CLASSES
            writer.write(sample)
    return path


def write_file(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path``, creating its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ImageNet: three classes; labels.txt lists them in class order, one name holds a comma.
IMAGENET_LABELS = [
    ("n01440764", "tench, Tinca tinca"),
    ("n01443537", "goldfish"),
    ("n01484850", "great white shark"),
]
IMAGENET_TRAIN = {  # class id -> actual indices of its files (unsorted on purpose)
    "n01440764": [9, 10026],
    "n01443537": [77],
    "n01484850": [5, 123, 40],
}
IMAGENET_VAL = {"n01440764": [3], "n01443537": [1, 2], "n01484850": [50]}
IMAGENET_TEST = [2, 1, 7]


def write_imagenet(root: Path) -> dict[str, int]:
    """Write a tiny ImageNet tree; returns relative path -> demo image index of every image."""
    sources: dict[str, int] = {}
    counter = iter(range(1000))
    root.mkdir(parents=True, exist_ok=True)
    rows = [f'{cid},"{name}"' if "," in name else f"{cid},{name}" for cid, name in IMAGENET_LABELS]
    (root / "labels.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    for class_id, numbers in IMAGENET_TRAIN.items():
        for n in numbers:
            sources[f"train/{class_id}/{class_id}_{n}.JPEG"] = next(counter)
    for class_id, numbers in IMAGENET_VAL.items():
        for n in numbers:
            sources[f"val/{class_id}/ILSVRC2012_val_{n:08d}.JPEG"] = next(counter)
    for n in IMAGENET_TEST:
        sources[f"test/ILSVRC2012_test_{n:08d}.JPEG"] = next(counter)
    for relpath, index in sources.items():
        write_file(root / relpath, jpeg(index))
    return sources


def write_imagenet22k(root: Path, classes: dict[str, list[int]]) -> dict[str, int]:
    """Write per-class tarballs and their GNU tar block lists; returns file name -> image index.

    ``classes`` maps a class id to the demo image indices of its members (file names
    ``<class_id>_<index>.JPEG``). The block lists are made by the real ``tar -R -tf``.
    """
    staging = root.parent / f"{root.name}-staging"
    (root / "blocks").mkdir(parents=True, exist_ok=True)
    sources: dict[str, int] = {}
    for class_id, indices in classes.items():
        folder = staging / class_id
        names = []
        for i in indices:
            name = f"{class_id}_{i}.JPEG"
            write_file(folder / name, jpeg(i))
            sources[name] = i
            names.append(name)
        tarball = root / f"{class_id}.tar"
        subprocess.run(["tar", "-cf", str(tarball), *names], cwd=folder, check=True)
        listing = subprocess.run(
            ["tar", "-R", "-tf", str(tarball)], check=True, capture_output=True, text=True
        ).stdout
        (root / "blocks" / f"{class_id}.log").write_text(listing, encoding="utf-8")
    return sources


class IndexDataset(torch.utils.data.Dataset):
    """A data set whose sample ``i`` is ``i`` (sampler and loader tests without images)."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < self.length:
            raise IndexError(index)
        return index
