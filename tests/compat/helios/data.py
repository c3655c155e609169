"""Small real data sets for the helios tests: packed files written by shardstream, read back."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from shardstream import FileWriter, MsgpackReader
from shardstream.compat.helios.rng import get_default_numpy_rng

CIFAR10_ROOT_ENV = "SHARDSTREAM_TEST_CIFAR10_ROOT"
"""Environment variable naming the folder of the :class:`CIFAR10` stand-in."""

CIFAR10_SIZES = {"train": 20, "test": 6}


def image_of(index: int, shape: tuple[int, ...] = (4, 4, 3)) -> np.ndarray:
    """The uint8 image stored as sample ``index`` (deterministic)."""
    rng = np.random.default_rng([index, 99])
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def write_packed(path: Path, count: int, shape: tuple[int, ...] = (4, 4, 3)) -> Path:
    """Write ``count`` samples ``{"key", "image", "label", "index"}`` with shardstream."""
    with FileWriter(path, overwrite=True, disable=True) as writer:
        for i in range(count):
            writer.write(
                {"key": f"s{i:04d}", "image": image_of(i, shape), "label": i % 3, "index": i}
            )
    return path


class PackedDataset(Dataset):
    """A map-style torch data set over one packed file: item ``i`` is a dict of tensors.

    The reader is opened lazily in each process (and dropped when pickled).
    """

    def __init__(self, path: str | os.PathLike, transform=None) -> None:
        self.path = Path(path)
        self.transform = transform
        self._reader: MsgpackReader | None = None
        with MsgpackReader(self.path) as reader:
            self._length = len(reader)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict:
        if self._reader is None:
            self._reader = MsgpackReader(self.path)
        sample = self._reader.get(index)
        image = torch.from_numpy(np.array(sample["image"]))
        if self.transform is not None:
            image = self.transform(sample["image"])
        return {"image": image, "label": sample["label"], "index": sample["index"]}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_reader": None}


class CIFAR10(PackedDataset):
    """Stand-in for torchvision's ``CIFAR10`` on a tiny packed set (32 x 32 RGB images).

    ``root`` defaults to the folder named by :data:`CIFAR10_ROOT_ENV`; ``download=True`` writes
    both splits there when they are missing (the "download").
    """

    def __init__(self, root=None, train: bool = True, transform=None, download: bool = False):
        folder = Path(root if root is not None else os.environ[CIFAR10_ROOT_ENV])
        if download:
            folder.mkdir(parents=True, exist_ok=True)
            for split, count in CIFAR10_SIZES.items():
                if not (folder / f"{split}.msgpack").exists():
                    write_packed(folder / f"{split}.msgpack", count, (32, 32, 3))
        super().__init__(folder / ("train.msgpack" if train else "test.msgpack"), transform)


class IndexDataset(Dataset):
    """Item ``i`` is ``i``."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> int:
        return index


class SeedProbe(Dataset):
    """Item ``i`` reports the generators of the process that loads it."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        info = get_worker_info()
        return {
            "index": index,
            "worker": None if info is None else info.id,
            "torch_seed": torch.initial_seed(),
            "random": random.random(),
            "numpy": float(get_default_numpy_rng().random()),
        }


class Unsized(Dataset):
    """A data set without ``__len__``."""

    def __getitem__(self, index: int) -> int:
        return index


def collate_list(batch: list) -> list:
    """Keep a batch as the list of its samples."""
    return batch


def indices(batches) -> list[list[int]]:
    """The ``"index"`` field of each batch (dict batches) as lists."""
    return [batch["index"].tolist() for batch in batches]
