"""``shardstream cat`` through the real console script, on packed demo images."""

from __future__ import annotations

import reprlib
import shutil
import subprocess
import sys

import pytest

from tests.cli.demo_data import (
    demo_samples,
    shardstream,
    write_packed,
    write_sharded,
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cat")
    samples = demo_samples()
    path = write_packed(folder / "demo.msgpack", samples)
    return path, samples


def abbreviated(text: str, limit: int) -> str:
    """reprlib's rule: keep (limit - 3) // 2 characters, '...', and the rest from the end."""
    if len(text) <= limit:
        return text
    head = (limit - 3) // 2
    return text[:head] + "..." + text[len(text) - (limit - 3 - head) :]


def expected_line(sample: dict, maxstring: int) -> str:
    short = reprlib.Repr()
    short.maxstring = maxstring
    fields = {
        "class_name": short.repr(sample["class_name"]),
        "image": abbreviated(repr(sample["image"]), maxstring),
        "key": short.repr(sample["key"]),
        "label": repr(sample["label"]),
    }
    return "{" + ", ".join(f"{name!r}: {value}" for name, value in fields.items()) + "}"


def test_cat_prints_one_abbreviated_line_per_sample(demo):
    path, samples = demo
    result = shardstream("cat", path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [expected_line(s, 40) for s in samples]
    first = samples[0]
    image = repr(first["image"])
    assert lines[0] == (
        "{'class_name': 'astronaut', 'image': "
        + image[:18]
        + "..."
        + image[-19:]
        + ", 'key': 'astronaut/astronaut_000000.jpg', 'label': 0}"
    )
    assert result.stderr == ""


def test_maxstring_applies_to_strings_and_bytes(demo):
    path, samples = demo
    result = shardstream("cat", path, "-s", "10")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [expected_line(s, 10) for s in samples]
    assert (
        lines[0]
        == "{'class_name': 'as...aut', 'image': b'\\...xd9', 'key': 'as...jpg', 'label': 0}"
    )


def test_cat_matches_datadings_for_text_fields(tmp_path):
    # Without bytes (which datadings cut at a fixed 30 characters) and with field names shorter
    # than --maxstring (datadings abbreviated those too) the lines are datadings'.
    samples = [
        {"key": f"k{i}", "text": "x" * (10 * i), "label": i, "ratio": i / 3} for i in range(6)
    ]
    path = write_packed(tmp_path / "text.msgpack", samples)
    ours = shardstream("cat", path, "--maxstring", "25")
    theirs = subprocess.run(
        [sys.executable, "-m", "datadings.commands.cat", str(path), "--maxstring", "25"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ours.returncode == 0 and theirs.returncode == 0, theirs.stderr
    assert ours.stdout.splitlines() == theirs.stdout.splitlines()[:-1]  # theirs ends with ""
    assert theirs.stdout.splitlines()[-1] == ""
    assert ours.stdout.splitlines()[3] == (
        "{'key': 'k3', 'label': 3, 'ratio': 1.0, 'text': '" + "x" * 10 + "..." + "x" * 10 + "'}"
    )


def test_cat_of_a_manifest_prints_every_shard_in_order(demo, tmp_path):
    _, samples = demo
    manifest = write_sharded(tmp_path, "part", samples, [20, 8, 20])
    result = shardstream("cat", manifest)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [expected_line(s, 40) for s in samples]
    globbed = shardstream("cat", tmp_path / "part-*.msgpack", "-s", "10")
    assert globbed.stdout.splitlines() == [expected_line(s, 10) for s in samples]


def test_broken_pipe_exits_quietly(demo):
    path, _ = demo
    exe = shutil.which("shardstream")
    command = [exe] if exe else [sys.executable, "-m", "shardstream"]
    # ~100 KB per line: far more than a pipe buffer, so the writer hits the closed pipe.
    process = subprocess.Popen(
        [*command, "cat", str(path), "--maxstring", "1000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = process.stdout.readline()
    process.stdout.close()
    process.wait(timeout=60)
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert first.startswith(b"{'class_name': 'astronaut', 'image': b'\\xff\\xd8")
    assert process.returncode == 0
    assert stderr == ""


def test_shell_pipe_into_head(demo):
    path, samples = demo
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"shardstream cat '{path}' -s 1000000 | head -1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout.count("\n") == 1
    assert result.stdout.startswith("{'class_name': 'astronaut', 'image': b'\\xff\\xd8")


@pytest.mark.parametrize(
    "args", [("cat",), ("cat", "x.msgpack", "-s", "0"), ("cat", "x.msgpack", "-s", "many")]
)
def test_usage_errors_exit_2(args):
    result = shardstream(*args)
    assert result.returncode == 2
    assert "usage: shardstream cat" in result.stderr


def test_missing_file_exits_1_with_message(tmp_path):
    result = shardstream("cat", tmp_path / "absent.msgpack")
    assert result.returncode == 1
    assert result.stderr == f"shardstream cat: error: {tmp_path / 'absent.msgpack'}: not found\n"


def test_help():
    result = shardstream("cat", "--help")
    assert result.returncode == 0
    assert "--maxstring" in result.stdout and "broken pipe" in result.stdout
