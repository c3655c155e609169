"""Randomness of the torch adapters in loader workers, against datadings 3.4.7 (the oracle).

``Dataset``, ``IterableDataset``, ``Compose`` and ``CompressedToPIL`` hold no generator: the
only randomness is the caller's ``rng(sample)`` callable (datadings' documentation draws from
Python's ``random``) and the transforms, called in the worker. torch's ``DataLoader`` seeds
``random`` and torch in every worker (``base_seed + worker_id``, a new ``base_seed`` from the
parent's torch generator each epoch), so parameters differ per worker and per epoch and
``torch.manual_seed`` reproduces them, in shardstream exactly as in datadings.
"""

from __future__ import annotations

import io
import random

import numpy as np
import torch
from datadings.reader import MsgpackReader as DatadingsMsgpackReader
from datadings.torch import Compose as DatadingsCompose
from datadings.torch import CompressedToPIL as DatadingsCompressedToPIL
from datadings.torch import Dataset as DatadingsDataset
from datadings.torch import IterableDataset as DatadingsIterableDataset
from PIL import Image
from torch.utils.data import DataLoader

from shardstream import FileWriter, MsgpackReader
from shardstream.compat.datadings.torch_data import (
    Compose,
    CompressedToPIL,
    Dataset,
    IterableDataset,
)
from shardstream.vision.augmentations import DataAugmentationDINO

from .common import write_numbered


def rng(_):
    """The datadings documentation's parameter function: Python's ``random``."""
    return {"number": random.randrange(1, 10**9)}


def add(v, number):
    return v + number


def _run(dataset, *, seed: int, epochs: int = 2) -> list[tuple[int, int]]:
    """``(i, i + number)`` of every sample over ``epochs`` passes of a fresh 2-worker loader."""
    torch.manual_seed(seed)
    loader = DataLoader(dataset, batch_size=None, num_workers=2, multiprocessing_context="fork")
    return [(int(s["key"]), int(s["i"])) for _ in range(epochs) for s in loader]


def test_rng_params_differ_per_worker_and_epoch_and_reproduce_as_in_datadings(tmp_path):
    path = write_numbered(tmp_path / "n.msgpack", 8)
    for kind, ours, theirs in (
        ("map", Dataset, DatadingsDataset),
        ("iterable", IterableDataset, DatadingsIterableDataset),
    ):
        # a fresh dataset per run: datadings' IterableDataset advances its epoch when iterated
        def build(cls, reader_cls, compose):
            return cls(reader_cls(path), transforms={"i": compose(add)}, rng=rng)

        first = _run(build(ours, MsgpackReader, Compose), seed=1)
        again = _run(build(ours, MsgpackReader, Compose), seed=1)
        other = _run(build(ours, MsgpackReader, Compose), seed=2)
        upstream = _run(build(theirs, DatadingsMsgpackReader, DatadingsCompose), seed=1)
        assert sorted(key for key, _ in first) == sorted(list(range(8)) * 2), kind
        numbers = [value - key for key, value in first]
        assert len(set(numbers)) == 16, kind  # every worker and epoch draws its own numbers
        assert first == again == upstream, kind
        assert not set(numbers) & {value - key for key, value in other}, kind


def test_compressed_images_through_compose_and_dino_differ_per_worker(tmp_path):
    """datadings' image pipeline (bytes -> CompressedToPIL -> DINO views) in 2 workers."""
    pixels = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    path = tmp_path / "images.msgpack"
    with FileWriter(path, overwrite=True, disable=True) as writer:
        for i in range(6):
            writer.write({"key": f"{i:05d}", "image": buffer.getvalue()})
    augment = DataAugmentationDINO((0.32, 1.0), (0.05, 0.32), 2, 24, 12)

    def views(compose, to_pil, reader_cls, seed):
        def transform(sample):
            out = compose((to_pil(), augment), prefix="")(sample["image"], {})
            return torch.cat([v.flatten() for v in out["global_crops"] + out["local_crops"]])

        dataset = (Dataset if reader_cls is MsgpackReader else DatadingsDataset)(
            reader_cls(path), transforms=transform
        )
        torch.manual_seed(seed)
        loader = DataLoader(dataset, batch_size=None, num_workers=2, multiprocessing_context="fork")
        return [v for _ in range(2) for v in loader]

    first = views(Compose, CompressedToPIL, MsgpackReader, 3)
    assert len({v.numpy().tobytes() for v in first}) == 12  # workers and epochs all differ
    again = views(Compose, CompressedToPIL, MsgpackReader, 3)
    upstream = views(DatadingsCompose, DatadingsCompressedToPIL, DatadingsMsgpackReader, 3)
    assert all(torch.equal(a, b) and torch.equal(a, c) for a, b, c in zip(first, again, upstream))
