"""DirectoryReader on a real tree of JPEG/PNG files; datadings' DirectoryReader as an oracle."""

from __future__ import annotations

import copy
import io
import os

import pytest
from datadings.reader import DirectoryReader as DatadingsDirectoryReader
from PIL import Image

from shardstream.errors import DatasetNotFoundError, DuplicateKeyError, LabelError
from shardstream.read.directory import DirectoryReader, natural_path_order

from ..contracts.reader_conformance import assert_samples_equal, run_reader_conformance
from .conftest import TREE_FILES, TREE_LABELS, tree_contents, write_tree


def _expected(root, names, *, key_of=lambda name: name, label_of=None, info=()):
    contents = tree_contents()
    expected = []
    for name in names:
        label = name.split("/")[0] if label_of is None else label_of(name)
        sample = {
            "key": key_of(name),
            "label": TREE_LABELS.index(label),
            "path": os.path.join(root, name),
            "_additional_info": list(info),
            "_label": label,
            "data": contents[name],
        }
        expected.append((key_of(name), sample))
    return expected


def _by_key(reader):
    return {key: sample for key, sample in reader.iter(yield_key=True)}


def test_conformance_glob(image_tree):
    pattern = f"{image_tree}/{{LABEL}}/**"
    expected = _expected(str(image_tree), TREE_FILES)
    run_reader_conformance(lambda: DirectoryReader(pattern), expected)


def test_conformance_list_file(image_tree, tmp_path):
    listing = tmp_path / "list.tsv"
    listing.write_text("".join(f"{name}\t{name.split('/')[0]}\tx\n" for name in TREE_FILES[::-1]))
    expected = _expected(str(image_tree), TREE_FILES[::-1], info=["x"])
    run_reader_conformance(lambda: DirectoryReader(listing, root_dir=image_tree), expected)


def test_conformance_empty(tmp_path):
    run_reader_conformance(lambda: DirectoryReader(f"{tmp_path}/{{LABEL}}/*.jpg"), [])


def test_keys_labels_and_order(image_tree):
    reader = DirectoryReader(f"{image_tree}/{{LABEL}}/**")
    assert reader.labels == ["b2", "b10", "cat"]
    assert [reader.find_key(i) for i in range(len(reader))] == TREE_FILES
    assert [(s["label"], s["_label"]) for s in reader] == [
        (0, "b2"),
        (0, "b2"),
        (1, "b10"),
        (1, "b10"),
        (2, "cat"),
        (2, "cat"),
        (2, "cat"),
    ]
    assert reader.get(1)["path"] == f"{image_tree}/b2/sub/1.png"
    assert reader.get(1)["_additional_info"] == []


def test_matches_datadings(image_tree):
    pattern = f"{image_tree}/{{LABEL}}/**"
    ours, theirs = DirectoryReader(pattern), DatadingsDirectoryReader(pattern)
    assert ours.labels == list(theirs.labels)
    theirs_by_key = _by_key(theirs)
    assert sorted(theirs_by_key) == sorted(TREE_FILES)
    assert_samples_equal(_by_key(ours), theirs_by_key)


def test_root_dir_with_relative_glob(image_tree):
    reader = DirectoryReader("{LABEL}/*.jpg", root_dir=image_tree)
    assert [(s["key"], s["label"], s["path"]) for s in reader] == [
        ("b2/0.jpg", 0, f"{image_tree}/b2/0.jpg"),
        ("b10/1.jpg", 1, f"{image_tree}/b10/1.jpg"),
        ("cat/2.jpg", 2, f"{image_tree}/cat/2.jpg"),
        ("cat/10.jpg", 2, f"{image_tree}/cat/10.jpg"),
    ]


def test_include_and_exclude(image_tree):
    pattern = f"{image_tree}/{{LABEL}}/**"
    only_jpg = DirectoryReader(pattern, include=["*.jpg"], exclude=["*/cat/1*"])
    assert [s["key"] for s in only_jpg] == ["b2/0.jpg", "b10/1.jpg", "cat/2.jpg"]
    two_includes = DirectoryReader(pattern, include=["*/0.*", "*/sub/*"])
    assert [s["key"] for s in two_includes] == [
        "b2/0.jpg",
        "b2/sub/1.png",
        "b10/0.png",
        "cat/0.png",
    ]
    # labels are collected after filtering
    assert DirectoryReader(pattern, exclude=["*/tree/b*"]).labels == ["cat"]


def test_list_file_with_separator_and_additional_info(image_tree, tmp_path):
    listing = tmp_path / "list.csv"
    listing.write_text("cat/2.jpg,cat,first,1\r\n\nb2/sub/1.png,b2\nb10/0.png,b10,,z\n")
    reader = DirectoryReader(str(listing), separator=",", root_dir=str(image_tree))
    assert reader.labels == ["b2", "b10", "cat"]
    samples = list(reader)
    assert [(s["key"], s["label"], s["_label"], s["_additional_info"]) for s in samples] == [
        ("cat/2.jpg", 2, "cat", ["first", "1"]),
        ("b2/sub/1.png", 0, "b2", []),
        ("b10/0.png", 1, "b10", ["", "z"]),
    ]
    assert samples[0]["path"] == os.path.join(image_tree, "cat/2.jpg")
    assert samples[0]["data"] == (image_tree / "cat/2.jpg").read_bytes()


def test_list_file_matches_datadings(image_tree, tmp_path):
    listing = tmp_path / "list.tsv"
    listing.write_text("cat/2.jpg\tcat\tfirst\tsecond\nb2/sub/1.png\tb2\n")
    ours = DirectoryReader(str(listing), root_dir=str(image_tree))
    theirs = DatadingsDirectoryReader(str(listing), root_dir=str(image_tree))
    assert_samples_equal(list(ours.iter(yield_key=True)), list(theirs.iter(yield_key=True)))


def test_list_file_without_labels(image_tree, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("b2/0.jpg\ncat/2.jpg\n")
    with pytest.raises(LabelError, match="None as label"):
        DirectoryReader(str(listing), root_dir=image_tree)
    reader = DirectoryReader(str(listing), labels=[None], root_dir=image_tree)
    assert [(s["key"], s["label"], s["_label"]) for s in reader] == [
        ("b2/0.jpg", 0, None),
        ("cat/2.jpg", 0, None),
    ]


def test_pattern_without_label(image_tree):
    with pytest.raises(LabelError, match="None as label"):
        DirectoryReader(f"{image_tree}/cat/*")
    reader = DirectoryReader(f"{image_tree}/cat/*", labels=[None], numeric_labels=False)
    assert [(s["key"], s["label"]) for s in reader] == [
        (f"{image_tree}/cat/0.png", None),
        (f"{image_tree}/cat/2.jpg", None),
        (f"{image_tree}/cat/10.jpg", None),
    ]


def test_multiple_patterns_strip_their_common_prefix(tmp_path):
    contents = tree_contents()
    write_tree(tmp_path / "train", {"cat/2.jpg": contents["cat/2.jpg"]})
    write_tree(tmp_path / "val", {"b2/0.jpg": contents["b2/0.jpg"]})
    write_tree(tmp_path / "test", {"b10/1.jpg": contents["b10/1.jpg"]})
    patterns = [f"{tmp_path}/train/{{LABEL}}/*", f"{tmp_path}/val/{{LABEL}}/*"]
    reader = DirectoryReader(patterns)
    assert [(s["key"], s["_label"]) for s in reader] == [
        ("train/cat/2.jpg", "cat"),
        ("val/b2/0.jpg", "b2"),
    ]
    assert_samples_equal(_by_key(reader), _by_key(DatadingsDirectoryReader(patterns)))
    # the common prefix is character-wise, as in datadings
    patterns = [f"{tmp_path}/train/{{LABEL}}/*", f"{tmp_path}/test/{{LABEL}}/*"]
    keys = [s["key"] for s in DirectoryReader(patterns)]
    assert keys == ["rain/cat/2.jpg", "est/b10/1.jpg"]
    assert keys == [s["key"] for s in DatadingsDirectoryReader(patterns)]


def test_patterns_without_common_prefix_strip_their_own(tmp_path):
    contents = tree_contents()
    write_tree(tmp_path / "a", {"cat/2.jpg": contents["cat/2.jpg"]})
    write_tree(tmp_path / "b", {"b2/0.jpg": contents["b2/0.jpg"]})
    reader = DirectoryReader(["a/{LABEL}/*", "b/{LABEL}/*"], root_dir=tmp_path)
    assert [(s["key"], s["label"], s["path"]) for s in reader] == [
        ("cat/2.jpg", 1, f"{tmp_path}/a/cat/2.jpg"),
        ("b2/0.jpg", 0, f"{tmp_path}/b/b2/0.jpg"),
    ]


def test_prefix_is_removed_only_at_the_start(tmp_path):
    write_tree(tmp_path / "d", {"x/d/1.jpg": b"one"})
    reader = DirectoryReader("d/{LABEL}/**", root_dir=tmp_path)
    assert reader.find_key(0) == "x/d/1.jpg"


def test_same_file_from_two_patterns_is_a_duplicate(image_tree):
    patterns = [f"{image_tree}/{{LABEL}}/*.jpg", f"{image_tree}/{{LABEL}}/0.*"]
    with pytest.raises(DuplicateKeyError, match="duplicate key 'b2/0.jpg'"):
        DirectoryReader(patterns)


@pytest.mark.parametrize(
    "pattern",
    ["root/{LABEL}x/*", "root/{LABEL}/{LABEL}/*", "root/**/{LABEL}/*"],
)
def test_misplaced_label_placeholder(pattern):
    with pytest.raises(LabelError, match="pattern 'root/"):
        DirectoryReader(pattern)


def test_initfun_and_convertfun(image_tree):
    def initfun(sample):
        sample["label"] = sample["label"].upper()

    def convertfun(sample):
        with Image.open(io.BytesIO(sample["data"])) as image:
            sample["size"] = image.size
            sample["format"] = image.format
        del sample["data"]

    reader = DirectoryReader(f"{image_tree}/{{LABEL}}/**", initfun=initfun, convertfun=convertfun)
    assert reader.labels == ["B2", "B10", "CAT"]
    sample = reader.get(2)
    assert (sample["key"], sample["label"], sample["_label"]) == ("b10/0.png", 1, "B10")
    assert (sample["size"], sample["format"]) == ((10, 8), "PNG")
    assert reader.get(0)["size"] == (8, 6) and reader.get(0)["format"] == "JPEG"


def test_bytes_read(image_tree):
    reader = DirectoryReader(f"{image_tree}/{{LABEL}}/**")
    sizes = [len(data) for data in tree_contents().values()]
    assert reader.bytes_read == 0
    reader.get(3)
    assert reader.bytes_read == sizes[3]
    duplicate = copy.copy(reader)
    list(reader)
    assert reader.bytes_read == sizes[3] + sum(sizes)
    assert duplicate.bytes_read == sizes[3]
    reader.get(0, raw=True)
    assert reader.bytes_read == sizes[3] + sum(sizes) + sizes[0]


def test_file_removed_after_creation(image_tree):
    reader = DirectoryReader(f"{image_tree}/{{LABEL}}/**")
    (image_tree / "cat/2.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"cat/2\.jpg: file of sample 'cat/2\.jpg'") as e:
        reader.get(5)
    assert isinstance(e.value, FileNotFoundError)
    assert reader.get(4)["key"] == "cat/0.png"


def test_path_objects(image_tree):
    single = DirectoryReader(image_tree / "{LABEL}" / "*.png")
    several = DirectoryReader([image_tree / "{LABEL}" / "*.png"])
    assert [s["key"] for s in single] == [s["key"] for s in several] == ["b10/0.png", "cat/0.png"]


def test_natural_path_order():
    paths = ["b10/2.jpg", "b2/sub/a.jpg", "b2/z.jpg", "b2/10.jpg", "b2/01.jpg", "b2/1.jpg", "a.jpg"]
    assert natural_path_order(paths, sep="/") == [
        "a.jpg",
        "b2/01.jpg",
        "b2/1.jpg",
        "b2/10.jpg",
        "b2/z.jpg",
        "b2/sub/a.jpg",
        "b10/2.jpg",
    ]
    assert natural_path_order(["/r/x2", "/r/x10", "/r/x1/y"], sep="/") == [
        "/r/x2",
        "/r/x10",
        "/r/x1/y",
    ]
