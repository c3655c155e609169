"""CAT2000: shardstream's writer equals datadings 3.4.7's on miniature trainSet.zip and
testSet.zip (bordered stimuli, binary ``fixLocs`` maps). datadings' writer needs Pillow's
removed ``Image.ANTIALIAS`` (patched back as ``LANCZOS`` in its process)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from .datadings_oracle import compare_with_datadings
from .datadings_sources import write_zip

FILES = ["train.msgpack", "test.msgpack"]


def _stimulus(seed: int) -> tuple[bytes, tuple[int, int]]:
    """A JPEG with a flat grey border around random content; returns it and its (h, w)."""
    rng = np.random.default_rng(seed)
    h, w = (48, 64) if seed % 2 else (60, 40)
    pixels = np.full((h, w, 3), 128, dtype=np.uint8)
    pixels[5 : h - 3, 2 : w - 6] = rng.integers(0, 256, (h - 8, w - 8, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=95)
    return out.getvalue(), (h, w)


def _fixlocs(seed: int, shape: tuple[int, int]) -> bytes:
    rng = np.random.default_rng(seed + 100)
    fix = np.zeros(shape, dtype=np.uint8)
    fix[rng.integers(0, shape[0], 12), rng.integers(0, shape[1], 12)] = 1
    fix[0, 0] = fix[shape[0] - 1, shape[1] - 1] = 1  # in the border: filtered out
    out = io.BytesIO()
    scipy.io.savemat(out, {"fixLocs": fix})
    return out.getvalue()


@pytest.fixture(scope="module")
def indir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cat2000")
    train = {}
    for seed, name in enumerate(["Action/001.jpg", "Action/002.jpg", "Art/001.jpg"]):
        data, shape = _stimulus(seed)
        train[f"trainSet/Stimuli/{name}"] = data
        train[f"trainSet/FIXATIONMAPS/{name}"] = data
        if name != "Art/001.jpg":  # a stimulus without fixations: locations None
            train[f"trainSet/FIXATIONLOCS/{name.replace('jpg', 'mat')}"] = _fixlocs(seed, shape)
    write_zip(root / "trainSet.zip", train)
    test = {
        "testSet/Stimuli/Action/101.jpg": _stimulus(7)[0],
        "testSet/Stimuli/Output/101.jpg": _stimulus(8)[0],  # left out: 'Output'
    }
    write_zip(root / "testSet.zip", test)
    return root


def test_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("CAT2000", indir, tmp_path, FILES, patches=["antialias"])
    train = written["train.msgpack"]
    assert [s["key"] for s in train] == ["Action/001.jpg", "Action/002.jpg", "Art/001.jpg"]
    assert list(train[0]) == ["key", "image", "experiments"]
    (experiment,) = train[0]["experiments"]
    assert experiment["map"] is None
    assert experiment["locations"].dtype == np.float64  # datadings' quirk, kept
    assert train[2]["experiments"] == [{"locations": None, "map": None}]
    assert max(Image.open(io.BytesIO(train[0]["image"])).size) == 1024
    assert [s["key"] for s in written["test.msgpack"]] == ["Action/101.jpg"]


def test_shuffle_with_a_seed_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings(
        "CAT2000", indir, tmp_path, FILES, seed=6, patches=["antialias"], ours=["--workers", "2"]
    )
    assert len(written["train.msgpack"]) == 3
