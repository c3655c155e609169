"""bench_dino.py runs end to end on a tiny demo set and prints every row of its table."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_dino  # noqa: E402


def test_tiny_run_prints_every_row(tmp_path, capsys):
    argv = ["--images", "12", "--per-run", "8", "--batch", "4", "--repeats", "1"]
    argv += ["--workers", "0", "--images-dir", str(tmp_path), "--workdir", str(tmp_path)]
    assert bench_dino.main(argv) == 0
    out = capsys.readouterr().out
    for row in (
        "plain full decode, 0 processes",
        "the same with Pillow (dinov2's loader)",
        "(b) steady vs Pillow decode (context, no target)",
        "torchvision ImageFolder + DataAugmentationDINO",
        "(a) end to end, normalised float on the CPU",
        "(b) worker side alone, uint8 out",
        "(b) the same in steady state (start-up excluded)",
        "device step alone on the CPU, batch 4",
        "loader stats() of the last pass, (b) worker side",
        "crop + resize + flip (incl. decode)",
        "plain full decode, system libjpeg-turbo (in turn)",
        "(c) resize='device' worker side, steady state",
        "(c) / the quicker plain decode per repeat",
        "band decode into the slot (+ its glue)",
        "collation (payloads in place)",
        "its planes to RGB alone (upsampling + colour)",
    ):
        assert row in out, row
    assert (tmp_path / "demo-v2-12.msgpack").exists()


def test_shipped_only_prints_the_resize_on_device_rows(tmp_path, capsys):
    argv = ["--images", "12", "--per-run", "8", "--batch", "4", "--repeats", "1"]
    argv += ["--workers", "0", "--images-dir", str(tmp_path), "--workdir", str(tmp_path)]
    assert bench_dino.main([*argv, "--shipped-only"]) == 0
    out = capsys.readouterr().out
    for row in (
        "(c) resize='device' worker side, steady state",
        "(c) / the quicker plain decode per repeat",
        "of which planes to RGB",
        "band decode into the slot (+ its glue)",
    ):
        assert row in out, row
    assert "(a) end to end" not in out and "(b) worker side" not in out


def test_baseline_augmentation_matches_dinov2_structure():
    from PIL import Image

    augment = bench_dino.make_dinov2_augmentation()
    views = augment(Image.new("RGB", (120, 90), (10, 200, 30)))
    assert sorted(views) == ["global_crops", "global_crops_teacher", "local_crops", "offsets"]
    assert [tuple(v.shape) for v in views["global_crops"]] == [(3, 224, 224)] * 2
    assert [tuple(v.shape) for v in views["local_crops"]] == [(3, 96, 96)] * 8
    assert views["global_crops_teacher"][0] is views["global_crops"][0]
    batch = bench_dino.stack_crop_major([(views, 1), (views, 2)])
    assert tuple(batch["global_crops"].shape) == (4, 3, 224, 224)
    assert tuple(batch["local_crops"].shape) == (16, 3, 96, 96)
    assert batch["labels"].tolist() == [1, 2]
