"""CIFAR10 / CIFAR100: shardstream's writers equal datadings 3.4.7's on miniature python-version
archives whose batches are Python 2 style pickles (as the official files are), and the batch
reader runs no code a pickle names."""

from __future__ import annotations

import io
import pickle
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from shardstream.errors import DatasetFormatError, UnsafeDataError
from shardstream.sets import _cifar_python, cifar10, cifar100

from .datadings_oracle import compare_with_datadings


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Writes str and bytes as Python 2 ``str`` (BINSTRING), as cPickle wrote the batches."""

    dispatch = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def _save_str(self, obj: str | bytes) -> None:
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = _save_str
    dispatch[str] = _save_str


def py2_pickle(value: object) -> bytes:
    """``value`` pickled as Python 2's cPickle (protocol 2) wrote CIFAR's batches."""
    out = io.BytesIO()
    _Py2Pickler(out, protocol=2).dump(value)
    # numpy 2 names its reconstructor numpy._core; the official files name numpy.core
    return out.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def batch(seed: int, names: list[str], labels: dict[str, list[int]]) -> bytes:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (len(names), 3072), dtype=np.uint8)
    data[0, :1024] = np.arange(1024) % 256  # the red plane, row-major
    return py2_pickle(
        {
            "batch_label": f"batch {seed}",
            **labels,
            "data": data,
            "filenames": names,
        }
    )


def write_tar_gz(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def cifar10_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar10py")
    members = {"cifar-10-batches-py/batches.meta": py2_pickle({"label_names": ["a"] * 10})}
    for number in (1, 3, 2, 5, 4):  # not in name order, like the official archive
        names = [f"img_{number}_{i}.png" for i in range(3)]
        labels = {"labels": [(number + i) % 10 for i in range(3)]}
        members[f"cifar-10-batches-py/data_batch_{number}"] = batch(number, names, labels)
    members["cifar-10-batches-py/test_batch"] = batch(9, ["t0.png", "t1.png"], {"labels": [9, 0]})
    members["cifar-10-batches-py/readme.html"] = b"<html/>"
    write_tar_gz(root / "cifar-10-python.tar.gz", members)
    return root


@pytest.fixture(scope="module")
def cifar100_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar100py")
    train_names = ["apple_s_1.png", "dup.png", "bee_s_2.png", "dup.png", "dup.png"]
    fine = [0, 99, 5, 7, 42]
    coarse = [19, 0, 3, 4, 11]
    members = {
        "cifar-100-python/meta": py2_pickle({"fine_label_names": ["x"] * 100}),
        "cifar-100-python/test": batch(
            2, ["dup.png", "z.png"], {"fine_labels": [1, 2], "coarse_labels": [3, 4]}
        ),
        "cifar-100-python/train": batch(
            1, train_names, {"fine_labels": fine, "coarse_labels": coarse}
        ),
    }
    write_tar_gz(root / "cifar-100-python.tar.gz", members)
    return root


def test_module_attributes() -> None:
    assert (cifar10.NAME, cifar100.NAME) == ("CIFAR10", "CIFAR100")
    assert cifar10.DATADINGS is True and cifar100.DATADINGS is True
    from datadings.sets import CIFAR10_write, CIFAR100_write

    for module, theirs in ((cifar10, CIFAR10_write), (cifar100, CIFAR100_write)):
        (source,) = module.SOURCES
        want = theirs.FILES["all"]
        assert (source.name, source.md5, source.url) == (want["path"], want["md5"], want["url"])


def test_cifar10_equals_datadings(cifar10_dir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings(
        "CIFAR10", cifar10_dir, tmp_path, ["train.msgpack", "test.msgpack"]
    )
    train = written["train.msgpack"]
    assert [s["key"] for s in train] == [f"img_{b}_{i}.png" for b in range(1, 6) for i in range(3)]
    assert list(train[0]) == ["key", "image", "label"]
    assert [s["label"] for s in train[:3]] == [1, 2, 3]
    pixels = np.asarray(Image.open(io.BytesIO(train[0]["image"])))
    assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8
    assert pixels[0, :4, 0].tolist() == [0, 1, 2, 3] and pixels[1, 0, 0] == 32  # planes, rows
    assert [s["key"] for s in written["test.msgpack"]] == ["t0.png", "t1.png"]


def test_cifar10_seeded_shuffle_equals_datadings(cifar10_dir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings(
        "CIFAR10", cifar10_dir, tmp_path, ["train.msgpack", "test.msgpack"], seed=5
    )
    keys = [s["key"] for s in written["train.msgpack"]]
    assert sorted(keys) == sorted(f"img_{b}_{i}.png" for b in range(1, 6) for i in range(3))
    assert keys != sorted(keys)


def test_cifar100_equals_datadings_with_renamed_duplicates(
    cifar100_dir: Path, tmp_path: Path
) -> None:
    written = compare_with_datadings(
        "CIFAR100", cifar100_dir, tmp_path, ["train.msgpack", "test.msgpack"]
    )
    train = written["train.msgpack"]
    # datadings' quirk: a name seen before in the split gets its count appended
    assert [s["key"] for s in train] == [
        "apple_s_1.png", "dup.png", "bee_s_2.png", "dup.png2", "dup.png3"
    ]  # fmt: skip
    assert list(train[0]) == ["key", "image", "label", "coarse_label"]
    assert [(s["label"], s["coarse_label"]) for s in train] == [
        (0, 19), (99, 0), (5, 3), (7, 4), (42, 11)
    ]  # fmt: skip
    assert [s["key"] for s in written["test.msgpack"]] == ["dup.png", "z.png"]  # per split


def test_cifar100_seeded_shuffle_equals_datadings(cifar100_dir: Path, tmp_path: Path) -> None:
    compare_with_datadings(
        "CIFAR100", cifar100_dir, tmp_path, ["train.msgpack", "test.msgpack"], seed=11
    )


def test_read_batch_rebuilds_arrays_lists_and_names() -> None:
    data = np.arange(2 * 3072, dtype=np.uint32).astype(np.uint8).reshape(2, 3072)
    loaded = _cifar_python.read_batch(
        py2_pickle({"data": data, "labels": [3, 4], "filenames": ["a.png", "b.png"]}), "x"
    )
    assert set(loaded) == {b"data", b"labels", b"filenames"}
    assert loaded[b"data"].dtype == np.uint8 and loaded[b"data"].shape == (2, 3072)
    assert loaded[b"data"].tobytes() == data.tobytes()
    assert loaded[b"labels"] == [3, 4] and loaded[b"filenames"] == [b"a.png", b"b.png"]
    wide = np.array([[1, 2], [3, 4]], dtype="<i4").T  # multi-byte, Fortran order
    rebuilt = _cifar_python.read_batch(py2_pickle({"w": wide}), "x")[b"w"]
    assert rebuilt.dtype == np.dtype("<i4") and rebuilt.tolist() == [[1, 3], [2, 4]]


class _Boom:
    def __reduce__(self) -> tuple:
        return (subprocess.call, (["touch", "/tmp/never"],))


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps({b"data": _Boom()}, protocol=2),
        pickle.dumps({b"x": print}, protocol=4),
        pickle.dumps({b"x": b"bytes"}, protocol=2),  # Python 3 bytes: _codecs.encode
    ],
)
def test_read_batch_refuses_every_other_global(payload: bytes) -> None:
    with pytest.raises(UnsafeDataError, match="^archive:member: the batch pickle refers to "):
        _cifar_python.read_batch(payload, "archive:member")
    assert not Path("/tmp/never").exists()


def test_read_batch_refuses_object_arrays() -> None:
    with pytest.raises(DatasetFormatError, match="no plain integer array"):
        _cifar_python.read_batch(py2_pickle({"x": np.array([1.5])}), "archive:member")


def test_read_batch_names_the_global_it_refuses() -> None:
    with pytest.raises(UnsafeDataError, match="refers to subprocess.call; only numpy arrays"):
        _cifar_python.read_batch(pickle.dumps(_Boom(), protocol=4), "archive:member")
    with pytest.raises(DatasetFormatError, match="archive:member: not a readable batch pickle"):
        _cifar_python.read_batch(b"\x80\x02}q\x00(", "archive:member")


def test_a_batch_that_runs_code_is_refused_by_the_command(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    evil = pickle.dumps({b"data": _Touch(str(marker))}, protocol=4)
    write_tar_gz(
        tmp_path / "cifar-100-python.tar.gz",
        {"cifar-100-python/train": evil, "cifar-100-python/test": evil},
    )
    result = subprocess.run(
        [sys.executable, "-m", "shardstream", "write", "cifar100", str(tmp_path), "-s", "-y",
         "--quiet", "--no-download"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "cifar-100-python/train: the batch pickle refers to pathlib" in result.stderr
    assert not marker.exists()
    assert not (tmp_path / "train.msgpack").exists()


class _Touch:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (Path.touch, (Path(self.path),))


_VALID = py2_pickle(
    {
        "data": np.arange(2 * 3072, dtype=np.uint32).astype(np.uint8).reshape(2, 3072),
        "labels": [1, 2],
        "filenames": ["a.png", "b.png"],
        "shape": (2, [3]),
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255), st.sampled_from("rid")),
        min_size=1,
        max_size=4,
    ),
    cut=st.integers(1, len(_VALID)),
)
def test_read_batch_on_damaged_pickles_returns_or_raises_a_format_error(edits, cut) -> None:
    data = bytearray(_VALID[:cut])
    for position, value, how in edits:
        position = min(position, len(data))
        if how == "r" and position < len(data):
            data[position] = value
        elif how == "i":
            data.insert(position, value)
        elif position < len(data):
            del data[position]
    try:
        loaded = _cifar_python.read_batch(bytes(data), "archive:member")
    except DatasetFormatError as e:  # UnsafeDataError is one too
        assert str(e).startswith("archive:member: ")
    else:
        assert isinstance(loaded, dict)


def test_read_batch_refuses_a_malformed_array_state() -> None:
    good = py2_pickle({"x": np.zeros((2, 2), dtype=np.uint8)})
    # the shape tuple (2, 2) pickled as two BININT1 and TUPLE2: make it a bare int (drop a size)
    bad = good.replace(b"K\x02K\x02\x86", b"K\x02", 1)
    assert bad != good
    with pytest.raises(DatasetFormatError, match="archive:member: .* shape is no tuple of sizes"):
        _cifar_python.read_batch(bad, "archive:member")


def test_datadings_layout_refuses_split_and_conflicting_indirs(cifar10_dir: Path) -> None:
    def run(*argv: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "shardstream", "write", "CIFAR10", *argv, "--quiet"]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    result = run(str(cifar10_dir), "-s", "--split", "test")
    assert result.returncode == 1
    assert "--split needs the earlier layout (--layout)" in result.stderr
    result = run(str(cifar10_dir), "--indir", "/elsewhere")
    assert result.returncode == 1
    assert f"--indir /elsewhere and INDIR {cifar10_dir} differ" in result.stderr


def test_help_names_the_source_file_and_the_keys() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shardstream", "write", "cifar100", "--help"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "cifar-100-python.tar.gz  md5 eb9058c3a382ffc7106e4002c42a8d85" in result.stdout
    assert "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz" in result.stdout
    assert "coarse_label" in result.stdout and "--layout {datadings,binary}" in result.stdout
