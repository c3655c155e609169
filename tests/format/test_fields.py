"""Walking packed samples: field slices equal the fields, bin payloads are zero-copy slices."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream.format.codec import packb, unpackb
from shardstream.format.fields import bin_payload, map_header, packed_fields, skip_value

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.binary(max_size=300),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=20), values, max_size=20))
def test_field_slices_unpack_to_the_fields(sample):
    view = memoryview(packb(sample))
    fields = packed_fields(view)
    assert list(fields) == list(sample)
    for name, value in sample.items():
        assert unpackb(fields[name]) == value
        payload = bin_payload(fields[name])
        if isinstance(value, bytes):
            assert payload is not None and bytes(payload) == value
            assert payload.obj is view.obj  # a slice of the packed sample, not a copy
        else:
            assert payload is None
    assert skip_value(view, 0) == len(view)


def test_numpy_arrays_and_large_maps():
    sample = {f"f{i}": i for i in range(40)}
    sample["array"] = np.arange(12, dtype=np.float32).reshape(3, 4)
    sample["image"] = bytes(70_000)
    view = memoryview(packb(sample))
    count, _ = map_header(view)
    assert count == 42
    fields = packed_fields(view)
    assert np.array_equal(unpackb(fields["array"]), sample["array"])
    assert bin_payload(fields["image"]).nbytes == 70_000


def test_bad_input_raises():
    with pytest.raises(ValueError, match="not a msgpack map"):
        packed_fields(memoryview(packb([1, 2])))
    data = packb({"image": bytes(1000), "label": 3})
    with pytest.raises(IndexError):
        packed_fields(memoryview(data[:500]))
    with pytest.raises(ValueError, match="invalid msgpack type byte 0xc1"):
        skip_value(memoryview(b"\xc1"), 0)
