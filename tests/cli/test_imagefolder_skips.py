"""``write imagefolder`` takes images by extension, as torchvision's ImageFolder, and counts the rest."""

from __future__ import annotations

import pytest

from shardstream import MsgpackReader
from shardstream.errors import NothingToConvertError
from shardstream.read.list import load_labels
from shardstream.sets.imagefolder import IMG_EXTENSIONS, scan_folder
from tests.cli.demo_data import shardstream
from tests.write.demo_tree import jpeg

IMAGES = ["cat/1.jpg", "cat/2.JPEG", "cat/3.webp", "dog/4.png", "dog/5.TIFF", "dog/6.pgm"]
OTHERS = ["cat/notes.txt", "cat/Thumbs.db", "dog/README", "dog/7.jpg.part"]


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    for path in IMAGES:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(jpeg((8, 8)))  # the bytes are copied, never decoded
    for path in OTHERS:
        (root / path).write_bytes(b"not an image")
    return root


def test_torchvision_extensions():
    assert IMG_EXTENSIONS == (
        ".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp",
    )  # fmt: skip


def test_scan_takes_images_by_extension_in_any_case_and_counts_the_others(tree):
    scan = scan_folder(tree)
    assert [item.key for item in scan.items] == IMAGES
    assert scan.skipped == len(OTHERS)
    assert scan.label_names == ("cat", "dog")
    everything = scan_folder(tree, extensions=None)
    assert everything.skipped == 0
    assert sorted(item.key for item in everything.items) == sorted(IMAGES + OTHERS)


def test_a_folder_without_images_names_what_it_skipped(tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "a.txt").write_bytes(b"x")
    with pytest.raises(NothingToConvertError, match="1 file matched, none an image"):
        scan_folder(tmp_path)


def test_write_prints_the_count_and_writes_only_images(tree, tmp_path):
    out = tmp_path / "out.msgpack"
    result = shardstream("write", "imagefolder", tree, "-o", out, "-q")
    assert result.returncode == 0, result.stderr
    assert f"train: skipped {len(OTHERS)} non-image files" in result.stdout
    with MsgpackReader(out) as reader:
        assert list(reader.keys) == IMAGES
        assert [s["label"] for s in reader] == [0, 0, 0, 1, 1, 1]
    assert load_labels(f"{out}.labels.txt") == ["cat", "dog"]


def test_all_files_takes_every_file_so_a_non_image_is_a_bad_source(tree, tmp_path):
    out = tmp_path / "all.msgpack"
    result = shardstream("write", "imagefolder", tree, "-o", out, "-q", "--all-files")
    assert result.returncode == 1
    assert "not an image" in result.stderr and not out.exists()
    result = shardstream(
        "write", "imagefolder", tree, "-o", out, "-q", "--all-files", "--on-error", "skip"
    )
    assert result.returncode == 0, result.stderr
    assert "non-image" not in result.stdout
    assert f"skipped {len(OTHERS)} bad source(s)" in result.stderr
    with MsgpackReader(out) as reader:
        assert list(reader.keys) == IMAGES
