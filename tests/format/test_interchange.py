"""The WebDataset / Parquet field mapping gives every value back exactly (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shardstream.errors import InterchangeError
from shardstream.format.codec import packb, unpackb
from shardstream.format.interchange import (
    EXTRA_SUFFIX,
    KEY_SUFFIX,
    column_plan,
    columns_to_rows,
    decode_member,
    extra_fields,
    image_extension,
    member_suffixes,
    rows_to_columns,
    webdataset_key,
)
from tests.write.demo_tree import jpeg, png

names = st.text(st.characters(blacklist_categories=["Cs"]), max_size=8).filter(
    lambda n: n not in ("key", "image", "label", "nd", "complex")
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 63), max_value=(1 << 64) - 1)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.binary(max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
arrays = st.sampled_from(["<f4", "<i8", "|u1", "<c16", "|b1"]).flatmap(
    lambda dtype: st.lists(st.integers(0, 200), min_size=0, max_size=6).map(
        lambda xs: np.array(xs, dtype=dtype)
    )
)


def same(a, b) -> bool:
    """Equal and of the same types all the way down (NaN equals NaN)."""
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.tobytes() == b.tobytes()
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and a != a:
        return b != b
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def through_webdataset(sample: dict) -> dict:
    """Members of a sample decoded back into fields, as the importer does."""
    back = {}
    for suffix, data in member_suffixes(sample):
        if suffix == EXTRA_SUFFIX:
            back.update(extra_fields(data))
        elif suffix in ("jpg", "png", "webp", "gif", "bmp", "tiff") and "image" not in back:
            back["image"] = data
        elif suffix == "cls":
            back["label"] = int(data)
        else:
            name, value = decode_member(suffix, data)
            back[name] = value
    return back


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fields=st.dictionaries(names, values | arrays, max_size=5),
    label=st.none() | st.integers(-5, 10**6),
)
def test_every_field_comes_back_from_webdataset_members(fields, label):
    sample = {"key": "k", "image": jpeg((8, 8))}
    if label is not None:
        sample["label"] = label
    sample.update(fields)
    back = through_webdataset(sample)
    del sample["key"]
    assert set(sample) == set(back)  # the order of the fields may change, their values not
    assert all(same(sample[name], back[name]) for name in sample)


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.dictionaries(names, values, max_size=4), min_size=1, max_size=5))
def test_every_field_comes_back_from_parquet_columns(rows):
    samples = [{"key": f"k{i}", **row} for i, row in enumerate(rows)]
    plan = column_plan(samples)
    columns = rows_to_columns(samples, plan)
    encoded = [plan[name] == "msgpack" for name in plan]
    back = columns_to_rows(list(plan), encoded, [columns[name] for name in plan])
    for sample, restored in zip(samples, back, strict=True):
        assert set(sample) == set(restored)
        assert all(same(sample[k], restored[k]) for k in sample)


def test_member_kinds_and_image_formats():
    members = dict(
        member_suffixes(
            {"key": "k", "image": png((4, 4)), "label": 7, "mask": png((4, 4)), "t": "x",
             "raw": b"\x00", "v": {"a": [1, 2.5]}, "e": np.zeros(2, np.float32), "n": [b"b"]}
        )
    )  # fmt: skip
    assert list(members) == [
        "png",
        "cls",
        "mask.png",
        "t.txt",
        "raw.bin",
        "v.json",
        "e.npy",
        "n.msgpack",
    ]
    assert members["cls"] == b"7" and members["v.json"] == b'{"a": [1, 2.5]}'
    assert unpackb(members["n.msgpack"]) == [b"b"] and members["n.msgpack"] == packb([b"b"])
    assert image_extension(jpeg((4, 4))) == "jpg" and image_extension(b"nope") is None


def test_undecodable_members_stay_bytes_and_bare_suffixes_name_fields():
    assert decode_member("caption.txt", b"\xff\xfe") == ("caption", b"\xff\xfe")
    assert decode_member("meta.json", b"{not json") == ("meta", b"{not json")
    assert decode_member("json", b"[1]") == ("json", [1])
    assert decode_member("png", b"\x89PNG") == ("png", b"\x89PNG")
    assert decode_member("a.b.txt", b"x") == ("a.b", "x")


@pytest.mark.parametrize(
    "key, kept",
    [("n01/img_1", True), ("a/b/c", True), ("img_1.JPEG", False), ("../x", False), ("/abs", False),
     ("a//b", False), ("__meta__", False), ("", False)],
)  # fmt: skip
def test_keys_webdataset_cannot_carry_get_a_number(key, kept):
    assert webdataset_key(key, 12) == ((key, False) if kept else ("s000000012", True))
    assert KEY_SUFFIX == "__key__.txt"


def test_names_webdataset_would_change_travel_in_one_member():
    sample = {"key": "k", "image": jpeg((4, 4)), "Upper": 1, "a/b": "x", "": 2, "__x": 3, "ok": 4}
    members = member_suffixes(sample)
    assert [suffix for suffix, _ in members] == ["jpg", "ok.json", EXTRA_SUFFIX]
    assert extra_fields(members[-1][1]) == {"Upper": 1, "a/b": "x", "": 2, "__x": 3}
    with pytest.raises(InterchangeError, match="is not a map"):
        extra_fields(packb([1]))
