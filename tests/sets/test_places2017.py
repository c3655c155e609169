"""Places2017: shardstream's writer equals datadings 3.4.7's on miniature tar files (class and
instance PNGs, boundary ``.mat`` files with sparse maps). datadings' writer unpacks OpenCV 3's
``findContours`` results; its process gets a wrapper that restores them (``findcontours3``)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse

from shardstream.sets import places2017

from .datadings_oracle import compare_with_datadings, printed_by_datadings, printed_by_shardstream
from .datadings_sources import jpeg, png, write_tar, write_zip

FILES = ["training.msgpack", "validation.msgpack"]
NAMES = {
    "training": ["ADE_train_00000001", "ADE_train_00000002", "ADE_train_00000003"],
    "validation": ["ADE_val_00000001"],
}


def _boundary(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    cells = np.empty((2, 1), dtype=object)
    for i in range(2):
        edges = np.zeros((12, 16), dtype=bool)
        for _ in range(3):
            r, c = rng.integers(1, 10), rng.integers(1, 12)
            edges[r, c : c + 4] = True
        cells[i, 0] = scipy.sparse.csc_matrix(edges)
    gt = np.empty((1, 1), dtype=[("bdry", "O")])
    gt[0, 0] = (cells,)
    out = io.BytesIO()
    scipy.io.savemat(out, {"gt": gt})
    return out.getvalue()


@pytest.fixture(scope="module")
def indir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("places2017")
    rng = np.random.default_rng(0)
    images, classes, instances, boundaries = {}, {}, {}, {}
    for seed, (split, name) in enumerate((s, n) for s, ns in NAMES.items() for n in ns):
        images[f"images/{split}/{name}.jpg"] = jpeg(seed)
        classes[f"annotations_sceneparsing/{split}/{name}.png"] = png(
            rng.integers(0, 151, (12, 16), dtype=np.uint8)
        )
        instances[f"annotations_instance/{split}/{name}.png"] = png(
            rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        )
        boundaries[f"annotations_boundary/{split}/{name}.mat"] = _boundary(seed)
    images["images/readme.txt"] = b"two levels only: not a sample\n"
    write_tar(root / "images.tar", images)
    write_tar(root / "sceneparsing.tar", classes)
    write_tar(root / "annotations_instance.tar", instances)
    write_tar(root / "boundaries.tar", boundaries)
    names = [
        "wall",
        "building, edifice",
        "sky",
        "floor, flooring",
        "tree",
        "ceiling",
        "road, route",
    ]
    names += ["bed ", "windowpane, window ", "grass", "cabinet", "sidewalk, pavement"]
    rows = "".join(f"{i}\t0.{i}\t{i}\t{i}\t{n}\n" for i, n in enumerate(names, 1))
    (root / "objectInfo150.txt").write_text("Idx\tRatio\tTrain\tVal\tName\n" + rows)
    colors = np.random.default_rng(5).integers(0, 256, (150, 3), dtype=np.uint8)
    scipy.io.savemat(root / "color150.mat", {"colors": colors})
    files = np.array(
        ["ADE_train_00000001.jpg", "ADE_train_00000002.jpg", "ADE_val_1.jpg"], dtype=object
    )
    scenes = np.array(["abbey", "bathroom", "~not labeled"], dtype=object)
    out = io.BytesIO()
    index = {"filename": files.reshape(1, -1), "scene": scenes.reshape(1, -1)}
    scipy.io.savemat(out, {"index": index})
    write_zip(
        root / "ADE20K_2016_07_26.zip", {"ADE20K_2016_07_26/index_ade20k.mat": out.getvalue()}
    )
    return root


def test_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings(
        "Places2017", indir, tmp_path, FILES, patches=["findcontours3"]
    )
    training = written["training.msgpack"]
    assert [s["key"] for s in training] == [f"{n}.jpg" for n in NAMES["training"]]
    assert list(training[0]) == [
        "key",
        "image",
        "label",
        "label_image",
        "instance_image",
        "boundary",
    ]
    # datadings' swap, kept: label holds the class PNG, label_image the scene index
    assert training[0]["label"].startswith(b"\x89PNG")
    scenes = places2017.scene_labels()
    assert [s["label_image"] for s in training] == [scenes[f"{n}.jpg"] for n in NAMES["training"]]
    assert len(training[0]["boundary"]) == 2
    assert all(c.dtype == np.int32 and c.shape[1] == 2 for c in training[0]["boundary"][0])


def test_shuffle_with_a_seed_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings(
        "Places2017", indir, tmp_path, FILES, seed=12, patches=["findcontours3"]
    )
    assert len(written["training.msgpack"]) == 3


@pytest.mark.parametrize(
    ("option", "written"),
    [
        ("--class-counts", "Places2017_counts.json"),
        ("--color-map", "Places2017_colors.json"),
        ("--classes", None),
        ("--scenelabels", "Places2017_scenelabels.json"),
    ],
)
def test_modes_print_and_write_what_datadings_does(
    option: str, written: str | None, indir: Path, tmp_path: Path
) -> None:
    (tmp_path / "d").mkdir()  # datadings does not make the folder
    args = ["-s", option]
    expected = printed_by_datadings("Places2017", indir, tmp_path / "d", args)
    actual = printed_by_shardstream("Places2017", indir, tmp_path / "s", args)
    assert actual.rstrip("\n") == expected.rstrip("\n")
    if written is None:
        assert actual.startswith("CLASSES = [\n    'background',\n    'wall', 'building', 'sky',")
        assert "    'cabinet', 'sidewalk', None, None, None,\n]" in actual
    else:
        data = (tmp_path / "s" / written).read_bytes()
        assert data == (tmp_path / "d" / written).read_bytes()
    if option == "--color-map":  # datadings' swap copies blue into red, blue stays
        colors = json.loads(data)
        assert colors[0] == [0, 0, 0] and all(c[0] == c[2] for c in colors)
    if option == "--scenelabels":
        names = places2017_scene_names()
        assert json.loads(data) == {
            "ADE_train_00000001.jpg": names.index("abbey"),
            "ADE_train_00000002.jpg": names.index("bathroom"),
            "ADE_val_1.jpg": names.index("~not labeled"),
        }


def places2017_scene_names() -> list[str]:
    from shardstream.sets import ade20k

    return list(ade20k.scene_names())


def test_scene_list_equals_datadings() -> None:
    from datadings.sets.ADE20k import SCENELABELS
    from datadings.sets.tools import load_json

    assert places2017_scene_names() == SCENELABELS
    assert places2017.scene_labels() == load_json("Places2017_scenelabels.json.xz")
