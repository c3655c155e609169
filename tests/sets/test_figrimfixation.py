"""FIGRIMFixation: shardstream's writer equals datadings 3.4.7's on miniature Targets.zip,
Fillers.zip and their ``.mat`` files (a struct array of images with per-subject fixations)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from .datadings_oracle import compare_with_datadings
from .datadings_sources import jpeg, write_zip

FILES = ["target.msgpack", "filler.msgpack"]


def _write_mat(path: Path, names: list[str], seed: int) -> None:
    rng = np.random.default_rng(seed)
    subject_fields = [("a", "O"), ("b", "O"), ("c", "O"), ("d", "O"), ("fixations", "O")]
    images = np.empty(
        (1, len(names)), dtype=[("category", "O"), ("x", "O"), ("filename", "O"), ("subjects", "O")]
    )
    for i, name in enumerate(names):
        subjects = np.empty((1, 3), dtype=subject_fields)
        for s in range(3):
            if s == 2:  # a subject without fixations
                fixations = np.zeros((0, 0))
            else:
                fixations = np.empty((1, 1), dtype=[("enc", "O"), ("rec", "O")])
                fixations[0, 0] = (
                    rng.uniform(0, 1000, (int(rng.integers(1, 6)), 2)),
                    rng.uniform(0, 1000, (int(rng.integers(1, 6)), 2)),
                )
            subjects[0, s] = (0.0, 0.0, 0.0, 0.0, fixations)
        images[0, i] = ("airport", 1.0, name, subjects)
    scipy.io.savemat(path, {"allImages": images})


@pytest.fixture(scope="module")
def indir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("figrim")
    targets = ["Targets/airport/sun_a.jpg", "Targets/airport/sun_b.jpg", "Targets/bridge/sun_c.jpg"]
    fillers = ["Fillers/airport/sun_f.jpg", "Fillers/bridge/sun_g.jpg"]
    write_zip(root / "Targets.zip", {name: jpeg(i) for i, name in enumerate(targets)})
    write_zip(
        root / "Fillers.zip",
        {**{name: jpeg(10 + i) for i, name in enumerate(fillers)}, "Fillers/readme.txt": b"x"},
    )
    _write_mat(root / "allImages_release.mat", targets[:2] + ["Targets/other/not_there.jpg"], 1)
    _write_mat(root / "allImages_fillers.mat", fillers, 2)
    return root


def test_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("FIGRIMFixation", indir, tmp_path, FILES)
    target = written["target.msgpack"]
    # sun_c.jpg has no fixations in the .mat file: left out, as datadings does
    assert [s["key"] for s in target] == ["Targets/airport/sun_a.jpg", "Targets/airport/sun_b.jpg"]
    assert list(target[0]) == ["key", "image", "experiments"]
    assert len(target[0]["experiments"]) == 4  # 2 subjects x 2 sequences
    assert target[0]["experiments"][0]["locations"].dtype == np.float32
    assert len(written["filler.msgpack"]) == 2


def test_shuffle_with_a_seed_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("FIGRIMFixation", indir, tmp_path, FILES, seed=1)
    assert len(written["target.msgpack"]) == 2
