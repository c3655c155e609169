"""Packed demo sets for the training tests, made once per session in a temp folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from shardstream.sets.demo import iter_demo_samples
from tests.conftest import write_samples


def pack_demo(path: Path, num_images: int, num_classes: int = 10) -> Path:
    """Pack ``num_images`` demo images (label ``i % num_classes``) into ``path``."""
    samples = iter_demo_samples(num_images=num_images, num_classes=num_classes, workers=None)
    write_samples(path, samples)
    return path


@pytest.fixture(scope="session")
def demo_600(tmp_path_factory) -> Path:
    """600 demo images in 10 classes (60 each), the learning test's data set."""
    return pack_demo(tmp_path_factory.mktemp("demo600") / "demo.msgpack", 600)


@pytest.fixture(scope="session")
def demo_70(tmp_path_factory) -> Path:
    """70 demo images in 5 classes: small and not a multiple of the batch sizes used."""
    return pack_demo(tmp_path_factory.mktemp("demo70") / "demo.msgpack", 70, num_classes=5)
