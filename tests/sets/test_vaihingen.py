"""Vaihingen: shardstream's writer equals datadings 3.4.7's on a miniature
ISPRS_semantic_labeling_Vaihingen folder (datadings' GDAL reading patched to tifffile)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from shardstream.sets import vaihingen

from .datadings_oracle import compare_with_datadings

FILES = ["Vaihingen_train.msgpack", "Vaihingen_val.msgpack"]
AREAS = (1, 3, 5, 7, 13, 17, 21, 23, 26, 32, 37, 11, 15, 28, 30, 34)


@pytest.fixture(scope="module")
def indir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vaihingen")
    base = root / "ISPRS_semantic_labeling_Vaihingen"
    for folder in ("top", "gts_for_participants", "dsm"):
        (base / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    colours = np.array([*vaihingen.COLOR_TO_CLASS, (10, 20, 30)], dtype=np.uint8)
    for area in AREAS:
        h, w = (390, 400) if area == 11 else (12, 9 + area % 5)  # one val area spans 4 tiles
        name = f"top_mosaic_09cm_area{area}.tif"
        tifffile.imwrite(base / "top" / name, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        labels = colours[rng.integers(0, len(colours), (h, w))]
        tifffile.imwrite(base / "gts_for_participants" / name, labels)
        heights = rng.uniform(250, 280, (h, w)).astype(np.float32)
        tifffile.imwrite(base / "dsm" / ("dsm" + name[3:]), heights)
    return root


def test_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("Vaihingen", indir, tmp_path, FILES, patches=["gdal"])
    train = written["Vaihingen_train.msgpack"]
    assert train[0]["key"] == "top_mosaic_09cm_area1.tif" and len(train) == 11
    assert list(train[0]) == ["key", "image", "label_image", "mask"]
    assert train[0]["image"].dtype == np.uint8 and train[0]["image"].shape[0] == 3
    assert train[0]["label_image"].dtype == np.int64 and train[0]["label_image"].max() <= 6
    assert train[0]["mask"].dtype == np.int32  # the DSM heights, truncated: datadings' quirk
    assert train[0]["mask"].min() >= 250 and train[0]["mask"].max() < 280
    val = written["Vaihingen_val.msgpack"]
    assert [s["key"] for s in val[:5]] == [
        *(f"top_mosaic_09cm_area11.tif_{i}" for i in range(4)),
        "top_mosaic_09cm_area15.tif_0",
    ]
    assert len(val) == 8
