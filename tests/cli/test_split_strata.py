"""``split --shuffle`` (seeded) and ``--stratify`` (class proportions, exact counts)."""

from __future__ import annotations

import random
import re
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream import MsgpackReader
from shardstream.cli.split import assign_parts, stratified_counts
from tests.cli.demo_data import shardstream, write_packed


def _floor_ceil(m: int, n: int, total: int) -> tuple[int, int]:
    return m * n // total, -(-m * n // total)


@st.composite
def classes_and_parts(draw):
    counts = draw(st.lists(st.integers(0, 40), min_size=1, max_size=8))
    total = sum(counts)
    parts = draw(st.integers(1, 6))
    cuts = sorted(draw(st.lists(st.integers(0, total), min_size=parts - 1, max_size=parts - 1)))
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, total])]
    return dict(enumerate(counts)), sizes


@settings(max_examples=300, deadline=None)
@given(classes_and_parts())
def test_stratified_counts_are_exact_and_each_within_one_of_its_share(case):
    counts, sizes = case
    total = sum(counts.values())
    quotas = stratified_counts(counts, sizes)
    assert list(quotas) == list(counts)
    for c, m in counts.items():
        assert sum(quotas[c]) == m  # every class used up
        for i, n in enumerate(sizes):
            assert quotas[c][i] in (
                _floor_ceil(m, n, total) if total else (0, 0)
            )  # m*n/N rounded down or up
    for i, n in enumerate(sizes):
        assert sum(quotas[c][i] for c in counts) == n  # every part exactly its size


def test_stratified_counts_by_hand_where_largest_remainder_alone_gets_stuck():
    # shares are 2/3 everywhere; greedy largest remainder (ties by class, then part) fills
    # part 0 and 1 from classes 0 and 1 and must move a unit to place class 2's
    quotas = stratified_counts({0: 2, 1: 2, 2: 2}, [2, 2, 0, 2])
    assert [sum(q[i] for q in quotas.values()) for i in range(4)] == [2, 2, 0, 2]
    assert all(sum(q) == 2 and set(q) <= {0, 1} for q in quotas.values())
    assert stratified_counts({"a": 7, "b": 3}, [5, 5]) == {"a": [4, 3], "b": [1, 2]}
    assert stratified_counts({"a": 10}, [3, 7]) == {"a": [3, 7]}


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 4), min_size=2, max_size=60),
    st.data(),
    st.integers(0, 2**32 - 1),
)
def test_assign_parts_keeps_sizes_and_strata(labels, data, seed):
    n = len(labels)
    cuts = sorted(data.draw(st.sets(st.integers(1, n - 1), max_size=3)))
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, n])]
    parts = assign_parts(n, sizes, labels=labels, rng=random.Random(seed))
    assert Counter(parts) == {i: s for i, s in enumerate(sizes) if s}
    per_class = Counter(labels)
    for c, m in per_class.items():
        got = Counter(p for p, label in zip(parts, labels) if label == c)
        for i, s in enumerate(sizes):
            assert got[i] in _floor_ceil(m, s, n)
    again = assign_parts(n, sizes, labels=labels, rng=random.Random(seed))
    assert again == parts  # seeded
    plain = assign_parts(n, sizes)
    assert plain == [i for i, s in enumerate(sizes) for _ in range(s)]  # consecutive runs


def _data(tmp_path, labels):
    samples = [{"key": f"k{j:03d}", "label": c} for j, c in enumerate(labels)]
    return write_packed(tmp_path / "d.msgpack", samples), samples


def _parts(*paths):
    out = []
    for path in paths:
        with MsgpackReader(path) as reader:
            out.append([(s["key"], s["label"]) for s in reader])
    return out


def test_split_shuffle_is_seeded_printed_and_keeps_the_input_order(tmp_path):
    path, samples = _data(tmp_path, [j % 3 for j in range(40)])
    a, b = tmp_path / "a.msgpack", tmp_path / "b.msgpack"
    result = shardstream("split", path, "10", "-o", a, b, "--shuffle", "-q")
    assert result.returncode == 0, result.stderr
    seed = int(re.search(r"^seed: (\d+) \(--seed \1 repeats this split\)$", result.stdout, re.M)[1])
    first, second = _parts(a, b)
    assert (len(first), len(second)) == (10, 30)
    keys = [k for k, _ in first + second]
    assert sorted(keys) == [s["key"] for s in samples]  # each sample once
    assert [k for k, _ in first] == sorted(k for k, _ in first)  # input order kept
    assert [k for k, _ in first] != [s["key"] for s in samples[:10]]
    again = shardstream("split", path, "10", "-o", a, b, "--shuffle", "--seed", seed, "-y", "-q")
    assert again.returncode == 0, again.stderr
    assert _parts(a, b) == [first, second]
    expected = assign_parts(40, [10, 30], rng=random.Random(seed))
    assert [k for k, _ in first] == [s["key"] for s, p in zip(samples, expected) if p == 0]
    assert f"{a}: 10 samples (shuffled)" in result.stdout


def test_split_stratify_keeps_class_proportions_exactly(tmp_path):
    labels = [0] * 50 + [1] * 30 + [2] * 20  # dataset sorted by class: a plain split breaks it
    path, samples = _data(tmp_path, labels)
    outs = [tmp_path / f"p{i}.msgpack" for i in range(3)]
    result = shardstream("split", path, "10", "30", "-o", *outs, "--stratify", "-q")
    assert result.returncode == 0, result.stderr
    parts = _parts(*outs)
    assert [len(p) for p in parts] == [10, 20, 70]
    assert [Counter(c for _, c in p) for p in parts] == [
        {0: 5, 1: 3, 2: 2},
        {0: 10, 1: 6, 2: 4},
        {0: 35, 1: 21, 2: 14},
    ]
    # without --shuffle each class fills the parts in dataset order
    assert [k for k, c in parts[0] if c == 0] == [f"k{j:03d}" for j in range(5)]
    shuffled = shardstream(
        "split", path, "10", "30", "-o", *outs, "--stratify", "--shuffle", "--seed", "5", "-y", "-q"
    )
    assert shuffled.returncode == 0, shuffled.stderr
    mixed = _parts(*outs)
    assert [Counter(c for _, c in p) for p in mixed] == [Counter(c for _, c in p) for p in parts]
    assert mixed != parts


def test_split_stratify_needs_labels_and_seed_needs_shuffle(tmp_path):
    samples = [{"key": f"k{j}", "label": 0} for j in range(5)] + [{"key": "nolabel"}]
    path = write_packed(tmp_path / "d.msgpack", samples)
    outs = [tmp_path / "x.msgpack", tmp_path / "y.msgpack"]
    result = shardstream("split", path, "3", "-o", *outs, "--stratify", "-q")
    assert result.returncode == 1
    assert "sample 5 ('nolabel') has no label field; --stratify needs one" in result.stderr
    assert not any(p.exists() for p in outs)
    result = shardstream("split", path, "3", "-o", *outs, "--seed", "1", "-q")
    assert result.returncode == 2 and "--seed needs --shuffle" in result.stderr
