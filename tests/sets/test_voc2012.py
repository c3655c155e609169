"""VOC2012: shardstream's writer equals datadings 3.4.7's on a miniature VOCtrainval tar."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shardstream.sets import voc2012

from .datadings_oracle import compare_with_datadings, printed_by_datadings, printed_by_shardstream

ROOT = "VOCdevkit/VOC2012"


def _jpeg(seed: int, size: tuple[int, int] = (24, 16)) -> bytes:
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(out, "JPEG")
    return out.getvalue()


def _label_png(seed: int) -> bytes:
    """A palette PNG as VOC ships them: class indices, 255 for the void border."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, 21, (16, 24), dtype=np.uint8)
    index[0, :] = 255
    index[1, 0] = 99  # a colour that is no class (as datadings, it becomes 0)
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[:21] = voc2012.COLORS
    palette[255] = (224, 224, 192)
    palette[99] = (1, 2, 3)
    image = Image.fromarray(index, "P")
    image.putpalette(palette.ravel().tolist())
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def indir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("voc")
    splits = {"train": ["2007_000032", "2007_000039", "2008_000123"], "val": ["2007_000033"]}
    with tarfile.open(root / "VOCtrainval_11-May-2012.tar", "w") as tar:
        _add(tar, f"{ROOT}/Annotations/2007_000032.xml", b"<annotation/>")
        for split, names in splits.items():
            _add(
                tar, f"{ROOT}/ImageSets/Segmentation/{split}.txt", "\n".join(names).encode() + b"\n"
            )
        for seed, name in enumerate(sorted(n for names in splits.values() for n in names)):
            _add(tar, f"{ROOT}/JPEGImages/{name}.jpg", _jpeg(seed))
            _add(tar, f"{ROOT}/SegmentationClass/{name}.png", _label_png(seed))
        _add(tar, f"{ROOT}/JPEGImages/2012_999999.jpg", _jpeg(99))  # in no split list
    return root


def test_colors_are_the_devkit_colour_map() -> None:
    from datadings.sets.VOC2012 import COLORS

    assert voc2012.COLORS.dtype == np.uint8
    assert voc2012.COLORS.tolist() == COLORS.tolist()
    assert voc2012.CLASSES[0] == "background" and voc2012.CLASSES[20] == "tvmonitor"


def test_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("VOC2012", indir, tmp_path, ["train.msgpack", "val.msgpack"])
    train = written["train.msgpack"]
    assert [s["key"] for s in train] == ["2007_000032", "2007_000039", "2008_000123"]
    assert list(train[0]) == ["key", "image", "label_image"]
    labels = np.asarray(Image.open(io.BytesIO(train[0]["label_image"])))
    assert labels.dtype == np.uint8 and labels.shape == (16, 24)
    assert labels[0].tolist() == [0] * 24 and labels[1, 0] == 0  # void and unknown -> 0
    assert labels.max() <= 20


def test_shuffle_with_a_seed_equals_datadings_after_random_seed(
    indir: Path, tmp_path: Path
) -> None:
    written = compare_with_datadings(
        "VOC2012",
        indir,
        tmp_path,
        ["train.msgpack", "val.msgpack"],
        seed=3,
        ours=["--workers", "2"],
    )
    keys = [s["key"] for s in written["train.msgpack"]]
    assert sorted(keys) == ["2007_000032", "2007_000039", "2008_000123"]


def test_calculate_weights_prints_what_datadings_prints(indir: Path, tmp_path: Path) -> None:
    args = ["-s", "--calculate-weights"]
    expected = printed_by_datadings("VOC2012", indir, tmp_path / "d", args)
    actual = printed_by_shardstream("VOC2012", indir, tmp_path / "s", args)
    assert actual.rstrip("\n") == expected.rstrip("\n")  # datadings ends with an empty line
    assert actual.startswith("train weights\n3 samples analyzed\nINDEXES = [\n    0,\n")
    assert "val weights\n1 samples analyzed\n" in actual
    assert not (tmp_path / "s").exists()


def test_a_listed_image_missing_from_the_tar_stops_or_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from shardstream.cli import main

    from .datadings_oracle import read_samples
    from .datadings_sources import write_tar

    members = {
        f"{ROOT}/ImageSets/Segmentation/train.txt": b"2007_000032\n2007_000099\n",
        f"{ROOT}/ImageSets/Segmentation/val.txt": b"2007_000032\n",
        f"{ROOT}/JPEGImages/2007_000032.jpg": _jpeg(0),
        f"{ROOT}/SegmentationClass/2007_000032.png": _label_png(0),
        f"{ROOT}/SegmentationClass/2007_000099.png": _label_png(1),  # its JPEG is missing
    }
    write_tar(tmp_path / "VOCtrainval_11-May-2012.tar", members)
    argv = ["write", "VOC2012", str(tmp_path), "-s", "--shuffle", "no", "--quiet", "-y"]
    assert main(argv) == 1
    assert f"{ROOT}/JPEGImages/2007_000099.jpg: no such member" in capsys.readouterr().err
    assert main([*argv, "--on-error", "skip"]) == 0
    assert [s["key"] for s in read_samples(tmp_path / "train.msgpack")] == ["2007_000032"]
    assert [s["key"] for s in read_samples(tmp_path / "val.msgpack")] == ["2007_000032"]
