"""Digests of what the public API yields for fixed seeds: the behaviour a reorganisation must keep.

:func:`compute_digests` builds a small real dataset, runs the presets through the Loader, every
sampler and the torch adapters with fixed seeds, and hashes what they yield. The expected values
live in ``behaviour_digests.json`` next to this file; they were recorded before the package was
reorganised (issue 15) and regenerate with ``python -m tests.contracts.behaviour_digests --write``
only when a behaviour change is intended.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

EXPECTED = Path(__file__).with_name("behaviour_digests.json")
COUNT = 20


def _feed(h: Any, value: Any) -> None:
    import torch

    if torch.is_tensor(value):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        h.update(f"{value.dtype.str}{value.shape}".encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            h.update(repr(key).encode())
            _feed(h, value[key])
    elif isinstance(value, (list, tuple)):
        h.update(f"{type(value).__name__}{len(value)}".encode())
        for item in value:
            _feed(h, item)
    elif hasattr(value, "size") and hasattr(value, "tobytes") and hasattr(value, "mode"):
        h.update(f"PIL{value.mode}{value.size}".encode() + value.tobytes())
    else:
        h.update(repr(value).encode())


def digest(values: Iterable[Any]) -> str:
    """The sha256 of everything ``values`` yields, in order (arrays by dtype, shape and bytes)."""
    h = hashlib.sha256()
    for value in values:
        _feed(h, value)
    return h.hexdigest()


def _dataset(root: Path) -> Path:
    from shardstream import FileWriter
    from shardstream.sets.demo import render_demo_image

    path = root / "demo.msgpack"
    with FileWriter(path) as writer:
        for i in range(COUNT):
            writer.write({"key": f"img_{i:03d}", "image": render_demo_image(i), "label": i % 3})
    return path


def _loader_batches(path: Path, preset: Any) -> list[Any]:
    from shardstream import Loader

    loader = Loader(path, seed=5).shuffle().batch(4).preset(preset, device="cpu").pytorch()
    try:
        return [b for _, b in zip(range(3), loader)]
    finally:
        loader.close()


def _samplers() -> dict[str, Callable[[], Iterable[Any]]]:
    import itertools

    import shardstream as ss

    n = COUNT

    def take(it: Iterable[Any], k: int = 3 * COUNT) -> list[Any]:
        return list(itertools.islice(iter(it), k))

    def epochs(make: Callable[[], Any], count: int = 3) -> list[Any]:
        sampler = make()
        out = []
        for epoch in range(count):
            sampler.set_epoch(epoch)
            out.append(list(sampler))
        return out

    return {
        "EpochSampler": lambda: take(
            ss.EpochSampler(size=45, sample_count=n, shuffle=True, seed=3, start=1, step=2)
        ),
        "InfiniteSampler": lambda: take(
            ss.InfiniteSampler(sample_count=n, shuffle=True, seed=3, start=0, step=2)
        ),
        "ShardedInfiniteSampler": lambda: take(
            ss.ShardedInfiniteSampler(sample_count=n, shuffle=True, seed=3, start=1, step=2)
        ),
        "ShardedInfiniteSampler-new-slice": lambda: take(
            ss.ShardedInfiniteSampler(
                sample_count=n,
                shuffle=True,
                seed=3,
                start=0,
                step=1,
                use_new_shuffle_tensor_slice=True,
            )
        ),
        "DistributedSampler": lambda: epochs(
            lambda: ss.DistributedSampler(range(n), num_replicas=3, rank=1, shuffle=True, seed=4)
        ),
        "ResumableRandomSampler": lambda: epochs(
            lambda: ss.ResumableRandomSampler(range(n), seed=4, batch_size=2)
        ),
        "ResumableSequentialSampler": lambda: epochs(
            lambda: ss.ResumableSequentialSampler(range(n), batch_size=2)
        ),
        "ResumableDistributedSampler": lambda: epochs(
            lambda: ss.ResumableDistributedSampler(
                range(n), num_replicas=2, rank=1, shuffle=True, seed=4, batch_size=2
            )
        ),
        "GlobalOrderSampler": lambda: epochs(
            lambda: ss.GlobalOrderSampler(
                sample_count=n, shuffle=True, seed=6, rank=1, world_size=3
            )
        ),
    }


def _augments(path: Path) -> dict[str, Callable[[], Iterable[Any]]]:
    import shardstream as ss

    def keys(make: Callable[[Any], Any]) -> list[Any]:
        reader = ss.MsgpackReader(path)
        try:
            augment = make(reader)
            return [s["key"] for s in augment.iter()]
        finally:
            reader.close()

    def cycled() -> list[Any]:
        reader = ss.MsgpackReader(path)
        try:
            it = ss.Cycler(ss.Shuffler(reader, seed=9)).iter()
            return [next(it)["key"] for _ in range(3 * COUNT)]
        finally:
            reader.close()

    return {
        "Shuffler": lambda: keys(lambda r: ss.Shuffler(r, seed=7)),
        "QuasiShuffler": lambda: keys(
            lambda r: ss.QuasiShuffler(r, buf_size=0.25, chunk_size=2, seed=7)
        ),
        "Range": lambda: keys(lambda r: ss.Range(r, 3, 15)),
        "Repeater": lambda: keys(lambda r: ss.Repeater(ss.Shuffler(r, seed=2), 2)),
        "Repeater-quasi": lambda: keys(lambda r: ss.Repeater(ss.QuasiShuffler(r, seed=1), 3)),
        "Cycler": lambda: cycled(),
    }


def _adapters(path: Path) -> dict[str, Callable[[], Iterable[Any]]]:
    import shardstream as ss

    def dataset() -> list[Any]:
        reader = ss.MsgpackReader(path)
        try:
            to_pil = ss.CompressedToPIL()
            data = ss.Dataset(
                reader,
                transforms={"image": lambda value, params: (to_pil(value), params["n"])},
                rng=lambda sample: {"n": len(sample["key"])},
            )
            return [data[i] for i in range(len(data))]
        finally:
            reader.close()

    def iterable() -> list[Any]:
        reader = ss.MsgpackReader(path)
        try:
            data = ss.IterableDataset(reader, batch_size=3, epoch=1)
            return [s["key"] for s in data]
        finally:
            reader.close()

    return {"Dataset": dataset, "IterableDataset": iterable}


def compute_digests() -> dict[str, str]:
    """Digest of each behaviour, by name (builds its data in a temporary folder)."""
    from shardstream import DinoPreset, EvalPreset, SupervisedPreset

    with tempfile.TemporaryDirectory() as folder:
        path = _dataset(Path(folder))
        runs: dict[str, Callable[[], Iterable[Any]]] = {
            "DinoPreset": lambda: _loader_batches(
                path, DinoPreset(global_crops_size=64, local_crops_size=32, local_crops_number=2)
            ),
            "SupervisedPreset": lambda: _loader_batches(path, SupervisedPreset(size=64)),
            "EvalPreset": lambda: _loader_batches(path, EvalPreset(resize_size=72, crop_size=64)),
            **_samplers(),
            **_augments(path),
            **_adapters(path),
        }
        return {name: digest(run()) for name, run in sorted(runs.items())}


if __name__ == "__main__":
    found = compute_digests()
    if "--write" in sys.argv:
        EXPECTED.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    print(json.dumps(found, indent=1, sort_keys=True))
