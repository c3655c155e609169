"""ZipFileReader on a real ZIP of JPEG/PNG files; datadings' ZipFileReader as an oracle."""

from __future__ import annotations

import copy
import multiprocessing
import pickle
import zipfile

import pytest
from datadings.reader import ZipFileReader as DatadingsZipFileReader

from shardstream.errors import (
    DatasetFormatError,
    DatasetNotFoundError,
    LabelError,
    NotADatasetFileError,
)
from shardstream.read.zipfile import ZipFileReader

from ..contracts.reader_conformance import assert_samples_equal, run_reader_conformance
from .conftest import TREE_LABELS, tree_contents

#: Archive order of the members (deliberately not sorted): ZipFileReader keeps it.
MEMBERS = ["cat/10.jpg", "b10/0.png", "b2/0.jpg", "cat/0.png", "b2/sub/1.png", "b10/1.jpg"]


def _write_zip(path, prefix=""):
    contents = tree_contents()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{prefix}README.txt", "top-level file, no label\n")
        archive.writestr(zipfile.ZipInfo(f"{prefix}cat/"), "")  # a directory entry
        for name in MEMBERS:
            archive.writestr(prefix + name, contents[name])
    return path


def _expected(prefix=""):
    contents = tree_contents()
    return [
        (
            name,
            {
                "key": name,
                "label": TREE_LABELS.index(name.split("/")[0]),
                "path": prefix + name,
                "_additional_info": [],
                "_label": name.split("/")[0],
                "data": contents[name],
            },
        )
        for name in MEMBERS
    ]


@pytest.fixture
def image_zip(tmp_path):
    return _write_zip(tmp_path / "images.zip")


def test_conformance_default_pattern(image_zip):
    run_reader_conformance(lambda: ZipFileReader(image_zip), _expected())


def test_conformance_prefixed_pattern(tmp_path):
    path = _write_zip(tmp_path / "prefixed.zip", prefix="train/")
    expected = _expected(prefix="train/")
    run_reader_conformance(lambda: ZipFileReader(path, "train/{LABEL}/*"), expected)


def test_conformance_empty(image_zip):
    run_reader_conformance(lambda: ZipFileReader(image_zip, "{LABEL}/*.gif"), [])


def test_keys_labels_and_archive_order(image_zip):
    with ZipFileReader(image_zip) as reader:
        assert reader.labels == ["b2", "b10", "cat"]
        assert [(s["key"], s["label"]) for s in reader] == [
            ("cat/10.jpg", 2),
            ("b10/0.png", 1),
            ("b2/0.jpg", 0),
            ("cat/0.png", 2),
            ("b2/sub/1.png", 0),
            ("b10/1.jpg", 1),
        ]


@pytest.mark.parametrize(("prefix", "pattern"), [("", "{LABEL}/**"), ("train/", "train/{LABEL}/*")])
def test_matches_datadings(tmp_path, prefix, pattern):
    path = _write_zip(tmp_path / "images.zip", prefix=prefix)
    theirs = DatadingsZipFileReader(path, pattern)
    try:
        with ZipFileReader(path, pattern) as ours:
            assert ours.labels == list(theirs.labels)
            assert_samples_equal(list(ours.iter(yield_key=True)), list(theirs.iter(yield_key=True)))
            assert [ours.get(i, raw=True) for i in range(len(ours))] == [
                theirs.get(i, raw=True) for i in range(len(theirs))
            ]
    finally:
        theirs._zipfile.close()


def test_key_drops_whole_components_before_label(tmp_path):
    path = _write_zip(tmp_path / "images.zip", prefix="train/")
    with ZipFileReader(path, "*/{LABEL}/*.jpg") as reader:
        assert [(s["key"], s["path"], s["_label"]) for s in reader] == [
            ("cat/10.jpg", "train/cat/10.jpg", "cat"),
            ("b2/0.jpg", "train/b2/0.jpg", "b2"),
            ("b10/1.jpg", "train/b10/1.jpg", "b10"),
        ]


def test_pattern_without_label(image_zip):
    with pytest.raises(LabelError, match="None as label"):
        ZipFileReader(image_zip, "cat/*")
    with ZipFileReader(image_zip, ["cat/*", "README.txt"], labels=[None]) as reader:
        assert [(s["key"], s["label"], s["_label"]) for s in reader] == [
            ("cat/10.jpg", 0, None),
            ("cat/0.png", 0, None),
            ("README.txt", 0, None),
        ]
        assert reader.get(2)["data"] == b"top-level file, no label\n"


def test_include_exclude(image_zip):
    with ZipFileReader(image_zip, include=["*.png"], exclude=["*/sub/*"]) as reader:
        assert [s["key"] for s in reader] == ["b10/0.png", "cat/0.png"]
        assert reader.labels == ["b10", "cat"]


def test_list_file(image_zip, tmp_path):
    listing = tmp_path / "members.txt"
    listing.write_text("b2/sub/1.png;b2;extra\ncat/0.png;cat\n")
    with ZipFileReader(image_zip, str(listing), separator=";") as reader:
        samples = list(reader)
    assert [(s["key"], s["path"], s["label"], s["_additional_info"]) for s in samples] == [
        ("b2/sub/1.png", "b2/sub/1.png", 0, ["extra"]),
        ("cat/0.png", "cat/0.png", 1, []),
    ]
    assert samples[1]["data"] == tree_contents()["cat/0.png"]


def test_list_file_naming_a_missing_member(image_zip, tmp_path):
    listing = tmp_path / "members.txt"
    listing.write_text("cat/0.png\tcat\ncat/404.png\tcat\n")
    with pytest.raises(
        DatasetFormatError, match=r"members\.txt: lists 'cat/404\.png', which is not"
    ):
        ZipFileReader(image_zip, str(listing))


def test_initfun_convertfun_and_bytes_read(image_zip):
    sizes = {name: len(data) for name, data in tree_contents().items()}

    def convertfun(sample):
        sample["size"] = len(sample.pop("data"))

    reader = ZipFileReader(
        image_zip, initfun=lambda s: s.update(group=s["key"][0]), convertfun=convertfun
    )
    with reader:
        assert reader.bytes_read == 0
        sample = reader.get(1)
        assert (sample["key"], sample["group"], sample["size"]) == (
            "b10/0.png",
            "b",
            sizes["b10/0.png"],
        )
        assert reader.bytes_read == sizes["b10/0.png"]
        list(reader)
        assert reader.bytes_read == sizes["b10/0.png"] + sum(sizes[name] for name in MEMBERS)


def test_close_and_lazy_reopen(image_zip):
    reader = ZipFileReader(image_zip)
    first = reader._zip
    assert first is not None and first.fp is not None
    reader.close()
    assert reader._zip is None and first.fp is None
    assert reader.get(0)["key"] == "cat/10.jpg"
    assert reader._zip is not None and reader._zip is not first
    duplicate = copy.copy(reader)
    assert duplicate._zip is None
    assert duplicate.get(1)["key"] == "b10/0.png"
    assert duplicate._zip is not reader._zip
    duplicate.close()
    reader.close()


def test_pickle_round_trip(image_zip):
    with ZipFileReader(image_zip) as reader:
        reader.get(0)
        clone = pickle.loads(pickle.dumps(reader))
    with clone:
        assert_samples_equal(list(clone.iter(yield_key=True)), _expected())


def _read_all_in_child(reader, queue):
    queue.put([s["data"] for s in reader.iter(0)])
    reader.close()


def test_forked_child_reads_its_own_handle(image_zip):
    context = multiprocessing.get_context("fork")
    with ZipFileReader(image_zip) as reader:
        reader.get(0)  # the handle is open before forking
        queue = context.Queue()
        child = context.Process(target=_read_all_in_child, args=(reader, queue))
        child.start()
        parent_data = [s["data"] for s in reader.iter(0)]
        child_data = queue.get(timeout=30)
        child.join(timeout=30)
    assert child.exitcode == 0
    want = [tree_contents()[name] for name in MEMBERS]
    assert parent_data == want
    assert child_data == want


def test_not_a_zip_file(tmp_path):
    path = tmp_path / "fake.zip"
    path.write_bytes(b"PK but not really a zip archive")
    with pytest.raises(DatasetFormatError, match=r"fake\.zip: not a valid ZIP file") as info:
        ZipFileReader(path)
    assert isinstance(info.value, ValueError)


def test_directory_instead_of_zip(tmp_path):
    with pytest.raises(NotADatasetFileError, match="is a directory, not a ZIP file") as info:
        ZipFileReader(tmp_path)
    assert isinstance(info.value, IsADirectoryError)
    assert info.value.path == str(tmp_path)


def test_missing_zip(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"nope\.zip: ZIP file not found") as info:
        ZipFileReader(tmp_path / "nope.zip")
    assert isinstance(info.value, FileNotFoundError)
