"""The small set that the URL tests of the commands and the entry points read: ``one.msgpack``
and ``many.manifest`` (4 shards) of the same demo samples, served by a real HTTP Range server and
uploaded to moto S3 by the fixtures below (import them into a test module to use them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shardstream import FileWriter, ShardedWriter
from shardstream.sets.demo import render_demo_image
from tests.read.remote.servers import RangeServer

SET_NAMES = ("one.msgpack", "many.manifest")


def demo_samples(count: int) -> list[dict]:
    """``count`` demo samples with keys ``k000``... and labels cycling over 3 classes."""
    return [
        {"key": f"k{i:03d}", "image": render_demo_image(i, num_classes=3), "label": i % 3}
        for i in range(count)
    ]


def write_url_sets(root: Path, count: int) -> list[dict]:
    """Write ``one.msgpack`` and a 4-shard ``many.manifest`` of ``count`` samples under ``root``;
    return the samples."""
    samples = demo_samples(count)
    with FileWriter(root / "one.msgpack", overwrite=True, disable=True) as writer:
        for sample in samples:
            writer.write(sample)
    size = sum(len(s["image"]) for s in samples) // 4 + 1
    with ShardedWriter(root / "many.manifest", shard_size=size, overwrite=True, disable=True) as w:
        for sample in samples:
            w.write(sample)
    return samples


@pytest.fixture(scope="module")
def http(local: Path) -> Iterator[RangeServer]:
    """An HTTP Range server on 127.0.0.1 serving the module's ``local`` folder."""
    server = RangeServer(local)
    yield server
    server.close()


@pytest.fixture(params=SET_NAMES)
def name(request: pytest.FixtureRequest) -> str:
    """Each of the two sets in turn: the single data file and the sharded set."""
    return str(request.param)
