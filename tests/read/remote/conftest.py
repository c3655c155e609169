"""Session fixtures of the remote tests: real servers on 127.0.0.1 holding the same small sets.

- ``varied_set``: the 40 varied samples of ``tests.conftest`` in a manifest of several shards;
- ``image_set``: 48 demo JPEGs (``{"key", "image", "label"}``) in a manifest of 6 shards,
  and the same set as an older writer left it (``images-old``: no set offsets file);
- ``range_server``: an HTTP server (Range, GET counts, fault injection) over both sets;
- ``moto_s3``: moto's S3 server with both sets uploaded to ``s3://sets/varied`` and
  ``s3://sets/images`` (and ``s3://sets/images-old``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from shardstream import ShardedWriter
from shardstream.sets.demo import render_demo_image
from tests.conftest import varied_samples
from tests.read.remote.servers import MotoS3, RangeServer

IMAGES = 48

# A stalled response (seen now and then when loader workers forked from this process, which
# also runs the HTTP server's threads, hold copies of its sockets) is retried after 3 s, not 30.
os.environ.setdefault("SHARDSTREAM_HTTP_READ_TIMEOUT", "3")


def image_samples() -> list[dict]:
    """The samples of ``image_set``."""
    return [
        {"key": f"img-{i:03d}", "image": render_demo_image(i, num_classes=3), "label": i % 3}
        for i in range(IMAGES)
    ]


def write_set(path: Path, samples: list[dict], shard_size: int) -> Path:
    """Write ``samples`` as a manifest set at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with ShardedWriter(path, shard_size=shard_size, overwrite=True, disable=True) as writer:
        for sample in samples:
            writer.write(sample)
    return path


def without_set_offsets(source: Path, target: Path) -> None:
    """Copy the set folder ``source`` to ``target`` as a writer before the set offsets file
    left it: the file left out, and the manifest without the entry naming it."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.set-offsets"))
    for path in target.glob("*.manifest"):
        document = json.loads(path.read_bytes())
        assert document.pop("offsets")["path"] == path.stem + ".set-offsets"
        path.write_text(json.dumps(document, indent=1) + "\n")


@pytest.fixture(scope="session")
def served_root(tmp_path_factory) -> Path:
    """The folder the servers serve: ``varied/v.manifest``, ``images/i.manifest`` and
    ``images-old/i.manifest`` sets."""
    root = tmp_path_factory.mktemp("served")
    write_set(root / "varied" / "v.manifest", varied_samples(), shard_size=2500)
    write_set(root / "images" / "i.manifest", image_samples(), shard_size=800_000)
    without_set_offsets(root / "images", root / "images-old")
    return root


@pytest.fixture(scope="session")
def range_server(served_root):
    """The HTTP server of ``served_root``."""
    server = RangeServer(served_root)
    yield server
    server.close()


@pytest.fixture
def http(range_server):
    """The HTTP server with counts and faults reset before and after the test."""
    range_server.reset_counts()
    yield range_server
    range_server.reset_counts()


@pytest.fixture(scope="session")
def moto_s3(served_root):
    """moto's S3 server holding ``s3://sets/varied/`` and ``s3://sets/images/``."""
    server = MotoS3()
    server.upload(served_root / "varied", "sets", "varied")
    server.upload(served_root / "images", "sets", "images")
    server.upload(served_root / "images-old", "sets", "images-old")
    yield server
    server.close()
