"""``shardstream sample`` through the real console script; datadings-sample as the oracle."""

from __future__ import annotations

import subprocess
import sys

import pytest

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
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sample")
    samples = demo_samples()
    return write_packed(folder / "demo.msgpack", samples), samples


def test_random_default_is_datadings_sample(demo, tmp_path):
    path, samples = demo
    keys = [s["key"] for s in samples]
    out = tmp_path / "ours.msgpack"
    result = shardstream("sample", path, out, "5", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"wrote 5 of 48 samples (random) to {out}"]
    expected = [keys[i] for i in shuffle_order(48, 48)[:5]]  # Shuffler's default seed: len
    assert keys_of(out) == expected
    theirs = tmp_path / "theirs.msgpack"
    ran = subprocess.run(
        [sys.executable, "-m", "datadings.commands.sample", str(path), str(theirs), "5"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    assert keys_of(theirs) == expected
    assert out.read_bytes() == theirs.read_bytes()
    whole = raw_by_key(path)
    assert raw_by_key(out) == {k: whole[k] for k in expected}


def test_seed_picks_another_reproducible_sample(demo, tmp_path):
    path, samples = demo
    keys = [s["key"] for s in samples]
    first, second = tmp_path / "a.msgpack", tmp_path / "b.msgpack"
    assert shardstream("sample", path, first, "7", "--seed", "3", "-q").returncode == 0
    assert shardstream("sample", path, second, "7", "--seed", "3", "-q").returncode == 0
    assert keys_of(first) == [keys[i] for i in shuffle_order(48, 3)[:7]]
    assert first.read_bytes() == second.read_bytes()
    assert keys_of(first) != [keys[i] for i in shuffle_order(48, 48)[:7]]


def test_sequential_takes_the_first_n(demo, tmp_path):
    path, samples = demo
    out = tmp_path / "head.msgpack"
    result = shardstream("sample", path, out, "9", "-s", "sequential", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"wrote 9 of 48 samples (sequential) to {out}"]
    assert keys_of(out) == [s["key"] for s in samples[:9]]


def test_more_than_available_warns_and_writes_all(demo, tmp_path):
    path, samples = demo
    out = tmp_path / "all.msgpack"
    result = shardstream("sample", path, out, "100", "-q")
    assert result.returncode == 0
    assert result.stderr == (
        f"shardstream sample: warning: N = 100 is more than the 48 samples of {path}; "
        "writing all 48\n"
    )
    assert sorted(keys_of(out)) == sorted(s["key"] for s in samples)
    assert keys_of(out) == [samples[i]["key"] for i in shuffle_order(48, 48)]


def test_manifest_input(demo, tmp_path):
    path, samples = demo
    manifest = write_sharded(tmp_path, "set", samples, [30, 18])
    out = tmp_path / "m.msgpack"
    assert shardstream("sample", manifest, out, "6", "--seed", "2", "-q").returncode == 0
    assert keys_of(out) == [samples[i]["key"] for i in shuffle_order(48, 2)[:6]]


@pytest.mark.parametrize(
    "extra", [("0",), ("-3",), ("x",), ("5", "-s", "best"), ("5", "--seed", "no")]
)
def test_usage_errors_exit_2(demo, tmp_path, extra):
    path, _ = demo
    result = shardstream("sample", path, tmp_path / "o.msgpack", *extra)
    assert result.returncode == 2
    assert "usage: shardstream sample" in result.stderr
    assert listing(tmp_path) == []


def test_same_file_and_existing_output(demo, tmp_path):
    path, _ = demo
    result = shardstream("sample", path, path, "3", "-y")
    assert result.returncode == 2
    assert "input and output must be different files" in result.stderr
    out = write_packed(tmp_path / "o.msgpack", [{"key": "kept"}])
    result = shardstream("sample", path, out, "3")
    assert result.returncode == 1
    assert result.stderr.startswith(f"shardstream sample: error: {out}: exists")
    assert keys_of(out) == ["kept"]
    assert shardstream("sample", path, out, "3", "-y", "-q").returncode == 0
    assert len(keys_of(out)) == 3


def test_help():
    result = shardstream("sample", "--help")
    assert result.returncode == 0
    assert "--strategy" in result.stdout and "sequential" in result.stdout
