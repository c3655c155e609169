"""ListReader: conformance, key and label handling, and datadings' ListReader as an oracle."""

from __future__ import annotations

import numpy as np
import pytest
from datadings.reader import ListReader as DatadingsListReader
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream.errors import DuplicateKeyError, InvalidKeyError, LabelError
from shardstream.format.codec import packb, unpackb
from shardstream.read.list import ListReader, load_labels, sorted_labels

from ..contracts.reader_conformance import assert_samples_equal, run_reader_conformance


def _mixed_samples() -> list[dict]:
    return [
        {"key": "a", "label": "cat", "x": np.arange(6, dtype=np.int16).reshape(2, 3)},
        {"key": "b", "label": "b10", "blob": b"\x00\xff", "nested": {"f": 1.5, "l": [1, "s"]}},
        {"key": "c", "label": "b2", "flag": True, "none": None},
        {"key": "d", "label": "cat", "z": np.float32(2.5)},
    ]


def test_conformance_mixed_samples():
    # natsorted labels: b2=0, b10=1, cat=2
    expected = [
        ("a", {**_mixed_samples()[0], "label": 2, "_label": "cat"}),
        ("b", {**_mixed_samples()[1], "label": 1, "_label": "b10"}),
        ("c", {**_mixed_samples()[2], "label": 0, "_label": "b2"}),
        ("d", {**_mixed_samples()[3], "label": 2, "_label": "cat"}),
    ]
    run_reader_conformance(lambda: ListReader(_mixed_samples()), expected)


def test_conformance_index_keys_and_no_labels():
    samples = lambda: [{"v": i * i} for i in range(7)]  # noqa: E731
    expected = [(i, {"v": i * i, "key": i}) for i in range(7)]
    run_reader_conformance(lambda: ListReader(samples()), expected)


def test_conformance_empty():
    run_reader_conformance(lambda: ListReader([]), [])


def test_conformance_long_enough_for_chunked_getitem():
    n = 600  # reader[a:b] with b - a >= 512 goes through iter()
    expected = [(f"s{i}", {"key": f"s{i}", "v": i}) for i in range(n)]
    run_reader_conformance(lambda: ListReader([dict(s) for _, s in expected]), expected)


def test_labels_are_natsorted_and_original_kept():
    reader = ListReader(_mixed_samples())
    assert reader.labels == ["b2", "b10", "cat"]
    assert [s["label"] for s in reader] == [2, 1, 0, 2]
    assert [s["_label"] for s in reader] == ["cat", "b10", "b2", "cat"]


def test_labels_given_as_list_keep_their_order_and_match_by_str():
    samples = [{"key": "a", "label": "1"}, {"key": "b", "label": 2}, {"key": "c", "label": 0}]
    reader = ListReader(samples, labels=[2, 1, 0])
    assert reader.labels == [2, 1, 0]
    assert [(s["label"], s["_label"]) for s in reader] == [(1, "1"), (0, 2), (2, 0)]


def test_labels_from_file(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("dog\n cat \nbird\n", encoding="utf-8")
    assert load_labels(path) == ["dog", "cat", "bird"]
    samples = [{"label": "bird"}, {"label": "dog"}]
    for labels in (path, str(path)):
        reader = ListReader([dict(s) for s in samples], labels=labels)
        assert reader.labels == ["dog", "cat", "bird"]
        assert [s["label"] for s in reader] == [2, 0]


def test_labels_given_as_iterable_are_listed():
    reader = ListReader([{"label": "y"}], labels=iter(["x", "y"]))
    assert reader.labels == ["x", "y"]
    assert reader[0] == {"key": 0, "label": 1, "_label": "y"}


def test_numeric_labels_off_keeps_labels():
    reader = ListReader(_mixed_samples()[:2], numeric_labels=False)
    assert reader.labels == ["b10", "cat"]
    sample = reader.get(1)
    assert sample["label"] == "b10" and "_label" not in sample


def test_samples_without_label_are_skipped_when_collecting():
    samples = [{"key": "a"}, {"key": "b", "label": "x"}]
    assert sorted_labels(samples) == ["x"]
    assert ListReader(samples).get(0) == {"key": "a"}


def test_duplicate_key():
    with pytest.raises(DuplicateKeyError, match=r"duplicate key 'a': samples 0 and 2") as info:
        ListReader([{"key": "a"}, {"key": "b"}, {"key": "a"}])
    assert isinstance(info.value, ValueError)


def test_duplicate_of_default_index_key():
    with pytest.raises(DuplicateKeyError, match=r"duplicate key 0: samples 0 and 1"):
        ListReader([{"v": 1}, {"key": 0}])


def test_none_label_needs_labels():
    samples = [{"key": "a", "label": "x"}, {"key": "b", "label": None}]
    with pytest.raises(LabelError, match=r"sample 'b' has None as label") as info:
        ListReader([dict(s) for s in samples])
    assert isinstance(info.value, ValueError)
    reader = ListReader([dict(s) for s in samples], labels=[None, "x"])
    assert reader.get(1) == {"key": "b", "label": 0, "_label": None}
    assert reader.get(0)["label"] == 1


def test_unknown_label_is_reported_at_creation():
    with pytest.raises(LabelError, match=r"sample 'b' has label 'dog', which is not in"):
        ListReader([{"key": "a", "label": "cat"}, {"key": "b", "label": "dog"}], labels=["cat"])
    with pytest.raises(LabelError, match=r"has label \['l'\]"):
        ListReader([{"key": "a", "label": ["l"]}], labels=["cat"])
    # without numeric labels, any label is fine
    reader = ListReader([{"key": "b", "label": "dog"}], labels=["cat"], numeric_labels=False)
    assert reader.get(0) == {"key": "b", "label": "dog"}


def test_initfun_runs_once_in_place():
    calls = []

    def initfun(sample):
        calls.append(sample["name"])
        sample["key"] = sample.pop("name")
        sample["label"] = sample["label"].upper()

    samples = [{"name": "n1", "label": "b"}, {"name": "n2", "label": "a"}]
    reader = ListReader(samples, initfun=initfun)
    list(reader)
    list(reader)
    assert calls == ["n1", "n2"]
    assert samples == [{"key": "n1", "label": "B"}, {"key": "n2", "label": "A"}]
    assert reader.labels == ["A", "B"]
    assert reader.find_index("n2") == 1


def test_convertfun_changes_only_the_returned_copy():
    def convertfun(sample):
        sample["double"] = sample["v"] * 2
        sample["v"] = -1

    samples = [{"key": "k", "v": 21, "label": "x"}]
    reader = ListReader(samples, convertfun=convertfun)
    first = reader.get(0)
    assert first == {"key": "k", "v": -1, "label": 0, "_label": "x", "double": 42}
    first["v"] = 99
    assert reader.get(0) == first | {"v": -1}
    assert samples == [{"key": "k", "v": 21, "label": "x"}]


def test_raw_is_packb_of_the_returned_sample():
    reader = ListReader(_mixed_samples())
    for i in range(len(reader)):
        assert reader.get(i, raw=True) == packb(reader.get(i))
    key, raw = reader.get(1, yield_key=True, raw=True)
    assert key == "b"
    assert unpackb(raw)["nested"] == {"f": 1.5, "l": [1, "s"]}


def test_unhashable_lookups():
    reader = ListReader([{"key": "a"}])
    assert ["a"] not in reader
    with pytest.raises(KeyError):
        reader.find_index(["a"])
    with pytest.raises(KeyError):
        reader.find_index("b")


def test_matches_datadings_list_reader():
    def make():
        return [
            {"key": "k3", "label": "cat", "v": 1},
            {"label": "b10", "v": 2},
            {"key": "k1", "label": "b2", "v": np.arange(3)},
            {"key": "k0", "v": 4},
        ]

    ours, theirs = ListReader(make()), DatadingsListReader(make())
    assert ours.labels == list(theirs.labels)
    assert len(ours) == len(theirs)
    for i in range(len(ours)):
        assert ours.find_key(i) == theirs.find_key(i)
        assert ours.find_index(theirs.find_key(i)) == i
        assert_samples_equal(ours.get(i, yield_key=True), theirs.get(i, yield_key=True))
        assert ours.get(i, raw=True) == theirs.get(i, raw=True)


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
_fields = st.dictionaries(
    st.text(max_size=6).filter(lambda s: s not in ("key", "label", "_label", "nd", "complex")),
    _values,
    max_size=3,
)
_samples = st.lists(
    st.tuples(
        st.text(min_size=1, max_size=6), st.sampled_from([None, "b10", "b2", "cat"]), _fields
    ),
    max_size=12,
    unique_by=lambda t: t[0],
)


@settings(max_examples=60, deadline=None)
@given(_samples)
def test_property_samples_round_trip(items):
    def make():
        samples = []
        for key, label, fields in items:
            sample = {"key": key, **fields}
            if label is not None:
                sample["label"] = label
            samples.append(sample)
        return samples

    labels = sorted(
        {label for _, label, _ in items if label is not None}, key=["b2", "b10", "cat"].index
    )
    expected = []
    for key, label, fields in items:
        sample = {"key": key, **fields}
        if label is not None:
            sample |= {"label": labels.index(label), "_label": label}
        expected.append((key, sample))
    reader = ListReader(make())
    assert reader.labels == labels
    assert len(reader) == len(expected)
    for i, (key, sample) in enumerate(expected):
        assert_samples_equal(reader.get(i, yield_key=True), (key, sample))
        assert_samples_equal(unpackb(reader.get(i, raw=True)), sample)
        assert reader.find_index(key) == i
    assert_samples_equal(list(reader.iter(yield_key=True)), expected)
    assert_samples_equal([unpackb(raw) for raw in reader.rawiter()], [s for _, s in expected])


def test_unhashable_label_without_labels():
    with pytest.raises(LabelError, match=r"sample 'a' has the unhashable label \['x'\]"):
        ListReader([{"key": "a", "label": ["x"]}])


def test_unhashable_key():
    with pytest.raises(InvalidKeyError, match=r"sample 1 has the unhashable key \['k'\]") as info:
        ListReader([{"key": "a"}, {"key": ["k"]}])
    assert isinstance(info.value, TypeError)
