"""``shardstream write FORMAT`` through the real console script, on small demo-made sets."""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest
from PIL import Image

from shardstream import MsgpackReader, ShardedReader
from shardstream.cli.write import converter_modules, parse_size
from shardstream.format.manifest import load_manifest
from shardstream.sets.demo import iter_demo_samples
from tests.write.demo_tree import (
    CLASS_NAMES,
    NOT_AN_IMAGE,
    copy_tree,
    demo_tree,
    expected_keys,
    jpeg,
    tree_files,
    truncated_jpeg,
)

FORMATS = ["demo", "imagefolder", "list", "webdataset", "zip"]


def shardstream_command(*args: str, cwd=None) -> subprocess.CompletedProcess:
    exe = shutil.which("shardstream")
    command = [exe] if exe else [sys.executable, "-m", "shardstream"]
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return demo_tree(tmp_path_factory.mktemp("demo"))


def read(path) -> list[dict]:
    with MsgpackReader(path) as reader:
        return list(reader)


def test_without_format_exits_2_listing_the_formats():
    result = shardstream_command("write")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: shardstream write")
    listed = result.stderr.rsplit("name a FORMAT: ", 1)[1].strip().split(", ")
    assert set(FORMATS) <= set(listed) and listed == sorted(listed)
    help_text = shardstream_command("write", "--help")
    assert help_text.returncode == 0
    assert all(name in help_text.stdout for name in FORMATS)
    for name in FORMATS:
        assert name in converter_modules()


def test_imagefolder_to_a_folder_with_labels_file(tree, tmp_path):
    root = copy_tree(tree, tmp_path / "root")
    out = tmp_path / "out"
    result = shardstream_command(
        "write", "imagefolder", str(root), "-o", str(out), "--workers", "2", "--quiet",
        "--class-names",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    output = out / "imagefolder-train.msgpack"
    assert result.stdout.startswith("train: 12 samples (")
    assert f"-> {output} in " in result.stdout
    samples = read(output)
    files = tree_files(root)
    assert [s["key"] for s in samples] == expected_keys(root)
    assert [s["image"] for s in samples] == [files[s["key"]] for s in samples]
    assert [CLASS_NAMES[s["label"]] for s in samples] == [s["key"].split("/")[0] for s in samples]
    assert [s["class_name"] for s in samples] == [s["key"].split("/")[0] for s in samples]
    labels = out / "imagefolder-train.msgpack.labels.txt"
    assert labels.read_text() == "".join(f"{name}\n" for name in CLASS_NAMES)
    assert not (out / "imagefolder-train.msgpack.skipped.tsv").exists()

    again = shardstream_command("write", "imagefolder", str(root), "-o", str(out), "--quiet")
    assert again.returncode == 1
    assert again.stderr.startswith(f"shardstream write: error: {output}: exists")
    forced = shardstream_command("write", "imagefolder", str(root), "-o", str(out), "-y", "--quiet")
    assert forced.returncode == 0, forced.stderr


def add_bad_files(root):
    good = next(iter(sorted(root.rglob("*.jpg")))).read_bytes()
    cat = root / CLASS_NAMES[1]
    (cat / "a_truncated.jpg").write_bytes(truncated_jpeg(good))
    (cat / "b_empty.jpg").write_bytes(b"")
    (cat / "c_notes.jpg").write_bytes(NOT_AN_IMAGE)
    (cat / "d_dangling.jpg").symlink_to(root / "missing.jpg")
    return [
        cat / name for name in ("a_truncated.jpg", "b_empty.jpg", "c_notes.jpg", "d_dangling.jpg")
    ]


def test_bad_sources_raise_naming_the_file_or_are_skipped_and_reported(tree, tmp_path):
    root = copy_tree(tree, tmp_path / "root")
    bad = add_bad_files(root)
    out = tmp_path / "out"
    failed = shardstream_command("write", "imagefolder", str(root), "-o", str(out), "--quiet")
    assert failed.returncode == 1
    assert failed.stderr.startswith(f"shardstream write: error: {bad[0]}: truncated JPEG")
    assert "--on-error skip" in failed.stderr
    assert list(out.iterdir()) == []  # nothing half-written, no temp files

    skipped = shardstream_command(
        "write", "imagefolder", str(root), "-o", str(out), "--on-error", "skip", "--quiet",
        "--workers", "2",
    )  # fmt: skip
    assert skipped.returncode == 0, skipped.stderr
    report = out / "imagefolder-train.msgpack.skipped.tsv"
    assert f"skipped 4 bad source(s), listed in {report}" in skipped.stderr
    assert report.read_text().splitlines() == [
        "source\treason",
        f"{bad[0]}\ttruncated JPEG: no end-of-image marker after the image data",
        f"{bad[1]}\tempty file (0 bytes)",
        f"{bad[2]}\tnot an image (no image format recognised in its {len(NOT_AN_IMAGE):,} bytes)",
        f"{bad[3]}\tcannot read: FileNotFoundError: No such file or directory",
    ]
    assert len(read(out / "imagefolder-train.msgpack")) == 12


def test_empty_folder_exits_1(tmp_path):
    result = shardstream_command("write", "imagefolder", str(tmp_path), "-o", str(tmp_path / "o"))
    assert result.returncode == 1
    assert "nothing to convert: no files match '{LABEL}/**'" in result.stderr
    assert not (tmp_path / "o").exists()


def test_shards_and_transcoding(tree, tmp_path):
    root = copy_tree(tree, tmp_path / "root")
    result = shardstream_command(
        "write", "imagefolder", str(root), "-o", str(tmp_path / "set.manifest"), "--quiet",
        "--shard-size", "4K", "--max-side", "64", "--quality", "50",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shards = load_manifest(tmp_path / "set.manifest").shards
    assert len(shards) > 1
    assert f" in {len(shards)} shards -> {tmp_path / 'set.manifest'} in " in result.stdout
    assert all(shard.bytes <= 4096 for shard in shards)
    with ShardedReader(tmp_path / "set.manifest") as reader:
        samples = list(reader)
    assert [s["key"] for s in samples] == expected_keys(root)
    originals = tree_files(root)
    for sample in samples:
        with Image.open(io.BytesIO(originals[sample["key"]])) as source:
            width, height = source.size
        with Image.open(io.BytesIO(sample["image"])) as image:
            assert max(image.size) == 64
            expected = (64, round(height * 64 / width))
            if height > width:
                expected = (round(width * 64 / height), 64)
            assert image.size == expected


def test_zip_with_an_unsafe_member(tree, tmp_path):
    archive = tmp_path / "a.zip"
    files = tree_files(tree)
    with zipfile.ZipFile(archive, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr("../escape.jpg", jpeg((8, 8)))
    out = tmp_path / "z.msgpack"
    failed = shardstream_command("write", "zip", str(archive), "-o", str(out), "--quiet")
    assert failed.returncode == 1
    assert f"{archive}:../escape.jpg: unsafe member name '../escape.jpg'" in failed.stderr
    ok = shardstream_command(
        "write", "zip", str(archive), "-o", str(out), "--quiet", "--on-error", "skip"
    )
    assert ok.returncode == 0, ok.stderr
    assert [s["key"] for s in read(out)] == list(files)
    assert (
        (tmp_path / "z.msgpack.skipped.tsv")
        .read_text()
        .splitlines()[1]
        .startswith(f"{archive}:../escape.jpg\tunsafe member name")
    )
    assert not (tmp_path.parent / "escape.jpg").exists()


def test_list_webdataset_and_demo_formats(tree, tmp_path):
    files = tree_files(tree)
    listing = tmp_path / "files.csv"
    listing.write_text("".join(f"{key},{key.split('/')[0]}\n" for key in files))
    result = shardstream_command(
        "write", "list", str(listing), "--root-dir", str(tree), "-o", str(tmp_path / "l"), "--quiet"
    )
    assert result.returncode == 0, result.stderr
    samples = read(tmp_path / "l" / "list-train.msgpack")
    assert [(s["key"], s["image"]) for s in samples] == list(files.items())
    assert [CLASS_NAMES[s["label"]] for s in samples] == [k.split("/")[0] for k in files]

    for number, keys in enumerate((list(files)[:6], list(files)[6:])):
        with tarfile.open(tmp_path / f"wds-{number}.tar", "w") as tar:
            for index, key in enumerate(keys):
                for suffix, data in ((".jpg", files[key]), (".cls", str(index).encode())):
                    info = tarfile.TarInfo(key[:-4] + suffix)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    result = shardstream_command(
        "write", "webdataset", str(tmp_path / "wds-{0..1}.tar"), "-o", str(tmp_path / "w.msgpack"),
        "--quiet", "--workers", "2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    samples = read(tmp_path / "w.msgpack")
    assert [(s["key"], s["image"]) for s in samples] == [(k[:-4], v) for k, v in files.items()]
    assert [s["label"] for s in samples] == [*range(6), *range(6)]

    result = shardstream_command(
        "write", "demo", "--images", "5", "--classes", "2", "-o", str(tmp_path / "d"), "--quiet"
    )
    assert result.returncode == 0, result.stderr
    expected = list(iter_demo_samples(num_images=5, num_classes=2))
    assert read(tmp_path / "d" / "demo-train.msgpack") == expected


@pytest.mark.parametrize(
    "args",
    [
        ("imagefolder", ".", "--shard-size", "12X"),
        ("imagefolder", ".", "--workers", "0"),
        ("imagefolder", ".", "--quality", "101"),
        ("imagefolder", ".", "--on-error", "ignore"),
        ("nope",),
    ],
)
def test_usage_errors_exit_2(args):
    result = shardstream_command("write", *args)
    assert result.returncode == 2
    assert "usage: shardstream write" in result.stderr


def test_parse_size():
    assert parse_size("1048576") == 1 << 20
    assert parse_size("512K") == 512 << 10
    assert parse_size("512M") == parse_size("512MiB") == parse_size("512m") == 512 << 20
    assert parse_size("1.5G") == 3 << 29
    assert parse_size("2T") == 2 << 40
    assert parse_size("500MB") == 500_000_000 and parse_size("1kb") == 1000
    for bad in ("", "12X", "-1M", "0", "M"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_size(bad)
