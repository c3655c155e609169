"""``shardstream demo`` through the real console script."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from shardstream import MsgpackReader


def shardstream_command(*args: str, cwd=None) -> subprocess.CompletedProcess:
    exe = shutil.which("shardstream")
    command = [exe] if exe else [sys.executable, "-m", "shardstream"]
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_demo_packs_verifies_and_reads_back(tmp_path):
    out = tmp_path / "demo"
    result = shardstream_command(
        "demo", "--out", str(out), "--images", "24", "--classes", "4", "--quiet", "--no-train"
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert re.search(r"images:  24 JPEGs in 4 classes under .*images \(mean \d+ KB\)", text)
    assert re.search(
        r"packed:  .*demo\.msgpack \(\d+\.\d MB \+ index\) in [\d.]+ s: [\d,]+ samples/s", text
    )
    assert "verify:  md5 of data and index match" in text
    assert "labels:  4 classes, 6-6 images each" in text
    assert "dino:" not in text and "knn:" not in text
    for label in (
        "sequential raw",
        "shuffled get()",
        "zero-copy views",
        "decoded dicts",
        "Pillow JPEG",
    ):
        assert label in text
    with MsgpackReader(out / "demo.msgpack") as reader:
        assert len(reader) == 24
        sample = reader.get(0)
        assert set(sample) == {"key", "image", "label", "class_name"}
        assert sample["image"][:2] == b"\xff\xd8"  # the original JPEG bytes
        assert sorted({reader.get(i)["class_name"] for i in range(24)}) == sorted(
            p.name for p in (out / "images").iterdir() if p.is_dir()
        )


def test_demo_trains_dino_and_reports_knn(tmp_path):
    out = tmp_path / "demo"
    result = shardstream_command(
        "demo", "--out", str(out), "--images", "64", "--classes", "4", "--quiet",
        "--train-steps", "4",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "labels:  4 classes, 16-16 images each" in lines
    dino = [line for line in lines if line.startswith(("dino:", "knn:"))]
    assert len(dino) == 5, result.stdout
    assert re.fullmatch(
        r"dino:    4 steps x 32 images \(32 px x 2 \+ 16 px x 2\), [\d,]+ images/s, "
        r"input stall \d+ %",
        dino[0],
    ), dino[0]
    assert re.fullmatch(r"dino:    loss by tenth of the run:( \d\.\d\d){4}", dino[1]), dino[1]
    for line, size in zip(dino[2:4], (16, 32)):
        assert re.fullmatch(
            rf"knn:     top-1 \d+\.\d % trained vs \d+\.\d % random init \({size} px centre "
            rf"crops, 32 held out, k=20\)",
            line,
        ), line
    assert dino[4] == f"dino:    checkpoint {out / 'dino' / 'checkpoint.pt'}"


def test_demo_bad_argument_exits_1_with_message(tmp_path):
    result = shardstream_command("demo", "--out", str(tmp_path), "--images", "0", "--quiet")
    assert result.returncode == 1
    assert result.stderr.startswith("shardstream demo: error:")
    assert "num_images" in result.stderr


# bare `shardstream` prints the whole help on stdout (exit 2): see test_consistency.py
@pytest.mark.parametrize("args", [("demo", "--images", "many"), ("nope",)])
def test_usage_errors_exit_2(args):
    result = shardstream_command(*args)
    assert result.returncode == 2
    assert "usage: shardstream" in result.stderr


def test_help_lists_demo():
    result = shardstream_command("--help")
    assert result.returncode == 0 and "demo" in result.stdout
    result = shardstream_command("demo", "--help")
    assert result.returncode == 0 and "--images" in result.stdout
    assert "--train-steps" in result.stdout and "--no-train" in result.stdout
