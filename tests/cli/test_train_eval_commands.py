"""``shardstream train dino`` and ``shardstream eval knn`` through ``shardstream.cli.main``."""

from __future__ import annotations

import json
import re

import pytest

from shardstream.cli import main
from shardstream.methods.train.checkpoint import load_checkpoint

from .demo_data import demo_samples, write_packed


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """48 demo images in 4 classes (12 each)."""
    return write_packed(tmp_path_factory.mktemp("train") / "demo.msgpack", demo_samples())


@pytest.fixture(scope="module")
def trained(packed, tmp_path_factory):
    """A 6-step run made by the command line; its run folder."""
    out = tmp_path_factory.mktemp("run")
    code = main(_train_args(packed, out))
    assert code == 0
    return out


def _train_args(packed, out, *extra):
    return [
        "train", "dino", str(packed), "--out", str(out), "--steps", "6", "--batch-size", "16",
        "--workers", "1", "--checkpoint-every", "3", "--device", "cpu", "--quiet", *extra,
    ]  # fmt: skip


def test_train_prints_losses_speed_and_checkpoint(packed, tmp_path, capsys):
    assert main(_train_args(packed, tmp_path)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(
        r"dino: steps 0-6, loss \d\.\d{4} -> \d\.\d{4}, [\d,]+ images/s, input stall \d+\.\d %",
        lines[0],
    ), lines[0]
    assert lines[1] == f"checkpoint: {tmp_path / 'checkpoint.pt'}"
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 6 and state["world_size"] == 1
    assert state["config"]["batch_size"] == 16 and state["config"]["n_prototypes"] == 256
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [6]  # every 10 steps, and the last


def test_resume_with_other_settings_exits_1_naming_the_checkpoint(packed, trained, capsys):
    code = main(_train_args(packed, trained, "--resume", "--lr", "0.01"))
    assert code == 1
    error = capsys.readouterr().err
    assert error.startswith(f"shardstream train: error: checkpoint {trained / 'checkpoint.pt'}: ")
    assert "made with lr=0.008, this run has 0.01" in error


def test_resume_of_a_finished_run_trains_no_more(packed, trained, capsys):
    assert main(_train_args(packed, trained, "--resume")) == 0
    assert capsys.readouterr().out == f"checkpoint: {trained / 'checkpoint.pt'}\n"


def test_eval_knn_prints_trained_and_random_init(packed, trained, capsys):
    args = ["eval", "knn", str(packed), "--checkpoint", str(trained / "checkpoint.pt")]
    assert main([*args, "--random-init", "--workers", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"knn: top-1 \d+\.\d % \(k=20, 24 bank, 24 held out, 16 px\)", lines[0]), (
        lines[0]
    )
    assert re.fullmatch(r"knn: random-init top-1 \d+\.\d %", lines[1]), lines[1]


def test_eval_knn_options(packed, trained, capsys):
    args = ["eval", "knn", str(packed), "--checkpoint", str(trained / "checkpoint.pt")]
    assert main([*args, "--holdout", "3", "-k", "5", "--image-size", "32", "--workers", "0"]) == 0
    assert re.fullmatch(
        r"knn: top-1 \d+\.\d % \(k=5, 32 bank, 16 held out, 32 px\)\n", capsys.readouterr().out
    )


def test_eval_knn_bad_checkpoint_exits_1(packed, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["eval", "knn", str(packed), "--checkpoint", str(bad)]) == 1
    assert capsys.readouterr().err.startswith(f"shardstream eval: error: checkpoint {bad}: ")
