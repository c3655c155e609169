"""ImageNet21k: shardstream's writer equals datadings 3.4.7's on a miniature winter21_whole.tar.gz
(per-class tars inside; JPEGs, a PNG, a CMYK JPEG, a gzip'd JPEG and a large image exercise
datadings' image check with and without ``--compress``)."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shardstream.sets import imagenet21k

from .datadings_oracle import compare_with_datadings
from .datadings_sources import jpeg, png

FILES = ["train.msgpack", "val.msgpack"]
SYNSETS = ["n00005787", "n00007846"]


def _tar_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _special(seed: int) -> dict[int, bytes]:
    rng = np.random.default_rng(seed)
    cmyk = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (20, 24, 4), dtype=np.uint8), "CMYK").save(cmyk, "JPEG")
    large = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (640, 820, 3), dtype=np.uint8)).save(large, "JPEG")
    return {
        3: png(rng.integers(0, 256, (18, 22, 3), dtype=np.uint8)),
        7: cmyk.getvalue(),
        11: gzip.compress(jpeg(seed + 1)),
        55: large.getvalue(),
        54: png(np.broadcast_to(np.arange(900, dtype=np.uint8)[None, :, None], (700, 900, 3))),
    }


@pytest.fixture(scope="module")
def indir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("imagenet21k")
    outer = {}
    for s, synset in enumerate(SYNSETS):
        special = _special(s)
        numbers = list(range(1, 56 + s))[::-1]  # stored out of name order
        images = {
            f"{synset}_{n}.JPEG": special.get(n, jpeg(100 * s + n, (16, 12))) for n in numbers
        }
        outer[f"winter21_whole/{synset}.tar"] = _tar_bytes(images)
    outer["winter21_whole/n99999999.tar"] = _tar_bytes({"x.JPEG": jpeg(0)})  # not a class
    with tarfile.open(root / "winter21_whole.tar.gz", "w:gz") as tar:
        for name, data in outer.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (root / "imagenet21k_miil_tree.pth").write_bytes(b"not read")
    return root


def test_metadata_equals_datadings() -> None:
    from datadings.sets import ImageNet21k_synsets as theirs

    meta = imagenet21k.synsets()
    assert meta["synsets"] == theirs.SYNSET_LIST
    assert meta["trees"] == theirs.SYNSET_TREE_LIST
    assert (meta["train"], meta["val"]) == (theirs.NUM_TRAIN_SAMPLES, theirs.NUM_VAL_SAMPLES)


def test_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("ImageNet21k", indir, tmp_path, FILES)
    val = written["val.msgpack"]
    assert len(val) == 100 and len(written["train.msgpack"]) == 5 + 6
    assert list(val[0]) == ["key", "image", "label", "label_tree"]
    assert val[0]["key"] == "n00005787_1.JPEG" and val[1]["key"] == "n00005787_10.JPEG"
    assert val[0]["label"] == 0 and val[0]["label_tree"] == [0]
    by_key = {s["key"]: s for s in val}
    # a large PNG: re-encoded, downscaled to a longer side of 500
    assert Image.open(io.BytesIO(by_key["n00005787_54.JPEG"]["image"])).size == (500, 389)
    assert by_key["n00005787_3.JPEG"]["image"].startswith(b"\xff\xd8")  # the PNG, re-encoded


def test_compress_equals_datadings(indir: Path, tmp_path: Path) -> None:
    args = ["--compress", "--subsampling", "420"]
    written = compare_with_datadings("ImageNet21k", indir, tmp_path, FILES, args)
    large = next(s for s in written["train.msgpack"] if s["key"] == "n00005787_55.JPEG")
    # decoded at the smallest DCT scale covering 500 x 375 (5/8), small enough to keep
    assert Image.open(io.BytesIO(large["image"])).size == (513, 400)
