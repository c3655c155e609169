"""The codec packs exactly as msgpack-numpy and never unpickles."""

from __future__ import annotations

import pickle

import msgpack
import msgpack_numpy
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from shardstream.errors import SampleEncodeError, UnsafeDataError
from shardstream.format.codec import packb, unpackb


def reference_packb(obj):
    """How datadings packs: msgpack with msgpack-numpy's encode hook."""
    return msgpack.packb(obj, default=msgpack_numpy.encode)


def test_array_bytes_match_documented_vector():
    expected = bytes.fromhex(
        "85c4026e64c3c40474797065a33c6934c4046b696e64c400c40573686170659102c40464617461c408"
        "0000000001000000"
    )
    assert packb(np.arange(2, dtype="<i4")) == expected


dtypes = st.sampled_from(
    ["<i1", "<u2", ">i4", "<i8", "<f2", "<f4", ">f8", "<c8", "<c16", "|b1", "<U3", "|S2", "<M8[s]"]
)


@settings(max_examples=150, deadline=None)
@given(
    arr=dtypes.flatmap(
        lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
    )
)
def test_arrays_pack_like_msgpack_numpy_and_round_trip(arr):
    packed = packb({"key": "a", "x": arr})
    if arr.dtype.kind != "M":  # msgpack-numpy cannot encode datetimes at all; we can
        assert packed == reference_packb({"key": "a", "x": arr})
    out = unpackb(packed)["x"]
    assert out.dtype == arr.dtype and out.shape == arr.shape
    assert out.tobytes() == arr.tobytes()


def test_non_contiguous_and_structured_arrays():
    fortran = np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4))
    structured = np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8", (2,))])
    structured["a"] = [1, 2, 3]
    for arr in (fortran, np.arange(10)[::3], structured):
        assert packb(arr) == reference_packb(arr)
        out = unpackb(packb(arr))
        assert out.dtype == arr.dtype
        np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize(
    "value", [np.float32(1.5), np.int64(-7), np.bool_(True), np.complex64(1 + 2j), np.uint8(255)]
)
def test_numpy_scalars(value):
    assert packb(value) == reference_packb(value)
    out = unpackb(packb(value))
    assert type(out) is type(value) and out == value


def test_complex_numbers():
    assert packb(3 - 4.5j) == reference_packb(3 - 4.5j)
    assert unpackb(packb([1j, -2 + 0j])) == [1j, -2 + 0j]


def test_object_arrays_are_refused_on_encode():
    with pytest.raises(SampleEncodeError, match="object"):
        packb(np.array([{"a": 1}], dtype=object))


def test_pickled_object_arrays_are_refused_on_decode():
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled!')",))

    hostile = msgpack.packb(
        {b"nd": True, b"type": "|O", b"kind": b"O", b"shape": [1], b"data": pickle.dumps(Boom())}
    )
    with pytest.raises(UnsafeDataError, match="unpickle"):
        unpackb(hostile)
    object_descr = msgpack.packb(
        {b"nd": True, b"type": "|O", b"kind": b"", b"shape": [1], b"data": b"\0" * 8}
    )
    with pytest.raises(UnsafeDataError, match="object"):
        unpackb(object_descr)


def test_unencodable_value():
    with pytest.raises(SampleEncodeError, match="set"):
        packb({"key": "a", "x": {1, 2}})


def test_maps_without_markers_pass_through():
    obj = {"nd2": 1, b"other": [1, {"deep": b"x"}], 5: "int key"}
    assert unpackb(packb(obj)) == obj
