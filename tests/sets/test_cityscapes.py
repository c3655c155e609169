"""Cityscapes: shardstream's writer equals datadings 3.4.7's on miniature archives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .datadings_oracle import compare_with_datadings
from .datadings_sources import png, write_zip

FILES = ["train.msgpack", "val.msgpack", "test.msgpack"]
FRAMES = {
    "train": [
        "aachen/aachen_000000_000019",
        "aachen/aachen_000001_000019",
        "bochum/bochum_000000_000313",
    ],
    "val": ["frankfurt/frankfurt_000000_000294"],
    "test": ["berlin/berlin_000000_000019"],
}


@pytest.fixture(scope="module")
def indir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cityscapes")
    rng = np.random.default_rng(0)
    left = {"README": b"leftImg8bit\n", "license.txt": b"license\n"}
    fine = {"README": b"gtFine\n"}
    disparity = {"README": b"disparity\n"}
    for split, frames in FRAMES.items():
        for frame in frames:
            key = f"{split}/{frame}"
            left[f"leftImg8bit/{key}_leftImg8bit.png"] = png(
                rng.integers(0, 256, (8, 16, 3), dtype=np.uint8)
            )
            fine[f"gtFine/{key}_gtFine_color.png"] = png(
                rng.integers(0, 256, (8, 16, 4), dtype=np.uint8)
            )
            fine[f"gtFine/{key}_gtFine_labelIds.png"] = png(
                rng.integers(0, 34, (8, 16), dtype=np.uint8)
            )
            disparity[f"disparity/{key}_disparity.png"] = png(
                rng.integers(0, 30000, (8, 16), dtype=np.uint16)
            )
    write_zip(root / "leftImg8bit_trainvaltest.zip", left)
    write_zip(root / "gtFine_trainvaltest.zip", fine)
    write_zip(root / "disparity_trainvaltest.zip", disparity)
    return root


def test_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("Cityscapes", indir, tmp_path, FILES, ["--threads", "2"])
    train = written["train.msgpack"]
    assert [s["key"] for s in train] == [f"train/{frame}" for frame in FRAMES["train"]]
    assert list(train[0]) == ["key", "image", "label_image", "disparity_image"]


def test_shuffle_with_a_seed_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("Cityscapes", indir, tmp_path, FILES, seed=4)
    assert len(written["train.msgpack"]) == 3
