"""ImageNet (ILSVRC2012) converter on small tars with the official layouts, read without unpacking."""

from __future__ import annotations

import argparse
import io
import pickle
import shutil
import subprocess
import sys
import tarfile

import pytest

from shardstream import MsgpackReader
from shardstream.errors import (
    BadSourceError,
    DatasetFormatError,
    LabelError,
    MissingDependencyError,
    SourceChecksumError,
    SourceNotFoundError,
    UnsafeSourcePathError,
)
from shardstream.sets import imagenet
from shardstream.sets.imagenet import read_devkit_val_labels, read_tar_member, read_val_labels

from .source_fixtures import (
    IMAGENET_CLASSES,
    IMAGENET_VAL_WNIDS,
    build_imagenet_devkit,
    build_imagenet_train,
    build_imagenet_val,
    jpeg,
    listing,
    md5_of,
    serving,
    tar_bytes,
)

TRAIN = "ILSVRC2012_img_train.tar"
VAL = "ILSVRC2012_img_val.tar"
DEVKIT = "ILSVRC2012_devkit_t12.tar.gz"
VAL_NAMES = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 5)]


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory):
    """The three source files, their md5 options, and the JPEGs by key."""
    directory = tmp_path_factory.mktemp("imagenet")
    images = build_imagenet_train(directory / TRAIN)
    images.update(build_imagenet_val(directory / VAL))
    pytest.importorskip("scipy")
    build_imagenet_devkit(directory / DEVKIT)
    md5_options = []
    for name in (TRAIN, VAL, DEVKIT):
        md5_options += ["--md5", f"{name}={md5_of(directory / name)}"]
    return directory, md5_options, images


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    imagenet.add_arguments(parser)
    return parser.parse_args(argv)


def expected_train_keys() -> list[str]:
    keys = []
    for wnid in ("n01484850", "n01440764", "n01443537"):  # archive order
        second = "9" * 120 if wnid == "n01443537" else "9"
        keys += [f"train/{wnid}/{wnid}_10026.JPEG", f"train/{wnid}/{wnid}_{second}.JPEG"]
    return keys


def test_module_attributes():
    assert not hasattr(imagenet, "NAME")  # ILSVRC2012 --layout shardstream, not a converter
    assert [(s.name, s.md5, s.url) for s in imagenet.SOURCES] == [
        (
            TRAIN,
            "1d675b47d978889d74fa0da5fadfb00e",
            "https://image-net.org/data/ILSVRC/2012/ILSVRC2012_img_train.tar",
        ),
        (
            VAL,
            "29b22e2961454d5413ddabcf34fc5622",
            "https://image-net.org/data/ILSVRC/2012/ILSVRC2012_img_val.tar",
        ),
        (
            DEVKIT,
            "fa75699e90414af021442c21a62c3abf",
            "https://image-net.org/data/ILSVRC/2012/ILSVRC2012_devkit_t12.tar.gz",
        ),
    ]


def test_train_and_val_items_with_devkit_labels(source_dir):
    directory, md5_options, images = source_dir
    args = parse("--indir", str(directory), *md5_options)
    splits = imagenet.items(args)
    assert list(splits) == ["train", "val"]
    train, val = list(splits["train"]), list(splits["val"])
    assert [item.key for item in train] == expected_train_keys()
    label = {wnid: i for i, wnid in enumerate(IMAGENET_CLASSES)}
    assert [item.label for item in train] == [
        label[key.split("/")[1]] for key in expected_train_keys()
    ]
    assert [item.label for item in train] == [2, 2, 0, 0, 1, 1]
    assert train[0].source == f"{directory / TRAIN}:n01484850.tar/n01484850_10026.JPEG"
    assert [item.key for item in val] == [f"val/{name}" for name in VAL_NAMES]
    assert [item.label for item in val] == [label[w] for w in IMAGENET_VAL_WNIDS] == [1, 0, 2, 0]
    assert val[2].source == f"{directory / VAL}:{VAL_NAMES[2]}"
    for item in train + val:
        assert item.fields == {}
        assert item.load() == images[item.key]  # the original JPEG bytes, read with one pread
    assert imagenet.label_names(args) == list(IMAGENET_CLASSES)


def test_load_is_a_picklable_range_read(source_dir):
    directory, md5_options, images = source_dir
    item = next(iter(imagenet.items(parse("--indir", str(directory), *md5_options))["train"]))
    payload = pickle.dumps(item.load)
    assert len(payload) < 300  # the path and two numbers, not the image
    assert pickle.loads(payload)() == images[item.key]
    assert item.load.func is read_tar_member


def test_split_option_val_only_with_a_labels_file(source_dir, tmp_path):
    directory, md5_options, images = source_dir
    labels = tmp_path / "val_labels.txt"
    labels.write_text(
        "# file wnid\n" + "".join(f"{n} {w}\n" for n, w in zip(VAL_NAMES, IMAGENET_VAL_WNIDS))
    )
    # no devkit is needed (or looked for) with --val-labels
    indir = tmp_path / "indir"
    indir.mkdir()
    (indir / VAL).symlink_to(directory / VAL)
    args = parse("--indir", str(indir), *md5_options, "--split", "val", "--val-labels", str(labels))
    splits = imagenet.items(args)
    assert list(splits) == ["val"]
    val = list(splits["val"])
    assert [(item.key, item.label) for item in val] == [
        (f"val/{name}", IMAGENET_CLASSES.index(wnid))
        for name, wnid in zip(VAL_NAMES, IMAGENET_VAL_WNIDS)
    ]
    assert [item.load() for item in val] == [images[f"val/{name}"] for name in VAL_NAMES]
    assert imagenet.label_names(args) == list(IMAGENET_CLASSES)


def test_val_only_classes_come_from_the_labels(source_dir, tmp_path):
    directory, md5_options, _ = source_dir
    labels = tmp_path / "labels.txt"
    labels.write_text(
        "".join(f"{n} n01443537\n" for n in VAL_NAMES[:2])
        + "".join(f"{n}\tn01440764\n" for n in VAL_NAMES[2:])
    )
    args = parse(
        "--indir", str(directory), *md5_options, "--split", "val", "--val-labels", str(labels)
    )
    assert imagenet.label_names(args) == ["n01440764", "n01443537"]
    assert [item.label for item in imagenet.items(args)["val"]] == [1, 1, 0, 0]


def test_missing_val_labels_file(source_dir, tmp_path):
    directory, md5_options, _ = source_dir
    missing = tmp_path / "nope.txt"
    args = parse("--indir", str(directory), *md5_options, "--val-labels", str(missing))
    with pytest.raises(SourceNotFoundError, match=rf"^{missing}: --val-labels: no such file$"):
        imagenet.items(args)
    # not needed (nor checked) when only train is converted
    args = parse(
        "--indir", str(directory), *md5_options, "--val-labels", str(missing), "--split", "train"
    )
    assert [item.key for item in imagenet.items(args)["train"]] == expected_train_keys()


def test_kaggle_solution_csv(tmp_path):
    path = tmp_path / "LOC_val_solution.csv"
    path.write_text(
        "ImageId,PredictionString\n"
        "ILSVRC2012_val_00008726,n02119789 255 142 454 329 n02119789 44 21 322 295 \n"
        "ILSVRC2012_val_00000001,n01751748 10 20 30 40 \n"
    )
    assert read_val_labels(path) == {
        "ILSVRC2012_val_00008726.JPEG": "n02119789",
        "ILSVRC2012_val_00000001.JPEG": "n01751748",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a.JPEG n01440764\nb.JPEG\n", "line 2: expected '<file name> <wnid>', got 'b.JPEG'"),
        ("a.JPEG 65\n", r"line 1: '65' is not a wnid \('n' and 8 digits\)"),
        ("a.JPEG n01440764\n\na.JPEG n01440764\n", "line 3: a.JPEG is labelled twice"),
        ("ImageId,PredictionString\nx,\n", "line 2: expected 'ImageId,PredictionString'"),
    ],
)
def test_malformed_labels_file(tmp_path, text, message):
    path = tmp_path / "labels.txt"
    path.write_text(text)
    with pytest.raises(DatasetFormatError, match=rf"^{path}: {message}"):
        read_val_labels(path)


def test_devkit_labels_map_ids_through_meta(source_dir):
    directory, _, _ = source_dir
    assert read_devkit_val_labels(directory / DEVKIT) == dict(zip(VAL_NAMES, IMAGENET_VAL_WNIDS))


def test_devkit_without_scipy_says_what_to_do(source_dir, monkeypatch):
    directory, _, _ = source_dir
    monkeypatch.setitem(sys.modules, "scipy.io", None)  # makes "import scipy.io" fail
    with pytest.raises(MissingDependencyError) as info:
        read_devkit_val_labels(directory / DEVKIT)
    assert str(info.value) == (
        f"{directory / DEVKIT}: reading data/meta.mat (a MATLAB file) needs scipy (pip install "
        "scipy); or pass --val-labels with a '<file name> <wnid>' list"
    )


def test_devkit_with_an_unknown_id(tmp_path):
    pytest.importorskip("scipy")
    path = tmp_path / DEVKIT
    build_imagenet_devkit(path)
    with tarfile.open(path) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    truth = "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt"
    members[truth] = b"1\n7\n"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(DatasetFormatError, match=r"line 2: '7' is not an ILSVRC2012_ID listed"):
        read_devkit_val_labels(path)


def test_devkit_without_meta_is_a_format_error(tmp_path):
    path = tmp_path / DEVKIT
    with tarfile.open(path, "w:gz"):
        pass
    with pytest.raises(DatasetFormatError, match="has no member .../data/ILSVRC2012_validation"):
        read_devkit_val_labels(path)


def test_official_md5_is_checked_by_default(source_dir):
    directory, _, _ = source_dir
    with pytest.raises(SourceChecksumError) as info:
        imagenet.items(parse("--indir", str(directory), "--split", "train"))
    assert info.value.expected == "1d675b47d978889d74fa0da5fadfb00e"
    assert info.value.actual == md5_of(directory / TRAIN)
    assert f"{TRAIN} must have md5 1d675b47d978889d74fa0da5fadfb00e" in str(info.value)


def test_missing_file_names_the_login_requirement(tmp_path, monkeypatch):
    monkeypatch.delenv("SHARDSTREAM_MIRROR", raising=False)
    with pytest.raises(SourceNotFoundError) as info:
        imagenet.items(parse("--indir", str(tmp_path), "--split", "val"))
    assert str(info.value) == (
        f"{tmp_path / VAL}: {VAL} is not in {tmp_path}: pass --download to fetch it from "
        f"https://image-net.org/data/ILSVRC/2012/{VAL}, or put a copy there (image-net.org "
        "needs a login: download it from https://image-net.org in a browser and pass --indir)"
    )


def test_download_from_local_mirror(source_dir, tmp_path):
    directory, md5_options, images = source_dir
    indir = tmp_path / "indir"
    with serving(directory) as server:
        args = parse("--indir", str(indir), "--download", "--mirror", server.url(), *md5_options)
        splits = imagenet.items(args)
        assert sorted(server.requests) == [f"/files/{n}" for n in (DEVKIT, TRAIN, VAL)]
    assert listing(indir) == [DEVKIT, TRAIN, VAL]
    assert {item.key: item.load() for item in splits["train"]} == {
        key: data for key, data in images.items() if key.startswith("train/")
    }


def test_login_page_download_fails_and_saves_nothing(source_dir, tmp_path):
    directory, _, _ = source_dir
    indir = tmp_path / "indir"
    with (
        serving(directory) as server,
        pytest.raises(SourceChecksumError, match="Nothing was saved"),
    ):
        imagenet.items(parse("--indir", str(indir), "--download", "--mirror", server.url("login")))
    assert listing(indir) == []


def write_sources(tmp_path, *, train: bytes | None = None, val: bytes | None = None):
    if train is not None:
        (tmp_path / TRAIN).write_bytes(train)
    if val is not None:
        (tmp_path / VAL).write_bytes(val)
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"{n} {w}\n" for n, w in zip(VAL_NAMES, IMAGENET_VAL_WNIDS)))
    return ["--indir", str(tmp_path), "--skip-verification", "--val-labels", str(labels)]


def test_val_label_unknown_to_train_is_a_label_error(tmp_path):
    train = tar_bytes([("n01440764.tar", tar_bytes([("n01440764_1.JPEG", b"x")]))])
    options = write_sources(tmp_path, train=train, val=tar_bytes([]))
    with pytest.raises(LabelError, match=r"labels.txt: wnid n01443537 \(2 unknown in all\)"):
        imagenet.items(parse(*options))


def test_val_image_without_label_is_a_label_error(tmp_path):
    val = tar_bytes([(VAL_NAMES[0], b"a"), ("ILSVRC2012_val_00000009.JPEG", b"b")])
    options = write_sources(tmp_path, val=val)
    items = iter(imagenet.items(parse(*options, "--split", "val"))["val"])
    assert next(items).key == f"val/{VAL_NAMES[0]}"
    with pytest.raises(LabelError, match="gives no label for ILSVRC2012_val_00000009.JPEG"):
        next(items)


def test_train_archive_with_a_stray_file_is_a_format_error(tmp_path):
    train = tar_bytes([("n01440764.tar", tar_bytes([])), ("README.txt", b"hello")])
    options = write_sources(tmp_path, train=train)
    with pytest.raises(DatasetFormatError, match="member README.txt is not a class tar"):
        imagenet.items(parse(*options, "--split", "train"))


def test_class_member_that_is_not_a_tar(tmp_path):
    train = tar_bytes([("n01440764.tar", b"JPEG" * 300)])
    options = write_sources(tmp_path, train=train)
    with pytest.raises(DatasetFormatError, match="member n01440764.tar is not a tar file"):
        list(imagenet.items(parse(*options, "--split", "train"))["train"])


def test_directory_entries_are_skipped(tmp_path):
    inner = tar_bytes([("n01440764_1.JPEG", b"one")], dirs=["sub"])
    train = tar_bytes([("n01440764.tar", inner)], dirs=["train"])
    options = write_sources(tmp_path, train=train)
    items = list(imagenet.items(parse(*options, "--split", "train"))["train"])
    assert [(item.key, item.label, item.load()) for item in items] == [
        ("train/n01440764/n01440764_1.JPEG", 0, b"one")
    ]


def test_truncated_archive(tmp_path):
    val = tar_bytes([(VAL_NAMES[0], b"a" * 5000), (VAL_NAMES[1], b"b" * 5000)])
    options = write_sources(tmp_path, val=val[:3000])  # ends inside the first image
    items = iter(imagenet.items(parse(*options, "--split", "val"))["val"])
    first = next(items)
    assert first.key == f"val/{VAL_NAMES[0]}"
    with pytest.raises(DatasetFormatError, match="the archive cannot be read to the end"):
        next(items)
    with pytest.raises(BadSourceError) as info:
        first.load()
    assert str(info.value) == (
        f"{tmp_path / VAL}: truncated: 5000 bytes expected at offset 512, the file ends after 2488"
    )


def test_unsafe_member_names_are_refused_unread(tmp_path):
    inner = tar_bytes([("../../etc/passwd", b"secret"), ("n01440764_2.JPEG", b"two")])
    options = write_sources(tmp_path, train=tar_bytes([("n01440764.tar", inner)]))
    refused, accepted = list(imagenet.items(parse(*options, "--split", "train"))["train"])
    assert (refused.key, refused.label) == ("train/n01440764/../../etc/passwd", 0)
    with pytest.raises(UnsafeSourcePathError) as info:
        refused.load()
    assert info.value.source == f"{tmp_path / TRAIN}:../../etc/passwd"
    assert "'..' would escape" in info.value.reason
    assert accepted.load() == b"two"


def test_read_tar_member(tmp_path):
    path = tmp_path / "data"
    path.write_bytes(bytes(range(100)))
    assert read_tar_member(str(path), "x.JPEG", 10, 5) == bytes([10, 11, 12, 13, 14])
    assert read_tar_member(str(path), "x.JPEG", 0, 0) == b""
    with pytest.raises(BadSourceError, match="truncated: 2 bytes expected at offset 99"):
        read_tar_member(str(path), "x.JPEG", 99, 2)
    with pytest.raises(UnsafeSourcePathError, match="it is absolute"):
        read_tar_member(str(path), "/x.JPEG", 0, 1)


# --- end to end: the real console script ------------------------------------------------------------


def shardstream_command(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("shardstream")
    command = [exe] if exe else [sys.executable, "-m", "shardstream"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=300)


def test_write_imagenet_command(source_dir, tmp_path):
    directory, md5_options, images = source_dir
    out = tmp_path / "out"
    result = shardstream_command(
        "write", "imagenet", "--layout", "shardstream", "--indir", str(directory),
        *md5_options, "-o", str(out), "--workers", "2", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("imagenet-train.msgpack: 6 samples")
    assert "\nimagenet-val.msgpack: 4 samples" in result.stdout
    for split, keys in (("train", expected_train_keys()), ("val", [f"val/{n}" for n in VAL_NAMES])):
        with MsgpackReader(out / f"imagenet-{split}.msgpack") as reader:
            samples = [reader.get(i) for i in range(len(reader))]
        assert [s["key"] for s in samples] == keys
        assert all(set(s) == {"key", "image", "label"} for s in samples)
        assert [s["image"] for s in samples] == [images[key] for key in keys]  # original bytes
        labels = (out / f"imagenet-{split}.msgpack.labels.txt").read_text().splitlines()
        assert labels == list(IMAGENET_CLASSES)
        assert [labels[s["label"]] for s in samples] == (
            [key.split("/")[1] for key in keys] if split == "train" else list(IMAGENET_VAL_WNIDS)
        )


def test_write_imagenet_skips_an_unsafe_member_and_reports_it(tmp_path):
    image = jpeg(0)
    inner = tar_bytes([("n01440764_1.JPEG", image), ("../evil.JPEG", b"never read")])
    options = write_sources(tmp_path, train=tar_bytes([("n01440764.tar", inner)]))
    out = tmp_path / "out"
    args = [*options, "--split", "train", "-o", str(out), "--workers", "1", "--quiet"]
    result = shardstream_command("write", "imagenet", "--layout", "shardstream", *args)
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"shardstream write: error: {tmp_path / TRAIN}:n01440764.tar/../evil.JPEG: unsafe "
        "member name '../evil.JPEG': '..' would escape the archive's root; refused"
    )
    assert not out.exists() or listing(out) == []
    result = shardstream_command(
        "write", "ILSVRC2012", "--layout", "shardstream", *args, "--on-error", "skip"
    )
    assert result.returncode == 0, result.stderr
    with MsgpackReader(out / "imagenet-train.msgpack") as reader:
        assert [reader.get(i) for i in range(len(reader))] == [
            {"key": "train/n01440764/n01440764_1.JPEG", "image": image, "label": 0}
        ]
    report = (out / "imagenet-train.msgpack.skipped.tsv").read_text().splitlines()
    assert report[0] == "source\treason"
    assert report[1].startswith(f"{tmp_path / TRAIN}:n01440764.tar/../evil.JPEG\tunsafe member")
    assert len(report) == 2
