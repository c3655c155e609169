"""ADE20k: shardstream's writer equals datadings 3.4.7's on a miniature ADE20K_2016_07_26.zip.

datadings saves its class maps as mode 'I' PNGs, which Pillow >= 10 refuses ("cannot write mode
I as PNG"); its process gets Pillow 9's PNG mode table entry back (``png_mode_i``), which wrote
them as 16-bit grey PNGs. Both run with ``-t 1``: with more threads datadings writes in
completion order."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from .datadings_oracle import compare_with_datadings, printed_by_datadings, printed_by_shardstream
from .datadings_sources import jpeg, png, write_zip

FILES = ["training.msgpack", "validation.msgpack"]
ROOT = "ADE20K_2016_07_26/images"
IMAGES = {
    f"{ROOT}/training/a/abbey/ADE_train_00000001": ("abbey", 2),
    f"{ROOT}/training/a/airport_terminal/ADE_train_00000002": ("airport_terminal", 0),
    f"{ROOT}/training/b/bathroom/ADE_train_00000003": ("bathroom", 1),
    f"{ROOT}/validation/a/abbey/ADE_val_00000001": ("abbey", 0),
}


def _seg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return png(rng.integers(0, 256, (10, 14, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def indir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ade20k")
    members = {}
    for seed, (prefix, (_, parts)) in enumerate(IMAGES.items()):
        members[prefix + ".jpg"] = jpeg(seed)
        members[prefix + "_seg.png"] = _seg(seed)
        members[prefix + "_atr.txt"] = b"001 # 0 # 0 # wall # wall # \n"
        for part in range(1, parts + 1):
            members[f"{prefix}_parts_{part}.png"] = _seg(100 * seed + part)
    members[f"{ROOT}/training/a/abbey/ADE_train_00000001_parts_4.png"] = _seg(99)  # no _parts_3
    names = np.array([p.rsplit("/", 1)[1] + ".jpg" for p in IMAGES] + ["unused.jpg"], dtype=object)
    scenes = np.array([scene for scene, _ in IMAGES.values()] + ["zoo"], dtype=object)
    out = io.BytesIO()
    index = {
        "filename": names.reshape(1, -1),
        "folder": names.reshape(1, -1),
        "scene": scenes.reshape(1, -1),
    }
    scipy.io.savemat(out, {"index": index})
    members["ADE20K_2016_07_26/index_ade20k.mat"] = out.getvalue()
    write_zip(root / "ADE20K_2016_07_26.zip", members)
    return root


def test_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings(
        "ADE20k", indir, tmp_path, FILES, ["-t", "1"], patches=["png_mode_i"]
    )
    training = written["training.msgpack"]
    assert [s["key"] for s in training] == [f"ADE_train_0000000{i}.jpg" for i in (1, 2, 3)]
    assert list(training[0]) == ["key", "image", "label", "label_image", "parts_images"]
    # scenes sorted: abbey 0, airport_terminal 1, bathroom 2, zoo 3
    assert [s["label"] for s in training] == [0, 1, 2]
    assert [len(s["parts_images"]) for s in training] == [2, 0, 1]
    classes = np.asarray(Image.open(io.BytesIO(training[0]["label_image"])))
    rgb = np.asarray(Image.open(io.BytesIO(_seg(0)))).astype(np.int64)
    assert classes.tolist() == (rgb[..., 0] // 10 * 256 + rgb[..., 1]).tolist()


def test_shuffle_with_a_seed_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings(
        "ADE20k", indir, tmp_path, FILES, ["-t", "1"], seed=8, patches=["png_mode_i"]
    )
    assert len(written["training.msgpack"]) == 3


def test_calculate_weights_writes_what_datadings_writes(indir: Path, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()  # datadings does not make the folder
    args = ["-s", "--calculate-weights", "-t", "1"]
    expected = printed_by_datadings("ADE20k", indir, tmp_path / "d", args)
    actual = printed_by_shardstream("ADE20k", indir, tmp_path / "s", args)
    assert actual.rstrip("\n") == expected.rstrip("\n") == "6 samples analyzed"  # 3 seg + 3 parts
    counts = (tmp_path / "s" / "ADE20k_counts.json").read_bytes()
    assert counts == (tmp_path / "d" / "ADE20k_counts.json").read_bytes()
    summary = json.loads(counts)
    assert sum(summary["COUNTS"]) == pytest.approx(6.0)
    assert not list((tmp_path / "s").glob("*.msgpack"))


def test_scenelabels_writes_the_sorted_scenes(indir: Path, tmp_path: Path) -> None:
    # datadings' --scenelabels fails (it indexes a list by name); ours writes the label order
    printed_by_shardstream("ADE20k", indir, tmp_path, ["-s", "--scenelabels"])
    scenes = json.loads((tmp_path / "ADE20k_scenelabels.json").read_text())
    assert scenes == ["abbey", "airport_terminal", "bathroom", "zoo"]
