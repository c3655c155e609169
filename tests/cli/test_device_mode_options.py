"""``train dino --resize/--decode`` and ``bench --preset ... --resize/--preset-decode``."""

from __future__ import annotations

import pytest
import torch

from shardstream.cli import main
from shardstream.methods.train.checkpoint import load_checkpoint

from .demo_data import demo_samples, shardstream, write_packed

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="refused only without CUDA")


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    return write_packed(tmp_path_factory.mktemp("modes") / "demo.msgpack", demo_samples()[:24])


def _train(packed, out, *extra):
    return [
        "train", "dino", str(packed), "--out", str(out), "--steps", "2", "--batch-size", "8",
        "--workers", "1", "--device", "cpu", "--quiet", *extra,
    ]  # fmt: skip


def test_train_dino_resizes_on_the_device(packed, tmp_path, capsys):
    assert main(_train(packed, tmp_path, "--resize", "device")) == 0
    assert capsys.readouterr().out.startswith("dino: steps 0-2, loss ")
    config = load_checkpoint(tmp_path / "checkpoint.pt")["config"]
    assert (config["resize"], config["decode"]) == ("device", "cpu")


@NO_CUDA
def test_train_dino_refuses_decode_on_the_device_without_cuda(packed, tmp_path, capsys):
    assert main(_train(packed, tmp_path, "--decode", "device")) == 1
    error = capsys.readouterr().err
    assert "DinoPreset(decode='device') decodes JPEGs with nvJPEG on a CUDA GPU" in error


def test_train_dino_refuses_an_unknown_mode(packed, tmp_path):
    with pytest.raises(SystemExit) as caught:
        main(_train(packed, tmp_path, "--resize", "gpu"))
    assert caught.value.code == 2


def test_bench_preset_with_resize_on_the_device(packed):
    result = shardstream(
        "bench", packed, "--preset", "dino", "--resize", "device", "--workers", "1",
        "--no-loose", "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    mode = [line for line in result.stdout.splitlines() if line.startswith("mode:")]
    assert mode == [
        "mode:       Loader with the dino preset, batches of 32 (resize device, decode cpu), "
        "sequential, 1 worker(s)"
    ]
    assert "24 samples read in" in result.stdout


def test_bench_device_modes_need_a_preset_that_has_them(packed):
    result = shardstream("bench", packed, "--preset", "eval", "--resize", "device", "-q")
    assert result.returncode == 1
    assert "--resize device / --preset-decode device need --preset dino or supervised" in (
        result.stderr
    )


@NO_CUDA
def test_bench_refuses_decode_on_the_device_without_cuda(packed):
    result = shardstream(
        "bench", packed, "--preset", "supervised", "--preset-decode", "device", "--no-loose", "-q"
    )
    assert result.returncode == 1
    assert "SupervisedPreset(decode='device')" in result.stderr
