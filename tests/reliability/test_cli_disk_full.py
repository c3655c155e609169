"""The CLI reports a full disk, a read-only file system or a full output stream in one line
(exit code 1), never with a traceback; nothing is left in the output folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shardstream import FileWriter
from shardstream.sets.demo import generate_demo_images

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "shardstream", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def mount_tmpfs(folder: Path, options: str) -> None:
    folder.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {result.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (a real full disk after 1 MiB)."""
    folder = tmp_path / "small"
    mount_tmpfs(folder, "size=1m")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def read_only(tmp_path):
    folder = tmp_path / "ro"
    mount_tmpfs(folder, "size=1m,ro")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """30 demo JPEGs, about 3 MB: more than the small disk holds."""
    root = tmp_path_factory.mktemp("disk-full") / "images"
    return generate_demo_images(root, num_images=30, num_classes=3, workers=1).root


def assert_one_line_error(result: subprocess.CompletedProcess, command: str, text: str) -> None:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"shardstream {command}: error: {text}"), lines[0]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_write_to_a_full_disk_is_one_line_and_leaves_nothing(images, small_disk, workers):
    output = small_disk / "out.msgpack"
    result = run_cli(
        "write", "imagefolder", str(images), "-o", str(output), "--workers", workers, "-y",
        "--quiet",
    )  # fmt: skip
    assert_one_line_error(result, "write", "No space left on device")
    assert result.stderr.rstrip().endswith("(ENOSPC)")
    assert list(small_disk.iterdir()) == []


def test_write_to_a_read_only_file_system_is_one_line(images, read_only):
    result = run_cli("write", "imagefolder", str(images), "-o", str(read_only / "o.msgpack"))
    assert_one_line_error(result, "write", "Read-only file system")
    assert result.stderr.rstrip().endswith("(EROFS)")


def test_output_to_a_full_stream_is_one_line(tmp_path):
    data = tmp_path / "numbers.msgpack"
    with FileWriter(data, overwrite=True, disable=True) as writer:
        for i in range(50):
            writer.write({"key": f"n{i:02d}", "value": i})
    with open("/dev/full", "w") as full:
        for command in ("info", "cat"):
            result = run_cli(command, str(data), stdout=full)
            assert_one_line_error(result, command, "No space left on device")
