"""``shardstream split`` through the real console script: exact ranges, names, refusals."""

from __future__ import annotations

import shutil

import pytest

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
def pristine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("split")
    samples = demo_samples()
    return write_packed(folder / "demo.msgpack", samples), samples


@pytest.fixture
def demo(pristine, tmp_path):
    """The packed demo set copied into this test's own folder (outputs default to it)."""
    source, samples = pristine
    for suffix in ("", ".offsets", ".keys", ".key_hashes", ".filter", ".md5"):
        shutil.copyfile(f"{source}{suffix}", tmp_path / f"demo.msgpack{suffix}")
    return tmp_path / "demo.msgpack", samples


def test_default_names_and_exact_ranges(demo, tmp_path):
    path, samples = demo
    keys = [s["key"] for s in samples]
    result = shardstream("split", path, "10", "30", "-q")
    assert result.returncode == 0, result.stderr
    outputs = [tmp_path / f"demo-{i}.msgpack" for i in range(3)]
    assert result.stdout.splitlines() == [
        f"{outputs[0]}: samples 0-9 (10)",
        f"{outputs[1]}: samples 10-29 (20)",
        f"{outputs[2]}: samples 30-47 (18)",
    ]
    assert keys_of(outputs[0]) == keys[0:10]
    assert keys_of(outputs[1]) == keys[10:30]
    assert keys_of(outputs[2]) == keys[30:48]
    whole = raw_by_key(path)
    for out in outputs:
        assert raw_by_key(out) == {k: whole[k] for k in keys_of(out)}
    assert shardstream("verify", outputs[1], "-q").returncode == 0


def test_datadings_off_by_one_case_is_exact(tmp_path):
    # datadings 3.4.7 wrote [k0, k1], [k2, k3, k4], [k4] here and then crashed
    path = write_packed(tmp_path / "five.msgpack", [{"key": f"k{i}"} for i in range(5)])
    result = shardstream("split", path, "2", "4", "-q")
    assert result.returncode == 0, result.stderr
    assert [keys_of(tmp_path / f"five-{i}.msgpack") for i in range(3)] == [
        ["k0", "k1"],
        ["k2", "k3"],
        ["k4"],
    ]


@pytest.mark.parametrize("positions", [["1"], ["47"], ["1", "2", "3"], ["24"]])
def test_every_sample_lands_in_exactly_one_part(demo, tmp_path, positions):
    path, samples = demo
    names = [str(tmp_path / f"p{i}.msgpack") for i in range(len(positions) + 1)]
    result = shardstream("split", path, *positions, "-o", *names, "-q")
    assert result.returncode == 0, result.stderr
    bounds = [0, *map(int, positions), 48]
    for name, a, b in zip(names, bounds, bounds[1:]):
        assert keys_of(name) == [s["key"] for s in samples[a:b]]


def test_output_names_with_o_before_or_repeated(demo, tmp_path):
    path, samples = demo
    a, b = tmp_path / "val.msgpack", tmp_path / "train.msgpack"
    result = shardstream("split", path, "-o", a, b, "--", "12")
    assert result.returncode == 0, result.stderr
    assert keys_of(a) == [s["key"] for s in samples[:12]]
    assert keys_of(b) == [s["key"] for s in samples[12:]]
    c, d = tmp_path / "c.msgpack", tmp_path / "d.msgpack"
    result = shardstream("split", path, "40", "-o", c, "-o", d, "-q")
    assert result.returncode == 0, result.stderr
    assert len(keys_of(c)) == 40 and len(keys_of(d)) == 8


def test_manifest_input_gets_msgpack_outputs(pristine, tmp_path):
    _, samples = pristine
    manifest = write_sharded(tmp_path, "set", samples, [16, 16, 16])
    result = shardstream("split", manifest, "20", "-q")
    assert result.returncode == 0, result.stderr
    assert keys_of(tmp_path / "set-0.msgpack") == [s["key"] for s in samples[:20]]
    assert keys_of(tmp_path / "set-1.msgpack") == [s["key"] for s in samples[20:]]
    glob_without_o = shardstream("split", tmp_path / "set-0000*.msgpack", "20")
    assert glob_without_o.returncode == 2
    assert "give the output names with -o" in glob_without_o.stderr


@pytest.mark.parametrize(
    ("positions", "message"),
    [
        (["30", "10"], "positions must be strictly ascending, got 30 10"),
        (["10", "10"], "positions must be strictly ascending, got 10 10"),
        (["48"], "position 48 is past the last sample"),
        (["0"], "argument POS: '0' is not an integer >= 1"),
        (["x"], "argument POS: 'x' is not an integer >= 1"),
    ],
)
def test_bad_positions_exit_2_and_write_nothing(demo, tmp_path, positions, message):
    path, _ = demo
    before = listing(tmp_path)
    result = shardstream("split", path, *positions)
    assert result.returncode == 2
    assert "usage: shardstream split" in result.stderr
    assert message in result.stderr
    assert listing(tmp_path) == before


def test_wrong_number_of_outputs_and_output_equal_to_input(demo, tmp_path):
    path, _ = demo
    result = shardstream("split", path, "10", "20", "-o", tmp_path / "a.msgpack")
    assert result.returncode == 2
    assert "expected 3 output names (one per part), got 1" in result.stderr
    result = shardstream("split", path, "10", "-o", tmp_path / "a.msgpack", path, "-y")
    assert result.returncode == 2
    assert f"input and output must be different files: {path} is input {path}" in result.stderr
    result = shardstream("split", path, "10", "-o", tmp_path / "a.msgpack", tmp_path / "a.msgpack")
    assert result.returncode == 2
    assert "given twice" in result.stderr


def test_existing_output_stops_before_anything_is_written(demo, tmp_path):
    path, _ = demo
    existing = write_packed(tmp_path / "demo-1.msgpack", [{"key": "old"}])
    before = {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)}
    result = shardstream("split", path, "10", "20")
    assert result.returncode == 1
    assert result.stderr.startswith(f"shardstream split: error: {existing}: exists")
    assert {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)} == before
    assert not (tmp_path / "demo-0.msgpack").exists()
    result = shardstream("split", path, "10", "20", "-y", "-q")
    assert result.returncode == 0, result.stderr
    assert len(keys_of(existing)) == 10


def test_help():
    result = shardstream("split", "--help")
    assert result.returncode == 0
    assert "--outfiles" in result.stdout and "POS" in result.stdout


def test_failure_midway_leaves_no_part_behind(pristine, tmp_path):
    # shards may repeat keys; the writer of the second part refuses the repeat midway
    _, samples = pristine
    manifest = write_sharded(tmp_path, "dup", samples[0:10] + samples[5:15], [10, 10])
    before = listing(tmp_path)
    result = shardstream("split", manifest, "3", "-q")
    assert result.returncode == 1
    assert result.stderr == (
        f"shardstream split: error: {tmp_path / 'dup-1.msgpack'}: duplicate key "
        f"{samples[5]['key']!r} not allowed\n"
    )
    assert listing(tmp_path) == before  # the finished first part is gone too, no temp files
