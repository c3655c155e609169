"""InriaBuildings: shardstream's writer equals datadings 3.4.7's on a miniature AerialImageDataset
folder (datadings' GDAL reading patched to tifffile). Most images are tiny; one per tiled split
spans a whole 384 x 384 tile plus edge tiles (left out)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from .datadings_oracle import compare_with_datadings

FILES = ["train.msgpack", "val.msgpack", "test.msgpack"]
TRAIN = ("vienna", "kitsap", "tyrol-w", "chicago", "austin")
TEST = ("bellingham", "bloomington", "innsbruck", "sfo", "tyrol-e")
LARGE = {"kitsap2.tif", "sfo36.tif"}


@pytest.fixture(scope="module")
def indir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("inria") / "AerialImageDataset"
    rng = np.random.default_rng(0)
    for split, locations in (("train", TRAIN), ("test", TEST)):
        for folder in ("images", "gt") if split == "train" else ("images",):
            (root / split / folder).mkdir(parents=True)
        for location in locations:
            for number in range(1, 37):
                name = f"{location}{number}.tif"
                shape = (390, 400) if name in LARGE else (6, 8)
                tifffile.imwrite(
                    root / split / "images" / name,
                    rng.integers(0, 256, (*shape, 3), dtype=np.uint8),
                )
                if split == "train":
                    gt = rng.integers(0, 2, shape, dtype=np.uint8) * 255
                    tifffile.imwrite(root / split / "gt" / name, gt)
    return root.parent


def test_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("InriaBuildings", indir, tmp_path, FILES, patches=["gdal"])
    train = written["train.msgpack"]
    assert len(train) == 5 * 31 and train[0]["key"] == "vienna6.tif"
    assert list(train[0]) == ["key", "image", "label_image"]
    assert train[0]["label_image"].startswith(b"\x89PNG")
    assert [s["key"] for s in written["val.msgpack"]] == ["kitsap2.tif_0"]
    (test,) = written["test.msgpack"]
    assert test["key"] == "sfo36.tif_0" and list(test) == ["key", "image"]
