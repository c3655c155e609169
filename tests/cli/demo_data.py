"""Small real datasets for the CLI tests, packed from demo images, and a runner for the CLI."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from shardstream import FileWriter, MsgpackReader
from shardstream.format.integrity import md5_file
from shardstream.format.manifest import ShardEntry, write_manifest
from shardstream.sets.demo import DEMO_CLASS_NAMES, generate_demo_images, iter_demo_samples

#: Images and classes of the packed demo set every CLI test module builds once.
NUM_IMAGES = 48
NUM_CLASSES = 4


def shardstream(*args: str, cwd=None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real ``shardstream`` console script (stdin closed, so it is not a terminal)."""
    exe = shutil.which("shardstream")
    command = [exe] if exe else [sys.executable, "-m", "shardstream"]
    return subprocess.run(
        [*command, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def demo_samples(num_images: int = NUM_IMAGES, num_classes: int = NUM_CLASSES) -> list[dict]:
    """The demo images as samples: key, JPEG bytes, label (index % classes) and class name
    (fresh dicts of immutable values; the images are rendered once per test run)."""
    return [dict(sample) for sample in _rendered_samples(num_images, num_classes)]


@functools.cache
def _rendered_samples(num_images: int, num_classes: int) -> tuple[dict, ...]:
    return tuple(
        {**sample, "class_name": DEMO_CLASS_NAMES[sample["label"]]}
        for sample in iter_demo_samples(num_images=num_images, num_classes=num_classes)
    )


def write_packed(path: Path, samples: Sequence[dict]) -> Path:
    """Pack ``samples`` into ``path`` with shardstream's writer; returns ``path``."""
    with FileWriter(path, overwrite=True, disable=True) as writer:
        for sample in samples:
            writer.write(sample)
    return path


def write_sharded(folder: Path, name: str, samples: Sequence[dict], sizes: Sequence[int]) -> Path:
    """Pack ``samples`` into shards of the given sizes plus ``<name>.manifest``; returns it."""
    assert sum(sizes) == len(samples)
    entries = []
    start = 0
    for i, size in enumerate(sizes):
        shard = write_packed(folder / f"{name}-{i:05d}.msgpack", samples[start : start + size])
        entries.append(ShardEntry(shard.name, size, shard.stat().st_size, md5_file(shard)))
        start += size
    return write_manifest(folder / f"{name}.manifest", entries)


def write_demo_tree(root: Path) -> Path:
    """Write the demo images as ``root/<class>/<class>_<index>.jpg``; returns ``root``."""
    generate_demo_images(root, num_images=NUM_IMAGES, num_classes=NUM_CLASSES, workers=1)
    return root


def keys_of(path: Path | str) -> list[str]:
    """The keys of a packed dataset, in order."""
    with MsgpackReader(path) as reader:
        return list(reader.keys)


def raw_by_key(path: Path | str) -> dict[str, bytes]:
    """Every packed sample of a dataset, by key."""
    with MsgpackReader(path) as reader:
        return dict(reader.iter(0, yield_key=True, raw=True))


def listing(folder: Path) -> list[str]:
    """Every name in ``folder`` (hidden temp files included), sorted."""
    return sorted(p.name for p in folder.iterdir())
