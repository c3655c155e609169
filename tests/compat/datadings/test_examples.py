"""datadings' documented examples run with only ``datadings.`` replaced by
``shardstream.compat.datadings.`` and give what they give on the real datadings 3.4.7."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .examples import (
    GUIDE_WRITER,
    MIRROR,
    READ_USAGE,
    TORCH_COMPOSE,
    TORCH_LOADER,
    WRITE_DIRECTORY,
    WRITE_DUMMY,
    run_example,
)

pytest.importorskip("datadings")

DATA_FILES = (".msgpack", ".msgpack.offsets", ".msgpack.keys", ".msgpack.key_hashes")


def _both(tmp_path: Path, source: str, setup=None, seed: int = 0) -> tuple:
    """Run ``source`` in two fresh folders, against datadings and the mirror."""
    results = []
    for package in ("datadings.", MIRROR):
        cwd = tmp_path / package.strip(".").replace(".", "_")
        cwd.mkdir()
        if setup is not None:
            setup(cwd)
        out, namespace = run_example(source, package, cwd, seed=seed)
        results.append((cwd, out, namespace))
    return results[0], results[1]


def _same_files(a: Path, b: Path, stem: str) -> None:
    for suffix in DATA_FILES:
        assert (a / (stem + suffix)).read_bytes() == (b / (stem + suffix)).read_bytes(), suffix
    assert (a / (stem + ".msgpack.filter")).read_bytes() == (
        b / (stem + ".msgpack.filter")
    ).read_bytes()


def test_basic_write_example_writes_datadings_bytes(tmp_path):
    (dd, out_dd, _), (ss, out_ss, _) = _both(tmp_path, WRITE_DUMMY)
    _same_files(dd, ss, "dummy")
    # md5 files list the same hashes (the order of lines is the writer's)
    assert sorted((dd / "dummy.msgpack.md5").read_text().splitlines()) == sorted(
        (ss / "dummy.msgpack.md5").read_text().splitlines()
    )


def _tree(cwd: Path) -> None:
    for label, names in (("a", ("a1", "a2")), ("b", ("b3", "b4"))):
        (cwd / "yourdataset" / label).mkdir(parents=True)
        for name in names:
            (cwd / "yourdataset" / label / name).write_bytes(f"content of {name}".encode())


def test_directory_tree_example_writes_the_documented_samples(tmp_path):
    (dd, _, _), (ss, _, _) = _both(tmp_path, WRITE_DIRECTORY, setup=_tree)
    from datadings.reader import MsgpackReader as DatadingsReader

    from shardstream.compat.datadings.reader import MsgpackReader

    with MsgpackReader(ss / "yourdataset.msgpack") as reader:
        samples = list(reader)
    with DatadingsReader(dd / "yourdataset.msgpack") as reader:
        theirs = list(reader)
    # datadings globs in the file system's order, shardstream in natural path order
    for sample in samples + theirs:
        sample["path"] = sample["path"].split("/", 1)[1]  # drop the tmp folder name
    assert samples == sorted(theirs, key=lambda s: s["key"])
    assert [(s["key"], s["label"], s["_label"], s["data"]) for s in samples] == [
        ("a/a1", 0, "a", b"content of a1"),
        ("a/a2", 0, "a", b"content of a2"),
        ("b/b3", 1, "b", b"content of b3"),
        ("b/b4", 1, "b", b"content of b4"),
    ]


def _mit1003(cwd: Path) -> None:
    from datadings.writer import FileWriter

    with FileWriter(cwd / "MIT1003.msgpack", disable=True) as writer:
        for i in range(300):
            key = "i14020903.jpeg" if i == 7 else f"img{i:04d}.jpeg"
            writer.write({"key": key, "label": i % 5, "image": bytes(i % 50)})


def test_usage_examples_read_as_datadings_reads(tmp_path):
    (_, out_dd, _), (_, out_ss, _) = _both(tmp_path, READ_USAGE, setup=_mit1003)
    assert out_ss == out_dd
    lines = out_ss.splitlines()
    assert lines[300:302] == ["i14020903.jpeg", "img0100.jpeg"]
    assert "300" in lines
    assert sum(line.startswith("cycled") for line in lines) == 401
    assert sorted(line for line in lines if line.startswith("quasi")) == sorted(
        "quasi " + line.split()[0] for line in lines[:300]
    )


def test_compose_rng_example_prints_datadings_output(tmp_path):
    pytest.importorskip("torch")
    (_, out_dd, _), (_, out_ss, _) = _both(tmp_path, TORCH_COMPOSE, seed=42)
    assert out_ss == out_dd
    assert len(out_ss.splitlines()) == 10
    assert out_ss.splitlines()[0].startswith("{'a': ")


def _jpegs(cwd: Path) -> None:
    from datadings.writer import FileWriter

    rng = np.random.default_rng(0)
    with FileWriter(cwd / "train.msgpack", disable=True) as writer:
        for i in range(16):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (32, 40, 3), dtype=np.uint8)).save(buf, "JPEG")
            writer.write({"key": str(i), "image": buf.getvalue(), "label": i})


def test_dataloader_example_gives_datadings_batches(tmp_path):
    pytest.importorskip("torchvision")
    (_, out_dd, _), (_, out_ss, _) = _both(tmp_path, TORCH_LOADER, setup=_jpegs)
    # random crops differ run to run; epochs, batch shapes and labels in order do not
    assert out_ss == out_dd
    lines = out_ss.splitlines()
    assert lines[0] == "Epoch 0"
    assert sum(line.startswith("(4, 3, 24, 24)") for line in lines) == 8
    labels = [
        int(v)
        for line in lines
        if line.startswith("(")
        for v in line.split("[", 1)[1].rstrip("]").split(",")
    ]
    assert sorted(labels) == sorted(list(range(16)) * 2)


def _zips(cwd: Path) -> None:
    for name in ("trainSet.zip", "testSet.zip"):
        with zipfile.ZipFile(cwd / name, "w") as z:
            for i in range(5):
                info = zipfile.ZipInfo(f"{name[:4]}{i}.jpg", date_time=(2020, 1, 1, 0, 0, 0))
                z.writestr(info, bytes([i]) * (10 + i))


def test_custom_dataset_guide_writer_runs(tmp_path):
    pytest.importorskip("shardstream.sets.types")  # on main; this branch may lack it

    def setup(cwd: Path) -> None:
        _zips(cwd)

    sums = {}
    probe = tmp_path / "probe"
    probe.mkdir()
    _zips(probe)
    for name in ("trainSet.zip", "testSet.zip"):
        sums[name] = hashlib.md5((probe / name).read_bytes()).hexdigest()
    source = GUIDE_WRITER.replace("TRAIN_MD5", repr(sums["trainSet.zip"])).replace(
        "TEST_MD5", repr(sums["testSet.zip"])
    )
    source = source.replace("ARGV", "['.', '-y', '-t', '2']")
    (dd, out_dd, _), (ss, out_ss, _) = _both(tmp_path, source, setup=setup)
    for split in ("train", "test"):
        _same_files(dd, ss, split)
    assert out_ss == out_dd
    assert out_ss.splitlines() == [
        "Verifying trainSet.zip",
        "Verifying testSet.zip",
        "5 samples written",
        "5 samples written",
    ]
