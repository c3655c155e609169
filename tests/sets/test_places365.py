"""Places365: shardstream's writer equals datadings 3.4.7's on miniature tar files of the
standard large and the 256 x 256 challenge variants."""

from __future__ import annotations

from pathlib import Path

import pytest

from shardstream.sets import places365

from .datadings_oracle import compare_with_datadings
from .datadings_sources import jpeg, write_tar

FILES = ["training.msgpack", "validation.msgpack", "testing.msgpack"]


@pytest.fixture(scope="module")
def indir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("places365")
    for size, train in (
        ("large", "train_large_places365standard"),
        ("256", "train_256_places365challenge"),
    ):
        folder = f"data_{size}"
        write_tar(
            root / f"{train}.tar",
            {
                f"{folder}/a/airfield/00000001.jpg": jpeg(1),
                f"{folder}/a/airfield/00000002.jpg": jpeg(2),
                f"{folder}/b/bazaar/indoor/00000001.jpg": jpeg(3),
                f"{folder}/y/youth_hostel/00000001.jpg": jpeg(4),
            },
        )
        write_tar(
            root / f"val_{size}.tar",
            {f"val_{size}/Places365_val_0000000{i}.jpg": jpeg(10 + i) for i in (1, 2, 3)},
        )
        write_tar(
            root / f"test_{size}.tar",
            {f"test_{size}/Places365_test_0000000{i}.jpg": jpeg(20 + i) for i in (1, 2)},
        )
    val = "Places365_val_00000001.jpg 165\nPlaces365_val_00000002.jpg 0\nPlaces365_val_00000003.jpg 364\n"
    test = "Places365_test_00000001.jpg\nPlaces365_test_00000002.jpg\n"
    categories = "".join(f"/{c[0]}/{c} {i}\n" for i, c in enumerate(places365.CLASSES))
    write_tar(
        root / "filelist_places365-standard.tar",
        {
            "categories_places365.txt": categories.encode(),
            "places365_val.txt": val.encode(),
            "places365_test.txt": test.encode(),
        },
    )
    return root


def test_classes_equal_datadings() -> None:
    from datadings.sets.Places365 import CLASSES

    assert list(places365.CLASSES) == CLASSES


def test_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("Places365", indir, tmp_path, FILES)
    training = written["training.msgpack"]
    assert [s["label"] for s in training] == [0, 0, places365.CLASSES.index("bazaar/indoor"), 363]
    assert training[0]["key"] == "data_large/a/airfield/00000001.jpg"
    assert [s["label"] for s in written["validation.msgpack"]] == [165, 0, 364]
    assert [list(s) for s in written["testing.msgpack"]] == [["key", "image"]] * 2


def test_low_res_challenge_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("Places365", indir, tmp_path, FILES, ["-l", "-c"])
    assert written["training.msgpack"][0]["key"] == "data_256/a/airfield/00000001.jpg"
