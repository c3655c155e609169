"""RIT18: shardstream's writer equals datadings 3.4.7's on a miniature ``rit18_data.mat``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from shardstream.sets import rit18

from .datadings_oracle import compare_with_datadings


@pytest.fixture(scope="module")
def indir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rit18")
    rng = np.random.default_rng(0)
    scipy.io.savemat(
        root / "rit18_data.mat",
        {
            "train_data": rng.integers(0, 60000, (7, 20, 30), dtype=np.uint16),
            "train_labels": rng.integers(0, 19, (20, 30), dtype=np.uint8),
            "val_data": rng.integers(0, 60000, (7, 390, 400), dtype=np.uint16),
            "val_labels": rng.integers(0, 19, (390, 400), dtype=np.uint8),
            "test_data": rng.integers(0, 60000, (7, 10, 10), dtype=np.uint16),
        },
    )
    return root


def test_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("RIT18", indir, tmp_path, ["train.msgpack", "val.msgpack"])
    (train,) = written["train.msgpack"]
    assert list(train) == ["key", "image", "label_image", "mask"]
    assert train["image"].dtype == np.uint16 and train["image"].shape == (6, 20, 30)
    assert train["label_image"].dtype == np.int64 and train["mask"].dtype == np.uint8
    val = written["val.msgpack"]
    assert [s["key"] for s in val] == ["val_0", "val_1", "val_2", "val_3"]
    assert [s["image"].shape for s in val] == [(6, 384, 384), (6, 384, 16), (6, 6, 384), (6, 6, 16)]


def test_tiles_cover_the_array_row_by_row() -> None:
    array = np.arange(2 * 5 * 7).reshape(2, 5, 7)
    parts = rit18.tiles(array, 3)
    assert [p.shape for p in parts] == [
        (2, 3, 3),
        (2, 3, 3),
        (2, 3, 1),
        (2, 2, 3),
        (2, 2, 3),
        (2, 2, 1),
    ]
    assert parts[2].tolist() == array[:, :3, 6:].tolist()
