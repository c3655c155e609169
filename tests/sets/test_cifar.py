"""CIFAR10 / CIFAR100 with ``--layout binary`` (shardstream's earlier files) on small archives with
the official binary layouts. The default, datadings' layout, is tested in test_cifar_datadings.py."""

from __future__ import annotations

import argparse
import io
import os
import pickle
import re
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from PIL import Image

from shardstream import MsgpackReader
from shardstream.errors import (
    DatasetFormatError,
    SourceChecksumError,
    SourceNotFoundError,
)
from shardstream.format.paths import SIDECAR_SUFFIXES
from shardstream.sets import _cifar, cifar10, cifar100

from .source_fixtures import (
    CIFAR10_NAMES,
    CIFAR100_COARSE_NAMES,
    CIFAR100_FINE_NAMES,
    add_bytes,
    build_cifar10,
    build_cifar100,
    listing,
    md5_of,
    serving,
)

C10 = "cifar-10-binary.tar.gz"
C100 = "cifar-100-binary.tar.gz"
TRAIN_BATCHES = [f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)]


def parse(module, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(["--layout", "binary", *argv])


def legacy_items(module, args: argparse.Namespace) -> dict:
    """``module.items(args)`` by split name (the output files are ``<name>-<split>.msgpack``)."""
    prefix = f"{module.NAME.lower()}-"
    splits = module.items(args)
    assert all(name.startswith(prefix) and name.endswith(".msgpack") for name in splits)
    return {name[len(prefix) : -len(".msgpack")]: items for name, items in splits.items()}


@pytest.fixture(scope="module")
def cifar10_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cifar10")
    members = build_cifar10(directory / C10)
    return directory, members, md5_of(directory / C10)


@pytest.fixture(scope="module")
def cifar100_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cifar100")
    members = build_cifar100(directory / C100)
    return directory, members, md5_of(directory / C100)


def decode_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGB", (32, 32))
        return np.asarray(image)


def test_module_attributes():
    assert (cifar10.NAME, cifar100.NAME) == ("CIFAR10", "CIFAR100")
    assert [(s.name, s.md5, s.url) for s in [_cifar.CIFAR10_LAYOUT.source]] == [
        (
            C10,
            "c32a1d4ab5d03f1284b67883e8d87530",
            "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        )
    ]
    assert [(s.name, s.md5, s.url) for s in [_cifar.CIFAR100_LAYOUT.source]] == [
        (
            C100,
            "03b5dce01913d631647c71ecec9e9cb8",
            "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        )
    ]


def test_cifar10_items_keys_labels_pixels(cifar10_dir):
    directory, members, md5 = cifar10_dir
    args = parse(cifar10, "--indir", str(directory), "--md5", f"{C10}={md5}")
    splits = legacy_items(cifar10, args)
    assert list(splits) == ["train", "test"]
    assert (len(splits["train"]), len(splits["test"])) == (125, 25)
    train = list(splits["train"])
    test = list(splits["test"])
    assert [item.key for item in train] == [f"train/{i:06d}" for i in range(125)]
    assert [item.key for item in test] == [f"test/{i:06d}" for i in range(25)]
    # records numbered in batch order 1..5, whatever the order inside the archive
    expected = [(m, r) for m in TRAIN_BATCHES for r in range(25)]
    assert [item.source for item in train] == [f"{directory / C10}:{m}[{r}]" for m, r in expected]
    assert [item.label for item in train] == [int(members[m].labels[r, 0]) for m, r in expected]
    assert all(item.fields == {} for item in train + test)
    test_records = members["cifar-10-batches-bin/test_batch.bin"]
    assert [item.label for item in test] == test_records.labels[:, 0].tolist()
    for index, item in enumerate(train[:30]):
        member, record = expected[index]
        pixels = decode_png(item.load())
        np.testing.assert_array_equal(pixels, members[member].planes[record].transpose(1, 2, 0))
    first = decode_png(test[0].load())  # the fixed pattern: red = 8x, green = 8y, blue = 255
    assert first[5, 3].tolist() == [24, 40, 255]
    assert first[31, 0].tolist() == [0, 248, 255]


def test_cifar10_label_names(cifar10_dir):
    directory, _, md5 = cifar10_dir
    args = parse(cifar10, "--indir", str(directory), "--md5", f"{C10}={md5}")
    assert cifar10.label_names(args) == list(CIFAR10_NAMES)


def test_item_load_is_picklable_and_small(cifar10_dir):
    directory, _, md5 = cifar10_dir
    args = parse(cifar10, "--indir", str(directory), "--md5", f"{C10}={md5}", "--split", "test")
    item = next(iter(legacy_items(cifar10, args)["test"]))
    payload = pickle.dumps(item.load)
    assert len(payload) < 3300  # the 3,072 pixel bytes and the function's name
    assert pickle.loads(payload)() == item.load()


def test_split_option_and_repeated_iteration(cifar10_dir):
    directory, _, md5 = cifar10_dir
    args = parse(cifar10, "--indir", str(directory), "--md5", f"{C10}={md5}", "--split", "test")
    splits = legacy_items(cifar10, args)
    assert list(splits) == ["test"]
    first = [(item.key, item.label, item.load()) for item in splits["test"]]
    second = [(item.key, item.label, item.load()) for item in splits["test"]]
    assert first == second
    assert len(first) == 25


def test_cifar100_fine_and_coarse_labels(cifar100_dir):
    directory, members, md5 = cifar100_dir
    args = parse(cifar100, "--indir", str(directory), "--md5", f"{C100}={md5}")
    splits = legacy_items(cifar100, args)
    assert (len(splits["train"]), len(splits["test"])) == (30, 20)
    for split, count in (("train", 30), ("test", 20)):
        records = members[f"cifar-100-binary/{split}.bin"]
        got = list(splits[split])
        assert [item.key for item in got] == [f"{split}/{i:06d}" for i in range(count)]
        assert [item.label for item in got] == records.labels[:, 1].tolist()
        assert [dict(item.fields) for item in got] == [
            {"coarse_label": int(c)} for c in records.labels[:, 0]
        ]
        for item, planes in zip(got, records.planes):
            np.testing.assert_array_equal(decode_png(item.load()), planes.transpose(1, 2, 0))
    assert cifar100.label_names(args) == list(CIFAR100_FINE_NAMES)
    assert cifar100.coarse_label_names(args) == list(CIFAR100_COARSE_NAMES)


def test_official_md5_is_checked_by_default(cifar10_dir):
    directory, _, md5 = cifar10_dir
    with pytest.raises(SourceChecksumError) as info:
        legacy_items(cifar10, parse(cifar10, "--indir", str(directory)))
    error = info.value
    assert (error.expected, error.actual) == ("c32a1d4ab5d03f1284b67883e8d87530", md5)
    assert str(error).startswith(
        f"{directory / C10}: md5 is {md5} but {C10} must have md5 c32a1d4ab5d03f1284b67883e8d87530"
    )


def test_skip_verification_trusts_the_archive(cifar10_dir):
    directory, _, _ = cifar10_dir
    args = parse(cifar10, "--indir", str(directory), "--skip-verification", "--split", "test")
    assert len(legacy_items(cifar10, args)["test"]) == 25


def test_missing_archive_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("SHARDSTREAM_MIRROR", raising=False)
    with pytest.raises(SourceNotFoundError) as info:
        legacy_items(cifar100, parse(cifar100, "--indir", str(tmp_path), "--no-download"))
    assert str(info.value) == (
        f"{tmp_path / C100}: {C100} is not in {tmp_path}: pass --download to fetch it from "
        f"https://www.cs.toronto.edu/~kriz/{C100}, or put a copy there"
    )


def test_download_from_local_mirror(tmp_path, cifar10_dir):
    served, members, md5 = cifar10_dir
    indir = tmp_path / "indir"
    with serving(served) as server:
        args = parse(
            cifar10,
            "--indir",
            str(indir),
            "--download",
            "--mirror",
            server.url(),
            "--md5",
            f"{C10}={md5}",
        )
        splits = legacy_items(cifar10, args)
        assert server.requests == [f"/files/{C10}"]
    assert listing(indir) == [C10]
    assert md5_of(indir / C10) == md5
    labels = [item.label for item in splits["test"]]
    assert labels == members["cifar-10-batches-bin/test_batch.bin"].labels[:, 0].tolist()


def test_download_of_a_wrong_archive_fails_and_saves_nothing(tmp_path, cifar10_dir):
    served, _, _ = cifar10_dir
    indir = tmp_path / "indir"
    with serving(served) as server, pytest.raises(SourceChecksumError) as info:
        legacy_items(
            cifar10, parse(cifar10, "--indir", str(indir), "--download", "--mirror", server.url())
        )
    assert info.value.expected == "c32a1d4ab5d03f1284b67883e8d87530"
    assert listing(indir) == []


def write_archive(path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            add_bytes(tar, name, data)


def cifar10_members(**changes: bytes | None) -> dict[str, bytes]:
    record = bytes([3]) + bytes(3072)
    members = {name: record * 2 for name in TRAIN_BATCHES}
    members["cifar-10-batches-bin/test_batch.bin"] = record
    members["cifar-10-batches-bin/batches.meta.txt"] = "\n".join(CIFAR10_NAMES).encode()
    for name, data in changes.items():
        full = f"cifar-10-batches-bin/{name}"
        if data is None:
            del members[full]
        else:
            members[full] = data
    return members


def items_of(path):
    return legacy_items(cifar10, parse(cifar10, "--indir", str(path.parent), "--skip-verification"))


def test_missing_member_is_a_format_error(tmp_path):
    path = tmp_path / C10
    write_archive(path, cifar10_members(**{"data_batch_4.bin": None, "batches.meta.txt": None}))
    with pytest.raises(DatasetFormatError) as info:
        items_of(path)
    assert str(info.value) == (
        f"{path}: has no member cifar-10-batches-bin/batches.meta.txt, "
        f"cifar-10-batches-bin/data_batch_4.bin: it is not {C10} (the binary version)"
    )


def test_member_with_a_partial_record_is_a_format_error(tmp_path):
    path = tmp_path / C10
    write_archive(path, cifar10_members(**{"test_batch.bin": bytes(3073 + 100)}))
    with pytest.raises(DatasetFormatError, match=r"test_batch.bin is 3,173 bytes, not a whole"):
        items_of(path)


def test_label_without_a_name_is_a_format_error(tmp_path):
    path = tmp_path / C10
    bad = bytes([3]) + bytes(3072) + bytes([10]) + bytes(3072)
    write_archive(path, cifar10_members(**{"test_batch.bin": bad}))
    test = items_of(path)["test"]
    with pytest.raises(DatasetFormatError) as info:
        list(test)
    assert str(info.value) == (
        f"{path}: cifar-10-batches-bin/test_batch.bin record 1 has label 10, but "
        "cifar-10-batches-bin/batches.meta.txt names only 10 labels"
    )


def test_not_a_gzip_archive(tmp_path):
    path = tmp_path / C10
    path.write_bytes(b"this is not a tar.gz" * 10)
    with pytest.raises(DatasetFormatError, match=r"cannot be read as a .tar.gz archive"):
        items_of(path)


def test_encode_rejects_wrong_length():
    with pytest.raises(DatasetFormatError, match="3072 pixel bytes, got 3073"):
        _cifar.encode_cifar_png(bytes(3073))


# --- end to end: the real console script ------------------------------------------------------------


def shardstream_command(*args: str, env=None) -> subprocess.CompletedProcess:
    exe = shutil.which("shardstream")
    command = [exe] if exe else [sys.executable, "-m", "shardstream"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=300, env=env)


def test_write_cifar10_command(tmp_path, cifar10_dir):
    directory, members, md5 = cifar10_dir
    out = tmp_path / "out"
    result = shardstream_command(
        "write", "cifar10", "--layout", "binary", "--indir", str(directory),
        "--md5", f"{C10}={md5}", "-o", str(out), "--workers", "2", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert re.match(
        r"cifar10-train\.msgpack: 125 samples .* -> .*cifar10-train\.msgpack in ", result.stdout
    )
    assert sorted(p.name for p in out.iterdir() if not p.name.endswith(SIDECAR_SUFFIXES)) == [
        "cifar10-test.msgpack",
        "cifar10-test.msgpack.labels.txt",
        "cifar10-train.msgpack",
        "cifar10-train.msgpack.labels.txt",
    ]
    assert (out / "cifar10-train.msgpack.labels.txt").read_text() == "".join(
        f"{name}\n" for name in CIFAR10_NAMES
    )
    expected = {
        "train": [(m, r) for m in TRAIN_BATCHES for r in range(25)],
        "test": [("cifar-10-batches-bin/test_batch.bin", r) for r in range(25)],
    }
    for split, records in expected.items():
        with MsgpackReader(out / f"cifar10-{split}.msgpack") as reader:
            assert len(reader) == len(records)
            for index, (member, record) in enumerate(records):
                sample = reader.get(index)
                assert set(sample) == {"key", "image", "label"}
                assert sample["key"] == f"{split}/{index:06d}"
                assert sample["label"] == members[member].labels[record, 0]
                np.testing.assert_array_equal(
                    decode_png(sample["image"]), members[member].planes[record].transpose(1, 2, 0)
                )


def test_write_cifar100_command_downloads_from_a_local_mirror(tmp_path, cifar100_dir):
    served, members, md5 = cifar100_dir
    indir, out = tmp_path / "indir", tmp_path / "out"
    with serving(served) as server:
        env = {**os.environ, "SHARDSTREAM_MIRROR": server.url()}
        result = shardstream_command(
            "write", "cifar100", "--layout", "binary", "--indir", str(indir), "--download",
            "--md5", f"{C100}={md5}", "--split", "test", "-o", str(out), "--workers", "1",
            "--quiet",
            env=env,
        )  # fmt: skip
        assert server.requests == [f"/files/{C100}"]
    assert result.returncode == 0, result.stderr
    assert listing(indir) == [C100]
    records = members["cifar-100-binary/test.bin"]
    with MsgpackReader(out / "cifar100-test.msgpack") as reader:
        samples = [reader.get(i) for i in range(len(reader))]
    assert [s["key"] for s in samples] == [f"test/{i:06d}" for i in range(20)]
    assert [s["label"] for s in samples] == records.labels[:, 1].tolist()
    assert [s["coarse_label"] for s in samples] == records.labels[:, 0].tolist()
    assert (out / "cifar100-test.msgpack.labels.txt").read_text().splitlines() == list(
        CIFAR100_FINE_NAMES
    )


def test_write_command_fails_loudly_on_the_official_md5(tmp_path, cifar10_dir):
    directory, _, md5 = cifar10_dir
    out = tmp_path / "out"
    result = shardstream_command(
        "write", "cifar10", "--layout", "binary", "--indir", str(directory), "-o", str(out),
        "--quiet",
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"shardstream write: error: {directory / C10}: md5 is {md5} but {C10} must have md5 "
        "c32a1d4ab5d03f1284b67883e8d87530: the file is corrupt, incomplete or a different "
        "version. Delete it and download it again (--download)"
    )
    assert not out.exists()
