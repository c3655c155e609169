"""The imagefolder converter: keys, natsorted labels, selection, bad entries, end to end."""

from __future__ import annotations

import glob
import os

import pytest

from shardstream import DirectoryReader, MsgpackReader
from shardstream.errors import LabelError, NothingToConvertError, SourceNotFoundError
from shardstream.read.walk import find_paths
from shardstream.sets.imagefolder import scan_folder
from shardstream.write.conversion import convert
from tests.write.demo_tree import CLASS_NAMES, copy_tree, demo_tree, expected_keys, jpeg, tree_files


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return demo_tree(tmp_path_factory.mktemp("demo"))


def test_keys_labels_and_sources_follow_directory_reader(tree, tmp_path):
    root = copy_tree(tree, tmp_path / "root")
    scan = scan_folder(root)
    keys = expected_keys(root)
    assert [item.key for item in scan.items] == keys
    assert [item.label for item in scan.items] == [CLASS_NAMES.index(k.split("/")[0]) for k in keys]
    assert [item.source for item in scan.items] == [str(root / k) for k in keys]
    assert scan.label_names == tuple(CLASS_NAMES)
    assert all(item.fields == {} for item in scan.items)
    with DirectoryReader(str(root / "{LABEL}" / "**")) as reader:
        assert [(s["key"], s["label"]) for s in reader] == [
            (item.key, item.label) for item in scan.items
        ]
        assert reader.labels == CLASS_NAMES


def test_convert_end_to_end_with_class_names(tree, tmp_path):
    root = copy_tree(tree, tmp_path / "root")
    scan = scan_folder(root, class_names=True)
    convert(scan.items, tmp_path / "out.msgpack", workers=2, progress=False)
    files = tree_files(root)
    with MsgpackReader(tmp_path / "out.msgpack") as reader:
        samples = list(reader)
    assert [s["key"] for s in samples] == expected_keys(root)
    assert [s["image"] for s in samples] == [files[s["key"]] for s in samples]
    assert [s["class_name"] for s in samples] == [s["key"].split("/")[0] for s in samples]
    assert [CLASS_NAMES[s["label"]] for s in samples] == [s["class_name"] for s in samples]


def test_labels_are_natsorted_and_keys_cover_any_depth(tmp_path):
    for path in ["10/a.jpg", "2/b/c/d.jpg", "2/a10.jpg", "2/a9.jpg", "b1/x.jpg"]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(jpeg((8, 8)))
    (tmp_path / "top-level.jpg").write_bytes(jpeg((8, 8)))  # not in a class folder
    scan = scan_folder(tmp_path)
    assert scan.label_names == ("2", "10", "b1")
    assert [(i.key, i.label) for i in scan.items] == [
        ("2/a9.jpg", 0),
        ("2/a10.jpg", 0),
        ("2/b/c/d.jpg", 0),
        ("10/a.jpg", 1),
        ("b1/x.jpg", 2),
    ]


def test_pattern_include_exclude_and_unlabelled(tmp_path):
    for path in ["train/cat/1.jpg", "train/cat/notes.txt", "train/dog/2.png", "val/cat/3.jpg"]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"x")
    scan = scan_folder(tmp_path, pattern="train/{LABEL}/*", exclude=["*.txt"])
    assert [(i.key, i.label) for i in scan.items] == [
        ("train/cat/1.jpg", 0),
        ("train/dog/2.png", 1),
    ]
    scan = scan_folder(tmp_path, pattern="*/cat/*", include=["*.jpg"])
    assert [(i.key, i.label) for i in scan.items] == [
        ("train/cat/1.jpg", None),
        ("val/cat/3.jpg", None),
    ]
    assert scan.label_names == ()
    with pytest.raises(LabelError):
        scan_folder(tmp_path, pattern="**/{LABEL}/*")


def test_dangling_links_are_sources_but_folders_are_not(tmp_path):
    (tmp_path / "cat" / "sub").mkdir(parents=True)
    (tmp_path / "cat" / "1.jpg").write_bytes(jpeg((8, 8)))
    os.symlink(tmp_path / "nowhere.jpg", tmp_path / "cat" / "2.jpg")
    assert [i.key for i in scan_folder(tmp_path).items] == ["cat/1.jpg", "cat/2.jpg"]


def test_empty_and_missing_folders(tmp_path):
    with pytest.raises(NothingToConvertError, match=r"no files match '\{LABEL\}/\*\*'"):
        scan_folder(tmp_path)
    (tmp_path / "cat").mkdir()
    with pytest.raises(NothingToConvertError, match="nothing to convert"):
        scan_folder(tmp_path)
    with pytest.raises(SourceNotFoundError, match="folder not found"):
        scan_folder(tmp_path / "missing")


def test_the_default_pattern_walk_finds_what_glob_finds(tmp_path):
    for path in ["a/1.jpg", "a/b/c/2.jpg", "a/.hidden.jpg", ".h/3.jpg", "a/.d/4.jpg", "top.jpg"]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"x")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    os.symlink(tmp_path / "a" / "b", tmp_path / "linked")  # a link to a folder is followed
    os.symlink(tmp_path / "gone.jpg", tmp_path / "a" / "dangling.jpg")
    found = glob.glob("*/**", root_dir=tmp_path, recursive=True)
    expected = sorted(p for p in found if not os.path.isdir(tmp_path / p))
    assert sorted(p.path for p in find_paths("*/**", root_dir=str(tmp_path))) == expected
    assert expected == ["a/1.jpg", "a/b/c/2.jpg", "a/dangling.jpg", "linked/c/2.jpg"]
