"""bench_loader.py runs end to end on a tiny demo set and prints every row of its table.

FFCV is optional: when it is not importable its row says "not installed" and the run still passes.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_loader  # noqa: E402


def test_tiny_run_prints_every_row(tmp_path, capsys):
    argv = ["--images", "40", "--batch-size", "8", "--repeats", "1", "--min-seconds", "0.05"]
    assert bench_loader.main([*argv, "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "40 demo images" in out
    for row in (
        "plain full decode, 2 processes (reference)",
        "(a) raw bytes vs datadings Dataset+DataLoader",
        "(b) RRC224+flip+norm vs torchvision ImageFolder",
        "(b) RRC224+flip+norm vs FFCV Loader",
        "(c) 1->2 worker speed-up vs plain decode's",
        "shardstream (b) stage split of worker time: read",
    ):
        assert row in out, row
    assert (tmp_path / "demo-v2-40.msgpack").exists()
    if bench_loader.ffcv_available():
        assert (tmp_path / "demo-v2-40.beton").exists()
        assert "FFCV not installed" not in out
    else:
        assert "FFCV not installed" in out


def test_original_jpeg_bytes_are_packed_unchanged(tmp_path):
    demo = bench_loader.demo_images(tmp_path, 12, progress=False)
    packed = bench_loader.packed_file(tmp_path, demo)
    from shardstream import MsgpackReader

    reader = MsgpackReader(packed)
    assert len(reader) == 12
    for index, (path, label) in enumerate(zip(demo.paths, demo.labels)):
        sample = reader.get(index)
        assert sample["key"] == path.relative_to(demo.root).as_posix()
        assert sample["image"] == path.read_bytes() and sample["label"] == label
