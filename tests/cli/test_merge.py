"""``shardstream merge`` through the real console script, on packed demo images."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from shardstream.cli.merge import random_interleave
from shardstream.order import shuffle_order
from tests.cli.demo_data import (
    demo_samples,
    keys_of,
    listing,
    raw_by_key,
    shardstream,
    write_packed,
    write_sharded,
)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Three inputs of 10, 30 and 8 samples (all demo images, disjoint keys), plus the whole."""
    folder = tmp_path_factory.mktemp("merge")
    samples = demo_samples()
    bounds = [(0, 10), (10, 40), (40, 48)]
    paths = [
        write_packed(folder / f"part{i}.msgpack", samples[a:b]) for i, (a, b) in enumerate(bounds)
    ]
    return paths, samples


def test_concat_keeps_input_order(parts, tmp_path):
    paths, samples = parts
    out = tmp_path / "all.msgpack"
    result = shardstream("merge", *paths, out, "-s", "concat", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"wrote 48 samples from 3 inputs to {out}"]
    assert keys_of(out) == [s["key"] for s in samples]
    merged = raw_by_key(out)
    for path in paths:
        assert {k: merged[k] for k in keys_of(path)} == raw_by_key(path)
    reversed_out = tmp_path / "reversed.msgpack"
    result = shardstream("merge", paths[2], paths[0], paths[1], reversed_out, "-s", "concat")
    assert result.returncode == 0, result.stderr
    assert keys_of(reversed_out) == keys_of(paths[2]) + keys_of(paths[0]) + keys_of(paths[1])


def test_random_interleaves_reproducibly_keeping_each_input_order(parts, tmp_path):
    paths, samples = parts
    out = tmp_path / "random.msgpack"
    result = shardstream("merge", *paths, out, "--seed", "7", "-q")  # random is the default
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "seed: 7 (--seed 7 repeats this merge)",
        f"wrote 48 samples from 3 inputs to {out}",
    ]
    keys = keys_of(out)
    assert sorted(keys) == sorted(s["key"] for s in samples)
    assert keys != [s["key"] for s in samples]
    source_of = {key: i for i, path in enumerate(paths) for key in keys_of(path)}
    for i, path in enumerate(paths):
        assert [k for k in keys if source_of[k] == i] == keys_of(path)
    # the interleaving is the one random_interleave draws with random.Random(seed)
    expected = list(random_interleave([10, 30, 8], random.Random(7)))
    assert [source_of[k] for k in keys] == expected
    again = tmp_path / "again.msgpack"
    assert shardstream("merge", *paths, again, "--seed", "7", "-q").returncode == 0
    assert again.read_bytes() == out.read_bytes()
    unseeded = shardstream("merge", *paths, tmp_path / "u.msgpack", "-q")
    seed = int(re.match(r"seed: (\d+) ", unseeded.stdout).group(1))
    expected = list(random_interleave([10, 30, 8], random.Random(seed)))
    assert [source_of[k] for k in keys_of(tmp_path / "u.msgpack")] == expected


def test_random_interleave_weighs_remaining_samples():
    rng = random.Random(0)
    assert Counter(random_interleave([3, 0, 5], rng)) == {0: 3, 2: 5}
    assert list(random_interleave([0, 4], rng)) == [1, 1, 1, 1]
    # each of the C(4, 2) = 6 interleavings of two 2-sample inputs is equally likely
    counts = Counter(tuple(random_interleave([2, 2], rng)) for _ in range(6000))
    assert len(counts) == 6
    assert all(900 < n < 1100 for n in counts.values()), counts


def test_shuffle_shuffles_each_input(parts, tmp_path):
    paths, _ = parts
    out = tmp_path / "shuffled.msgpack"
    result = shardstream("merge", *paths, out, "-s", "concat", "--shuffle", "--seed", "4", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "seed: 4 (--seed 4 repeats this merge)"
    rng = random.Random(4)
    expected = []
    for path in paths:
        keys = keys_of(path)
        order = shuffle_order(len(keys), rng.randrange(2**32))
        expected += [keys[i] for i in order]
    assert keys_of(out) == expected
    assert keys_of(out)[:10] != keys_of(paths[0])


def test_manifest_inputs(parts, tmp_path):
    paths, samples = parts
    manifest = write_sharded(tmp_path, "rest", samples[10:], [15, 23])
    out = tmp_path / "m.msgpack"
    result = shardstream("merge", paths[0], manifest, out, "-s", "concat", "-q")
    assert result.returncode == 0, result.stderr
    assert keys_of(out) == [s["key"] for s in samples]


def test_duplicate_key_names_both_inputs_and_writes_nothing(parts, tmp_path):
    paths, samples = parts
    overlap = write_packed(tmp_path / "overlap.msgpack", samples[30:45])  # keys of part1, part2
    out = tmp_path / "out.msgpack"
    write_packed(out, [{"key": "previous", "x": 1}])
    before = {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)}
    result = shardstream("merge", paths[1], overlap, out, "-s", "concat", "-y")
    assert result.returncode == 1
    assert result.stderr == (
        f"shardstream merge: error: {out}: key {samples[30]['key']!r} of input {overlap} is also "
        f"in input {paths[1]}; merged keys must be unique (nothing was written)\n"
    )
    # failed midway (after 30 samples): the old output is intact and no temp file is left
    assert {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)} == before


def test_output_that_is_an_input_is_a_usage_error(parts, tmp_path):
    paths, _ = parts
    before = paths[0].read_bytes()
    result = shardstream("merge", paths[0], paths[1], paths[0], "-y")
    assert result.returncode == 2
    assert "input and output must be different files" in result.stderr
    assert paths[0].read_bytes() == before


def test_existing_output_without_y_is_refused(parts, tmp_path):
    paths, _ = parts
    out = write_packed(tmp_path / "o.msgpack", [{"key": "kept"}])
    result = shardstream("merge", *paths, out, "-s", "concat")
    assert result.returncode == 1
    assert result.stderr.startswith(f"shardstream merge: error: {out}: exists")
    assert keys_of(out) == ["kept"]


@pytest.mark.parametrize(
    "args", [("merge",), ("merge", "one.msgpack"), ("merge", "a", "b", "-s", "zip")]
)
def test_usage_errors_exit_2(args):
    result = shardstream(*args)
    assert result.returncode == 2
    assert "usage: shardstream merge" in result.stderr


def test_missing_input_exits_1(parts, tmp_path):
    paths, _ = parts
    result = shardstream("merge", paths[0], tmp_path / "nope.msgpack", tmp_path / "o.msgpack")
    assert result.returncode == 1
    assert result.stderr == f"shardstream merge: error: {tmp_path / 'nope.msgpack'}: not found\n"
    assert listing(tmp_path) == []


def test_help():
    result = shardstream("merge", "--help")
    assert result.returncode == 0
    for text in ("--strategy", "--shuffle", "--seed", "concat", "random"):
        assert text in result.stdout
