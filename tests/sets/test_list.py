"""The list converter: CSV/TSV list files, labels, root folder and bad entries."""

from __future__ import annotations

import pytest

from shardstream import MsgpackReader
from shardstream.errors import (
    BadSourceError,
    DuplicateKeyError,
    LabelError,
    NothingToConvertError,
    SourceNotFoundError,
)
from shardstream.sets.list import read_list, scan_list
from shardstream.write.conversion import convert
from tests.write.demo_tree import jpeg


@pytest.fixture
def images(tmp_path):
    root = tmp_path / "images"
    (root / "x").mkdir(parents=True)
    contents = {f"x/{i}.jpg": jpeg((8 + i, 8), seed=i) for i in range(4)}
    for name, data in contents.items():
        (root / name).write_bytes(data)
    return root, contents


def test_csv_with_header_class_names_and_root_dir(tmp_path, images):
    root, contents = images
    listing = tmp_path / "files.csv"
    listing.write_text("path,label\nx/0.jpg,b10\n\nx/1.jpg,b2\n x/2.jpg , b10 ,extra\n")
    scan = scan_list(listing, root_dir=root, header=True, class_names=True)
    assert scan.label_names == ("b2", "b10")
    assert [(i.key, i.label, i.source) for i in scan.items] == [
        ("x/0.jpg", 1, str(root / "x/0.jpg")),
        ("x/1.jpg", 0, str(root / "x/1.jpg")),
        ("x/2.jpg", 1, str(root / "x/2.jpg")),
    ]
    convert(scan.items, tmp_path / "l.msgpack", workers=2, progress=False)
    with MsgpackReader(tmp_path / "l.msgpack") as reader:
        assert [(s["key"], s["label"], s["class_name"]) for s in reader] == [
            ("x/0.jpg", 1, "b10"),
            ("x/1.jpg", 0, "b2"),
            ("x/2.jpg", 1, "b10"),
        ]
        assert [s["image"] for s in reader] == [contents[f"x/{i}.jpg"] for i in range(3)]


def test_tsv_int_labels_label_files_and_unlabelled(tmp_path, images):
    root, _ = images
    tsv = tmp_path / "files.txt"
    tsv.write_text(f"{root}/x/0.jpg\t7\n{root}/x/1.jpg\t3\n")
    scan = scan_list(tsv, int_labels=True)
    assert [i.label for i in scan.items] == [7, 3] and scan.label_names == ()
    names = tmp_path / "names.txt"
    names.write_text("7\n3\n")
    assert [i.label for i in scan_list(tsv, labels=names).items] == [0, 1]
    assert [i.label for i in scan_list(tsv, labels=["3", "7"]).items] == [1, 0]
    bare = tmp_path / "bare.txt"
    bare.write_text("x/0.jpg\nx/1.jpg\n")
    assert [i.label for i in scan_list(bare, root_dir=root).items] == [None, None]
    assert [line.number for line in read_list(str(tsv))] == [1, 2]


def test_listing_faults(tmp_path):
    cases = {
        "dup.csv": ("a.jpg,x\na.jpg,y\n", DuplicateKeyError, "line 2 lists 'a.jpg' again"),
        "mixed.csv": ("a.jpg,x\nb.jpg\n", LabelError, "line 2 has no label column"),
        "int.csv": ("a.jpg,x\n", LabelError, "label 'x' is not an int"),
        "empty.csv": ("\n\n", NothingToConvertError, "the list names no file"),
    }
    for name, (text, error, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(error, match=message):
            scan_list(tmp_path / name, int_labels=name == "int.csv")
    (tmp_path / "two.csv").write_text("a.jpg,x\nb.jpg,y\n")
    with pytest.raises(LabelError, match="line 2: label 'y' is not in the given labels"):
        scan_list(tmp_path / "two.csv", labels=["x"])
    with pytest.raises(SourceNotFoundError, match="list file not found"):
        scan_list(tmp_path / "missing.csv")


def test_missing_files_and_folders_are_bad_sources(tmp_path, images):
    root, _ = images
    listing = tmp_path / "l.csv"
    listing.write_text("x/0.jpg,a\nx/gone.jpg,a\nx,b\nx/1.jpg,b\n")
    scan = scan_list(listing, root_dir=root)
    with pytest.raises(BadSourceError, match=r"x/gone\.jpg: cannot read: FileNotFoundError"):
        convert(scan.items, tmp_path / "o.msgpack", progress=False)
    report = convert(scan.items, tmp_path / "o.msgpack", progress=False, on_error="skip")
    assert report.skipped == (
        (str(root / "x/gone.jpg"), "cannot read: FileNotFoundError: No such file or directory"),
        (str(root / "x"), "not a regular file (a directory)"),
    )
    assert report.written == 2
