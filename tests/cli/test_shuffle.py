"""``shardstream shuffle`` through the real console script; datadings' shufflers as the oracle."""

from __future__ import annotations

import os
import pty
import re
import shutil
import subprocess
import sys

import pytest
from datadings.reader import MsgpackReader as DatadingsReader
from datadings.reader import QuasiShuffler as DatadingsQuasiShuffler
from datadings.reader import Shuffler as DatadingsShuffler

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
    folder = tmp_path_factory.mktemp("shuffle")
    samples = demo_samples()
    return write_packed(folder / "demo.msgpack", samples), samples


def printed_seed(stdout: str) -> int:
    match = re.match(r"seed: (\d+) \(", stdout)
    assert match, stdout
    return int(match.group(1))


def datadings_keys(path, shuffler) -> list[str]:
    with DatadingsReader(path) as reader:
        return [key for key, _ in shuffler(reader).iter(yield_key=True, raw=True)]


def test_default_quasi_shuffle_is_a_reproducible_permutation(demo, tmp_path):
    path, samples = demo
    out = tmp_path / "shuffled.msgpack"
    result = shardstream("shuffle", path, out, "-q")
    assert result.returncode == 0, result.stderr
    seed = printed_seed(result.stdout)
    assert result.stdout.splitlines() == [
        f"seed: {seed} (quasi shuffle, buffer 16 samples, chunks of 16; "
        f"--seed {seed} repeats this order)",
        f"wrote 48 samples to {out}",
    ]
    keys = keys_of(out)
    assert sorted(keys) == sorted(s["key"] for s in samples)
    assert raw_by_key(out) == raw_by_key(path)  # every sample copied byte for byte
    # datadings' QuasiShuffler with the same seed and its documented defaults gives this order
    assert keys == datadings_keys(
        path, lambda r: DatadingsQuasiShuffler(r, buf_size=0.01, chunk_size=16, seed=seed)
    )
    again = tmp_path / "again.msgpack"
    repeat = shardstream("shuffle", path, again, "--seed", str(seed), "-q")
    assert repeat.returncode == 0, repeat.stderr
    assert again.read_bytes() == out.read_bytes()


def test_buffer_and_chunk_sizes(demo, tmp_path):
    path, _ = demo
    out = tmp_path / "s.msgpack"
    result = shardstream(
        "shuffle", path, out, "--buf-size", "10", "--chunk-size", "4", "--seed", "3", "-q"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "seed: 3 (quasi shuffle, buffer 12 samples, chunks of 4; --seed 3 repeats this order)"
    )
    expected = datadings_keys(
        path, lambda r: DatadingsQuasiShuffler(r, buf_size=10, chunk_size=4, seed=3)
    )
    assert keys_of(out) == expected
    assert keys_of(out) != keys_of(path)


def test_true_shuffle_matches_datadings_shuffler(demo, tmp_path):
    path, samples = demo
    out = tmp_path / "true.msgpack"
    result = shardstream("shuffle", path, out, "--true-shuffle", "--seed", "11", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "seed: 11 (true shuffle; --seed 11 repeats this order)"
    assert keys_of(out) == datadings_keys(path, lambda r: DatadingsShuffler(r, seed=11))
    assert sorted(keys_of(out)) == sorted(s["key"] for s in samples)
    unseeded = shardstream("shuffle", path, tmp_path / "u.msgpack", "--true-shuffle", "-q")
    seed = printed_seed(unseeded.stdout)
    assert keys_of(tmp_path / "u.msgpack") == datadings_keys(
        path, lambda r: DatadingsShuffler(r, seed=seed)
    )


def test_manifest_input(demo, tmp_path):
    path, samples = demo
    manifest = write_sharded(tmp_path, "set", samples, [10, 30, 8])
    out = tmp_path / "from-shards.msgpack"
    result = shardstream("shuffle", manifest, out, "--seed", "5", "-q")
    assert result.returncode == 0, result.stderr
    single = tmp_path / "from-file.msgpack"
    assert shardstream("shuffle", path, single, "--seed", "5", "-q").returncode == 0
    assert keys_of(out) == keys_of(single)


def test_same_input_and_output_is_a_usage_error(demo, tmp_path):
    path, _ = demo
    before = path.read_bytes()
    result = shardstream("shuffle", path, path, "-y")
    assert result.returncode == 2
    assert "usage: shardstream shuffle" in result.stderr
    assert f"input and output must be different files: {path} is input {path}" in result.stderr
    sidecar = shardstream("shuffle", path, f"{path}.offsets", "-y")
    assert sidecar.returncode == 2
    assert path.read_bytes() == before


def test_existing_output_is_kept_without_y(demo, tmp_path):
    path, _ = demo
    out = tmp_path / "taken.msgpack"
    write_packed(out, [{"key": "old", "x": 1}])
    before = {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)}
    result = shardstream("shuffle", path, out, "--seed", "1")
    assert result.returncode == 1
    assert result.stderr == (
        f"shardstream shuffle: error: {out}: exists; pass overwrite=True "
        "(or -y on the command line) to replace it\n"
    )
    assert result.stdout == ""
    assert {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)} == before
    replaced = shardstream("shuffle", path, out, "--seed", "1", "-y", "-q")
    assert replaced.returncode == 0, replaced.stderr
    assert len(keys_of(out)) == 48


@pytest.mark.parametrize(
    "extra",
    [("--buf-size", "0"), ("--buf-size", "-1"), ("--chunk-size", "0"), ("--seed", "-2"), ()],
)
def test_bad_arguments_exit_2(demo, tmp_path, extra):
    path, _ = demo
    args = ("shuffle", path, tmp_path / "o.msgpack", *extra) if extra else ("shuffle", path)
    result = shardstream(*args)
    assert result.returncode == 2
    assert "usage: shardstream shuffle" in result.stderr
    assert not (tmp_path / "o.msgpack").exists()


def test_help():
    result = shardstream("shuffle", "--help")
    assert result.returncode == 0
    for option in ("--buf-size", "--chunk-size", "--true-shuffle", "--seed", "--no-confirm"):
        assert option in result.stdout


@pytest.mark.parametrize(("answer", "code"), [("n", 1), ("y", 0), ("a", 130)])
def test_terminal_is_asked_before_overwriting(demo, tmp_path, answer, code):
    path, _ = demo
    out = write_packed(tmp_path / "asked.msgpack", [{"key": "old"}])
    exe = shutil.which("shardstream")
    command = [exe] if exe else [sys.executable, "-m", "shardstream"]
    controller, terminal = pty.openpty()  # stdin is a terminal: the writer asks
    try:
        os.write(controller, f"{answer}\n".encode())
        result = subprocess.run(
            [*command, "shuffle", str(path), str(out), "--seed", "1", "-q"],
            stdin=terminal,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert result.returncode == code, result.stderr
    assert result.stdout.startswith("asked.msgpack exists, overwrite? [Y/n/a/?] ")
    if code:  # declined or aborted: the old dataset is untouched, no temp files
        assert keys_of(out) == ["old"]
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    if answer == "n":
        assert result.stderr == (
            f"shardstream shuffle: error: {out}: exists and the user declined to overwrite it\n"
        )
    elif answer == "y":
        assert len(keys_of(out)) == 48
