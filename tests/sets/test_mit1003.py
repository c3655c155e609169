"""MIT1003: shardstream's writer equals datadings 3.4.7's on miniature ALLSTIMULI.zip and DATA.zip
(one MATLAB struct per subject and stimulus, eye data nested as in the real files)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from .datadings_oracle import compare_with_datadings
from .datadings_sources import jpeg, write_zip

STIMULI = ["i05june05_static_street_boston_p1010764", "i1000336", "istatic_outdoor_tree_3"]


def _subject_mat(seed: int, short: bool) -> bytes:
    rng = np.random.default_rng(seed)
    eye = np.empty((1, 1), dtype=[("time", "O"), ("duration", "O"), ("eyeData", "O")])
    eye[0, 0] = (
        np.arange(3.0),
        np.ones((1, 1)),
        rng.uniform(0, 1024, (int(rng.integers(2, 9)), 2)),
    )
    if short:  # fewer than 5 fields: datadings falls back to field 1
        record = np.empty((1, 1), dtype=[("DATA", "O")])
        record[0, 0] = (eye,)
    else:
        fields = [("imgName", "O"), ("userName", "O"), ("a", "O"), ("b", "O"), ("DATA", "O")]
        record = np.empty((1, 1), dtype=fields)
        record[0, 0] = ("x.jpeg", "ajs", np.zeros((1, 1)), np.zeros((1, 1)), eye)
    out = io.BytesIO()
    scipy.io.savemat(out, {"subject": record})
    return out.getvalue()


@pytest.fixture(scope="module")
def indir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mit1003")
    stimuli = {f"ALLSTIMULI/{name}.jpeg": jpeg(i) for i, name in enumerate(STIMULI)}
    stimuli["ALLSTIMULI/Thumbs.db"] = b"\x00\x01"
    write_zip(root / "ALLSTIMULI.zip", stimuli)
    data = {"DATA/readme.txt": b"eye data\n"}
    for s, subject in enumerate(["ajs", "CNG", "emb"]):
        for i, name in enumerate(STIMULI[: 3 - s]):  # the last stimulus has one subject only
            data[f"DATA/{subject}/{name}.mat"] = _subject_mat(10 * s + i, short=(s == 1))
    data["DATA/ajs/extra/other.mat"] = _subject_mat(99, short=False)  # not DATA/<subject>/<x>.mat
    write_zip(root / "DATA.zip", data)
    return root


def test_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("MIT1003", indir, tmp_path, ["MIT1003.msgpack"])
    samples = written["MIT1003.msgpack"]
    assert [s["key"] for s in samples] == [f"ALLSTIMULI/{name}.jpeg" for name in STIMULI]
    assert list(samples[0]) == ["key", "image", "experiments"]
    assert [len(s["experiments"]) for s in samples] == [3, 2, 1]
    experiment = samples[0]["experiments"][1]  # from the short struct
    assert list(experiment) == ["locations", "map"] and experiment["map"] is None
    assert experiment["locations"].dtype == np.float32 and experiment["locations"].shape[1] == 2


def test_shuffle_with_a_seed_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("MIT1003", indir, tmp_path, ["MIT1003.msgpack"], seed=9)
    assert len(written["MIT1003.msgpack"]) == 3
