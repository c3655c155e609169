"""Class names (``<dataset>.labels.txt``) travel with the samples through split, sample, merge and
shuffle, and ``info`` shows them."""

from __future__ import annotations

from pathlib import Path

import pytest

from shardstream import MsgpackReader
from shardstream.read.list import load_labels
from tests.cli.demo_data import shardstream, write_packed, write_sharded

NAMES = ["cat", "dog", "bird"]


def _samples(n: int, prefix: str = "s", classes: int = 3) -> list[dict]:
    return [
        {"key": f"{prefix}{j:03d}", "label": j % classes, "x": bytes([j % 256]) * 8}
        for j in range(n)
    ]


def _labelled(path: Path, samples: list[dict], names: list[str] | None = NAMES) -> Path:
    write_packed(path, samples)
    if names is not None:
        Path(f"{path}.labels.txt").write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    return path


def _names(path: Path) -> list[str] | None:
    file = Path(f"{path}.labels.txt")
    return load_labels(file) if file.exists() else None


def _ok(*args):
    result = shardstream(*args, "-q")
    assert result.returncode == 0, result.stderr
    return result


def test_split_sample_shuffle_carry_the_names(tmp_path):
    data = _labelled(tmp_path / "d.msgpack", _samples(30))
    a, b = tmp_path / "a.msgpack", tmp_path / "b.manifest"
    _ok("split", data, "10", "-o", a, b)
    assert _names(a) == NAMES and _names(b) == NAMES
    _ok("sample", b, tmp_path / "s.msgpack", "5", "--seed", "1")
    assert _names(tmp_path / "s.msgpack") == NAMES
    _ok("shuffle", data, tmp_path / "sh.msgpack", "--seed", "2")
    assert _names(tmp_path / "sh.msgpack") == NAMES


def test_without_names_none_are_written_and_stale_ones_are_removed(tmp_path):
    data = _labelled(tmp_path / "d.msgpack", _samples(12), names=None)
    out = _labelled(tmp_path / "out.msgpack", _samples(3, "old"), names=["stale"])
    _ok("sample", data, out, "4", "-s", "sequential", "-y")
    assert _names(out) is None  # the replaced dataset's names went with it
    with MsgpackReader(out) as reader:
        assert list(reader.keys) == ["s000", "s001", "s002", "s003"]


def test_a_failed_write_leaves_no_names(tmp_path):
    data = _labelled(tmp_path / "d.msgpack", _samples(12))
    out = tmp_path / "dup.msgpack"
    result = shardstream("merge", data, data.with_name("d.msgpack.offsets"), out, "-q")
    assert result.returncode != 0
    assert not out.exists() and _names(out) is None


def test_merge_carries_agreeing_names_and_warns_about_an_input_without(tmp_path):
    one = _labelled(tmp_path / "one.msgpack", _samples(6, "a"))
    two = _labelled(tmp_path / "two.msgpack", _samples(6, "b"))
    bare = _labelled(tmp_path / "bare.msgpack", _samples(6, "c"), names=None)
    out = tmp_path / "m.msgpack"
    result = _ok("merge", one, two, out, "--seed", "3")
    assert _names(out) == NAMES and "warning" not in result.stderr
    out2 = tmp_path / "m2.msgpack"
    result = _ok("merge", one, bare, out2, "-s", "concat")
    assert _names(out2) == NAMES
    assert f"warning: {bare} has no class names file" in result.stderr


def test_merge_refuses_disagreeing_names_and_writes_nothing(tmp_path):
    one = _labelled(tmp_path / "one.msgpack", _samples(6, "a"))
    other = _labelled(tmp_path / "other.msgpack", _samples(6, "b"), names=["cat", "bird", "dog"])
    out = tmp_path / "m.msgpack"
    result = shardstream("merge", one, other, out, "-q")
    assert result.returncode == 1
    assert f"{other}: its class names differ from those of {one} (label 1: 'bird' vs 'dog')" in (
        result.stderr
    )
    assert not out.exists() and _names(out) is None


def test_a_manifest_input_carries_its_names(tmp_path):
    manifest = write_sharded(tmp_path, "sh", _samples(9), [4, 5])
    Path(f"{manifest}.labels.txt").write_text("x\ny\nz\n", encoding="utf-8")
    _ok("shuffle", manifest, tmp_path / "o.msgpack", "--seed", "1")
    assert _names(tmp_path / "o.msgpack") == ["x", "y", "z"]


def test_info_shows_the_names_with_the_histogram(tmp_path):
    data = _labelled(tmp_path / "d.msgpack", _samples(7))
    out = _ok("info", data).stdout
    assert "classes:  3 in d.msgpack.labels.txt: cat, dog, bird\n" in out
    assert "  0  cat   3\n  1  dog   2\n  2  bird  2\n" in out
    plain = _labelled(tmp_path / "p.msgpack", _samples(7), names=None)
    out = _ok("info", plain).stdout
    assert "classes:" not in out and "  0  3\n" in out


@pytest.mark.parametrize("count", [1, 12])
def test_info_abbreviates_long_name_lists(tmp_path, count):
    names = [f"c{i}" for i in range(count)]
    data = _labelled(tmp_path / "d.msgpack", _samples(4, classes=1), names=names)
    line = next(x for x in _ok("info", data).stdout.splitlines() if x.startswith("classes:"))
    shown = ", ".join(names[:10]) + (", ..." if count > 10 else "")
    assert line == f"classes:  {count} in d.msgpack.labels.txt: {shown}"
