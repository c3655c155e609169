"""bench_dense.py runs end to end on a tiny demo set and prints every row of its table."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_dense  # noqa: E402


def test_tiny_run_prints_every_row(tmp_path, capsys):
    argv = ["--images", "12", "--batch-size", "2", "--repeats", "1", "--min-seconds", "0.05"]
    assert bench_dense.main([*argv, "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "12 demo images" in out
    for row in (
        "image+mask RRC512+flip vs tv v2 on PIL",
        "image+mask RRC512+flip vs tv v2 on tensors",
    ):
        assert row in out, row
    assert out.count("img/s; peer rounds ") == 2  # both spreads on each row


def test_packed_set_holds_the_files_and_label_maps_of_the_image_size(tmp_path):
    from shardstream import MsgpackReader

    demo, masks, packed = bench_dense.dense_set(tmp_path, 6, progress=False)
    reader = MsgpackReader(packed)
    assert len(reader) == 6
    for index, (path, mask) in enumerate(zip(demo.paths, masks)):
        sample = reader.get(index)
        assert sample["image"] == path.read_bytes()
        assert sample["label_image"] == mask.read_bytes()
        with Image.open(io.BytesIO(sample["label_image"])) as labels, Image.open(path) as image:
            assert labels.mode == "P" and labels.size == image.size
            values = set(np.unique(np.asarray(labels)).tolist())
        assert 255 in values and values - {255} <= set(range(21))
