"""SALICON2015 and SALICON2017: shardstream's writers equal datadings 3.4.7's on miniature
``image.zip`` / ``fixations.zip`` archives (fixations as MATLAB ``gaze`` struct arrays)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from .datadings_oracle import compare_with_datadings
from .datadings_sources import jpeg, write_zip

FILES = ["train.msgpack", "val.msgpack", "test.msgpack"]


def _mat(seed: int, subjects: int) -> bytes:
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    if subjects == 0:
        scipy.io.savemat(out, {"image": "none"})
        return out.getvalue()
    gaze = np.empty(
        (1, subjects), dtype=[("location", "O"), ("timestamp", "O"), ("fixations", "O")]
    )
    for i in range(subjects):
        n = int(rng.integers(1, 6))
        gaze[0, i] = (
            rng.integers(1, 640, (n, 2)).astype(np.float64),
            np.sort(rng.integers(0, 5000, (n, 1))).astype(np.float64),
            rng.uniform(1, 480, (int(rng.integers(1, 4)), 2)),
        )
    scipy.io.savemat(out, {"gaze": gaze})
    return out.getvalue()


@pytest.fixture(scope="module")
def indir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("salicon")
    names = {
        "train": ["COCO_train2014_000000000009", "COCO_train2014_000000000025"],
        "val": ["COCO_val2014_000000000042"],
        "test": ["COCO_test2014_000000000001"],
    }
    images, fixations = {}, {}
    for seed, (split, keys) in enumerate((s, k) for s, ks in names.items() for k in ks):
        images[f"images/{split}/{keys}.jpg"] = jpeg(seed)
        fixations[f"{split}/{keys}.mat"] = _mat(seed, 0 if split == "test" else 1 + seed % 3)
    write_zip(root / "image.zip", images)
    write_zip(root / "fixations.zip", fixations)
    return root


@pytest.mark.parametrize("name", ["SALICON2015", "SALICON2017"])
def test_equals_datadings(name: str, indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings(name, indir, tmp_path, FILES)
    train = written["train.msgpack"]
    assert [s["key"] for s in train] == [
        "train/COCO_train2014_000000000009",
        "train/COCO_train2014_000000000025",
    ]
    assert list(train[0]) == ["key", "image", "experiments"]
    assert len(train[1]["experiments"]) == 2
    experiment = train[1]["experiments"][0]
    assert list(experiment) == ["locations", "map", "timestamps", "fixations"]
    assert experiment["map"] is None
    assert experiment["locations"].dtype == np.float32 and experiment["locations"].shape[1] == 2
    assert written["test.msgpack"][0]["experiments"] == []


def test_shuffle_with_a_seed_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("SALICON2017", indir, tmp_path, FILES, seed=2)
    assert len(written["train.msgpack"]) == 2
