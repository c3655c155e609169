"""ILSVRC2012: shardstream's writer equals datadings 3.4.7's on miniature train and val tars in
the real layout (per-class tars inside the train tar, a flat val tar), its image checks included:
JPEGs kept, CMYK and PNG re-encoded, ``--compress`` re-encoding and downscaling."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shardstream.sets import ilsvrc2012

from .datadings_oracle import compare_with_datadings, read_samples
from .datadings_sources import jpeg, write_tar

FILES = ["train.msgpack", "val.msgpack"]


def encoded(array: np.ndarray, mode: str, fmt: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).convert(mode).save(out, fmt)
    return out.getvalue()


def gradient(width: int, height: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)


def tar_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    import tarfile

    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture(scope="module")
def indir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ilsvrc2012")
    classes = {
        "n01443537": {  # not the first synset: archive order counts, not label order
            "n01443537_1.JPEG": jpeg(1),
            "n01443537_2.JPEG": encoded(gradient(40, 30), "L", "JPEG"),  # grey: kept
            "n01443537_3.JPEG": encoded(gradient(30, 40), "CMYK", "JPEG"),  # re-encoded
        },
        "n01440764": {
            "n01440764_9.JPEG": encoded(gradient(400, 300), "RGB", "JPEG"),  # big enough
            "n01440764_10.JPEG": encoded(gradient(20, 20), "RGB", "PNG"),  # a PNG: re-encoded
            "n01440764_11.JPEG": encoded(gradient(600, 500), "RGB", "PNG"),  # downscaled
        },
        "n15075141": {"n15075141_7.JPEG": jpeg(7, (16, 24))},
    }
    write_tar(
        root / "ILSVRC2012_img_train.tar",
        {f"{wnid}.tar": tar_bytes(images) for wnid, images in classes.items()},
    )
    write_tar(
        root / "ILSVRC2012_img_val.tar",
        {f"ILSVRC2012_val_{n:08d}.JPEG": jpeg(20 + n) for n in (3, 1, 2)},
    )
    return root


def test_module_attributes() -> None:
    from datadings.sets import ILSVRC2012_write
    from datadings.sets.ILSVRC2012_synsets import SYNSET_WORDS

    assert ilsvrc2012.NAME == "ILSVRC2012" and ilsvrc2012.ALIASES == ("imagenet",)
    assert [(s.name, s.md5, s.url) for s in ilsvrc2012.SOURCES] == [
        (f["path"], f["md5"], f["url"]) for f in ILSVRC2012_write.FILES.values()
    ]
    assert ilsvrc2012.synset_words() == dict(SYNSET_WORDS)
    assert list(ilsvrc2012.synset_words())[:2] == ["n01440764", "n01443537"]
    labels = ilsvrc2012.val_labels()
    assert len(labels) == 50_000 and labels["ILSVRC2012_val_00000001.JPEG"] == 65
    from datadings.sets.tools import open_comp

    with open_comp("ILSVRC2012_val.txt.xz", "rt", encoding="utf8") as f:
        theirs = dict(line.strip("\n").split(" ", 1) for line in f)
    assert labels == {name: int(label) for name, label in theirs.items()}


def test_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("ILSVRC2012", indir, tmp_path, FILES)
    train = written["train.msgpack"]
    assert [(s["key"], s["label"]) for s in train] == [
        ("n01443537_1.JPEG", 1), ("n01443537_2.JPEG", 1), ("n01443537_3.JPEG", 1),
        ("n01440764_9.JPEG", 0), ("n01440764_10.JPEG", 0), ("n01440764_11.JPEG", 0),
        ("n15075141_7.JPEG", 999),
    ]  # fmt: skip
    assert list(train[0]) == ["key", "image", "label"]
    source = indir / "ILSVRC2012_img_train.tar"
    data = source.read_bytes()
    kept = [s["key"] for s in train if s["image"] in data]
    assert kept == ["n01443537_1.JPEG", "n01443537_2.JPEG", "n01440764_9.JPEG", "n15075141_7.JPEG"]
    sizes = {s["key"]: Image.open(io.BytesIO(s["image"])).size for s in train}
    assert sizes["n01440764_11.JPEG"] == (500, 417)  # downscaled to a longer side of 500
    assert {Image.open(io.BytesIO(s["image"])).format for s in train} == {"JPEG"}
    val = written["val.msgpack"]
    assert [(s["key"], s["label"]) for s in val] == [
        ("ILSVRC2012_val_00000003.JPEG", 230),
        ("ILSVRC2012_val_00000001.JPEG", 65),
        ("ILSVRC2012_val_00000002.JPEG", 970),
    ]


def test_compress_and_subsampling_equal_datadings(indir: Path, tmp_path: Path) -> None:
    args = ["--compress", "90", "--subsampling", "420"]
    written = compare_with_datadings("ILSVRC2012", indir, tmp_path, FILES, args)
    train = {s["key"]: s["image"] for s in written["train.msgpack"]}
    data = (indir / "ILSVRC2012_img_train.tar").read_bytes()
    assert train["n01440764_9.JPEG"] not in data  # 400 x 300: re-encoded at quality 90
    assert train["n01443537_1.JPEG"] in data  # small: kept


def test_imagenet_is_another_name_for_it(indir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "shardstream", "write", "imagenet", str(indir), "-o", str(out),
         "-y", "-s", "--quiet", "--workers", "2"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.glob("*.msgpack")) == FILES
    keys = [s["key"] for s in read_samples(out / "val.msgpack")]
    assert keys == [f"ILSVRC2012_val_{n:08d}.JPEG" for n in (3, 1, 2)]
    assert not list(out.glob("*.labels.txt"))


def test_an_unreadable_image_is_skipped_with_on_error_skip(tmp_path: Path) -> None:
    write_tar(
        tmp_path / "ILSVRC2012_img_train.tar",
        {"n01440764.tar": tar_bytes({"a.JPEG": jpeg(0), "b.JPEG": b"garbage"})},
    )
    write_tar(tmp_path / "ILSVRC2012_img_val.tar", {"ILSVRC2012_val_00000001.JPEG": jpeg(1)})
    command = [sys.executable, "-m", "shardstream", "write", "ILSVRC2012", str(tmp_path), "-y",
               "-s", "--quiet", "--workers", "1"]  # fmt: skip
    failed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1
    assert "n01440764.tar/b.JPEG: not an image simplejpeg or Pillow can read" in failed.stderr
    result = subprocess.run(
        [*command, "--on-error", "skip"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert [s["key"] for s in read_samples(tmp_path / "train.msgpack")] == ["a.JPEG"]


def test_a_member_that_is_no_synset_tar_is_a_format_error(tmp_path: Path) -> None:
    write_tar(tmp_path / "ILSVRC2012_img_train.tar", {"n99999999.tar": tar_bytes({})})
    write_tar(tmp_path / "ILSVRC2012_img_val.tar", {})
    result = subprocess.run(
        [sys.executable, "-m", "shardstream", "write", "ilsvrc2012", str(tmp_path), "-y", "-s",
         "--quiet"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert "member n99999999.tar is not <ILSVRC2012 synset>.tar" in result.stderr
