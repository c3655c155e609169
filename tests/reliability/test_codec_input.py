"""Hostile sample bytes decode to a typed error, never a hang, a huge allocation or a crash
(issue 14, items 4 and 9).

A numpy-ext array whose dtype has no item size (``|V0``) decoded from zero bytes to an array of
``2**62`` items: it passed ``verify``, then a Loader worker spun forever in ``np.concatenate``.
"""

from __future__ import annotations

import math
import subprocess
import sys

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream import MsgpackReader, RawWriter
from shardstream.errors import CorruptSampleError, ShardstreamError, UnsafeDataError
from shardstream.format.codec import packb, unpackb

from ..conftest import varied_samples
from ._forked import run_forked


def describe(outcome) -> str:
    return f"{outcome.status} {outcome.exc_type} {outcome.detail}"


def array_map(descr, shape, data: bytes, kind: bytes = b"") -> dict:
    """An array as msgpack-numpy encodes it, with any fields we like."""
    return {b"nd": True, b"type": descr, b"kind": kind, b"shape": shape, b"data": data}


def raw_set(path, samples: dict[str, bytes]):
    """A dataset holding the given packed samples verbatim."""
    with RawWriter(path, overwrite=True, disable=True) as writer:
        for key, data in samples.items():
            writer.write(key, data)
    return path


ZERO_ITEMSIZE = packb({"key": "v0", "x": array_map("|V0", [2**62], b"")})
HUGE_SHAPE = packb({"key": "v0b", "x": array_map("|V0", [2**40, 2**40], b"")})


@pytest.mark.parametrize("packed", [ZERO_ITEMSIZE, HUGE_SHAPE], ids=["2**62", "2**40 x 2**40"])
def test_zero_itemsize_array_is_a_corrupt_sample(packed):
    with pytest.raises(CorruptSampleError, match=r"dtype \|V0 has no item size"):
        unpackb(packed)


def test_zero_itemsize_array_in_a_set_names_file_and_sample(tmp_path):
    path = raw_set(tmp_path / "v0.msgpack", {"ok": packb({"key": "ok"}), "v0": ZERO_ITEMSIZE})
    with MsgpackReader(path) as reader:
        assert reader.get(0) == {"key": "ok"}
        with pytest.raises(CorruptSampleError) as info:
            reader.get(1)
    assert info.value.path == str(path)
    assert "sample 1 (bytes" in str(info.value) and "has no item size" in str(info.value)


def test_zero_itemsize_array_fails_verify(tmp_path):
    path = raw_set(tmp_path / "v0.msgpack", {"v0": ZERO_ITEMSIZE})
    result = subprocess.run(
        [sys.executable, "-m", "shardstream", "verify", "-q", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "sample 0 (key 'v0') does not decode" in result.stdout
    assert "Traceback" not in result.stderr


def test_zero_itemsize_array_ends_the_loader_with_a_typed_error(tmp_path):
    path = raw_set(tmp_path / "v0.msgpack", {"v0": ZERO_ITEMSIZE, "v1": ZERO_ITEMSIZE})

    def load():
        with MsgpackReader(path) as reader:
            return len(list(reader.dataloader(seed=0).batch(2).numpy(num_workers=0)))

    outcome = run_forked(load, timeout=20)
    assert outcome.status == "raised", describe(outcome)
    assert "shardstream.errors.ShardstreamError" in outcome.exc_mro, describe(outcome)
    assert "has no item size" in outcome.detail


@pytest.mark.parametrize(
    ("descr", "shape", "data", "problem"),
    [
        ("<i4", [3], b"\x00" * 8, "3 items of int32 need 12 bytes, the payload holds 8"),
        ("<i4", [2], b"\x00" * 12, "2 items of int32 need 8 bytes, the payload holds 12"),
        ("<f8", [2**40, 2**40], b"\x00" * 8, "need 9671406556917033397649408 bytes"),
        ("<u1", [-1], b"", "shape [-1]"),
        ("<u1", [True], b"\x00", "shape [True]"),
        ("<u1", "3", b"\x00" * 3, "shape '3'"),
        ("<u1", [3], "abc", "its data is a str, not bytes"),
        ("|S0", [5], b"", "has no item size"),
        ("<i99999999999999999999", [1], b"\x00", "malformed numpy array"),
        ("no such dtype", [1], b"\x00", "malformed numpy array"),
    ],
)
def test_array_payload_must_match_its_shape(descr, shape, data, problem):
    with pytest.raises(CorruptSampleError, match="malformed numpy array") as info:
        unpackb(packb({"x": array_map(descr, shape, data)}))
    assert problem in str(info.value)


def test_structured_zero_size_and_deep_descriptions_are_refused():
    with pytest.raises(CorruptSampleError, match="has no item size"):
        unpackb(packb({"x": array_map([], [2**62], b"", kind=b"V")}))
    # a structured dtype nested 500 deep (1,000 msgpack levels, inside msgpack's stack limit)
    head = msgpack.packb({b"nd": True, b"kind": b"V", b"shape": [1], b"data": b""})
    deep = b"\x91\x92\xa1a" * 500 + msgpack.packb("<i4")
    packed = bytes([head[0] + 1]) + head[1:] + msgpack.packb(b"type") + deep
    assert msgpack.unpackb(packed)[b"nd"] is True
    with pytest.raises(CorruptSampleError, match="malformed numpy array"):
        unpackb(packed)


def test_scalar_payload_must_be_one_item():
    scalar = {b"nd": False, b"type": "<f8", b"data": b"\x00" * 16}
    with pytest.raises(CorruptSampleError, match="1 items of float64 need 8 bytes"):
        unpackb(packb({"x": scalar}))
    assert unpackb(packb({"x": np.float64(2.5)}))["x"] == 2.5


@pytest.mark.parametrize(
    ("packed", "fault"),
    [
        (b"\x91" * 5000 + b"\x01", "StackError"),  # nested deeper than msgpack's stack
        (b"\x81\x91\x01\x02", "TypeError"),  # a list as a map key: unhashable
        (b"\xa2\xff\xfe", "UnicodeDecodeError"),  # a str that is not UTF-8
        (b"\x92\x01", "incomplete input"),  # truncated
        (b"\x01\x02", "ExtraData"),  # two messages
        (b"\xc1", "FormatError: not valid msgpack"),  # the never-used type byte
        (b"\xdd\xff\xff\xff\xff", "exceeds max_array_len"),  # 2**32 - 1 items claimed
        (b"\xd6\xff\x00\x00", "ValueError"),  # a timestamp ext of the wrong length
        (msgpack.packb({b"complex": True, b"data": b"1+x"}), "malformed complex"),
    ],
    ids=["deep", "list-key", "utf-8", "truncated", "extra", "c1", "huge-array", "ext", "complex"],
)
def test_malformed_messages_are_corrupt_samples(packed, fault):
    with pytest.raises(CorruptSampleError, match=fault):
        unpackb(packed)


def test_malformed_message_in_a_set_names_file_and_sample(tmp_path):
    path = raw_set(tmp_path / "bad.msgpack", {"a": packb({"key": "a"}), "b": b"\x81\x91\x01\x02"})
    with MsgpackReader(path) as reader:
        with pytest.raises(
            CorruptSampleError, match=r"bad\.msgpack: sample 1 \(bytes 7-11\) does not"
        ):
            reader.get(1)
        with pytest.raises(CorruptSampleError, match="sample 1"):
            list(reader)


def test_pickled_arrays_are_still_unsafe_data():
    with pytest.raises(UnsafeDataError, match="unpickle"):
        unpackb(packb({"x": array_map("|O", [1], b"\x80\x04N.", kind=b"O")}))
    with pytest.raises(UnsafeDataError, match="object dtype"):
        unpackb(packb({"x": array_map([["a", "|O"]], [1], b"\x00" * 8, kind=b"V")}))


def test_a_msgpack_array_sample_in_the_loader_names_the_sample(tmp_path):
    path = raw_set(tmp_path / "list.msgpack", {"a": msgpack.packb(["a", 1, 2])})

    def load():
        with MsgpackReader(path) as reader:
            return len(list(reader.dataloader(seed=0).numpy(num_workers=0)))

    outcome = run_forked(load, timeout=20)
    assert outcome.status == "raised", describe(outcome)
    assert outcome.exc_type == "shardstream.errors.CorruptSampleError", describe(outcome)
    assert f"{path}: sample 0 is a list, not a map of fields" in outcome.detail


DTYPES = st.sampled_from(
    ["<i4", ">f8", "|u1", "|b1", "<U3", "|S2", "|V0", "|S0", "<M8[s]", "<c16", "|O", "<i16"]
) | st.text(max_size=8)
SHAPES = st.one_of(
    st.lists(st.integers(0, 6), max_size=4),
    st.lists(st.sampled_from([0, 1, 2**31, 2**62, 2**63, 2**64 - 1, -1]), max_size=3),
    st.integers(-3, 10),
    st.none(),
    st.text(max_size=3),
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(descr=DTYPES, shape=SHAPES, size=st.integers(0, 80), kind=st.sampled_from([b"", b"V", b"O"]))
def test_any_array_map_decodes_exactly_or_is_refused(descr, shape, size, kind):
    packed = packb({"x": array_map(descr, shape, bytes(size), kind=kind)})
    try:
        value = unpackb(packed)["x"]
    except (CorruptSampleError, UnsafeDataError):
        return
    assert isinstance(value, np.ndarray)
    assert value.dtype.itemsize > 0
    assert value.nbytes == size == math.prod(value.shape) * value.dtype.itemsize


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.binary(max_size=64))
def test_any_bytes_decode_or_raise_a_typed_error(data):
    try:
        unpackb(data)
    except ShardstreamError:
        pass


SAMPLES = [packb(sample) for sample in varied_samples(8)]


@settings(max_examples=500, deadline=None, derandomize=True)
@given(
    which=st.integers(0, len(SAMPLES) - 1),
    position=st.integers(0, 2**16),
    patch=st.binary(min_size=1, max_size=8),
    kind=st.sampled_from(["overwrite", "insert", "truncate", "flip"]),
)
def test_a_mutated_sample_decodes_or_raises_a_typed_error(which, position, patch, kind):
    data = bytearray(SAMPLES[which])
    position %= len(data)
    if kind == "overwrite":
        data[position : position + len(patch)] = patch
    elif kind == "insert":
        data[position:position] = patch
    elif kind == "truncate":
        del data[position:]
    else:
        data[position] ^= 1 << (patch[0] % 8)
    try:
        sample = unpackb(bytes(data))
    except ShardstreamError:
        return
    for value in sample.values() if isinstance(sample, dict) else ():
        if isinstance(value, np.ndarray):  # no array decodes with a zero item size
            assert value.dtype.itemsize > 0


def test_a_label_nested_990_deep_is_a_finding_of_info_not_a_recursion_error(tmp_path):
    deep = b"\x91" * 990 + b"\x01"  # inside msgpack's stack limit, past Python's repr limit
    sample = b"\x82" + packb("key") + packb("deep") + packb("label") + deep
    path = raw_set(tmp_path / "deep.msgpack", {"deep": sample})

    def info():
        import contextlib
        import io

        from shardstream.cli import main

        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(["info", "-q", str(path)])
        return code, err.getvalue()

    outcome = run_forked(info)
    assert outcome.status == "returned", describe(outcome)
    assert outcome.value == (
        1,
        f"shardstream info: error: {path}: sample 0: label nested too deeply\n",
    )


@pytest.mark.parametrize("dtype", ["V0", []])
def test_zero_itemsize_arrays_are_refused_when_written(tmp_path, dtype):
    from shardstream import FileWriter
    from shardstream.errors import SampleEncodeError

    with FileWriter(tmp_path / "w.msgpack", overwrite=True, disable=True) as writer:
        with pytest.raises(SampleEncodeError, match="no item size"):
            writer.write({"key": "a", "x": np.zeros(3, dtype=dtype)})
        writer.write({"key": "b", "x": np.zeros(3, dtype="V1")})
    with MsgpackReader(tmp_path / "w.msgpack") as reader:
        assert len(reader) == 1 and reader.get(0)["x"].tobytes() == bytes(3)
