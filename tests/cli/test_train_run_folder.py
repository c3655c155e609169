"""``train dino`` run folders: resume with the run's own settings, extend with ``--steps``,
never reuse a folder silently; ``config.yaml``, ``metrics.csv``, TensorBoard and ``knn.json``."""

from __future__ import annotations

import csv
import json
import re

import pytest
import torch
import yaml

from shardstream.cli import main
from shardstream.methods.train.checkpoint import load_checkpoint
from shardstream.methods.train.config import DinoTrainConfig
from shardstream.methods.train.run_log import METRICS_COLUMNS, tensorboard_available
from shardstream.methods.train.ssl_config import read_config_file

from .demo_data import demo_samples, write_packed

#: Flat schedules: the learning rate (after its warmup), the weight decay and the EMA momentum do
#: not depend on the run's length, so a run extended from 20 to 40 steps computes exactly what a
#: 40-step run does (with cosine schedules an extension stretches them over the new total).
#: ``min_lr`` is ``base_lr`` scaled to the batch of 8 (``base_lr * 8 / 256``; powers of two, so
#: exactly equal): the cosine from one to the other is constant.
FLAT_SCHEDULES = """\
optim:
  base_lr: 0.03125
  min_lr: 0.0009765625
  weight_decay: 0.04
  weight_decay_end: 0.04
teacher:
  momentum_teacher: 0.99
  final_momentum_teacher: 0.99
crops:
  local_crops_number: 1
shardstream:
  warmup_steps: 3
  log_every: 1
  torch_threads: 1
"""


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """48 demo images in 4 classes (12 each)."""
    return write_packed(tmp_path_factory.mktemp("train") / "demo.msgpack", demo_samples())


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "flat.yaml"
    path.write_text(FLAT_SCHEDULES)
    return path


def _train(packed, out, *extra):
    return ["train", "dino", str(packed), "--out", str(out), *extra]


def _first_run(packed, out, config_file, steps):
    return _train(
        packed, out, "--config-file", str(config_file), "--steps", str(steps),
        "--batch-size", "8", "--workers", "0", "--checkpoint-every", "0", "--device", "cpu",
        "--quiet",
    )  # fmt: skip


def _metrics(out):
    with open(out / "metrics.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == METRICS_COLUMNS
        return list(reader)


@pytest.fixture(scope="module")
def runs(packed, config_file, tmp_path_factory):
    """Run A: 20 steps, then ``--resume --steps 40`` and nothing else; run B: 40 in one go."""
    resumed, whole = tmp_path_factory.mktemp("resumed"), tmp_path_factory.mktemp("whole")
    assert main(_first_run(packed, resumed, config_file, 20)) == 0
    first_half = _metrics(resumed)
    assert main(_train(packed, resumed, "--resume", "--steps", "40")) == 0
    assert main(_first_run(packed, whole, config_file, 40)) == 0
    return resumed, whole, first_half


def test_resume_with_only_steps_extends_the_run_exactly(runs):
    resumed, whole, first_half = runs
    assert [int(row["step"]) for row in first_half] == list(range(1, 21))
    rows_resumed, rows_whole = _metrics(resumed), _metrics(whole)
    assert [int(row["step"]) for row in rows_resumed] == list(range(1, 41))
    assert rows_resumed[:20] == first_half  # the first run's rows are kept, not rewritten
    # the same losses, to the last bit (CSV holds each float's shortest exact repr)
    losses = [float(row["loss"]) for row in rows_resumed]
    assert losses == [float(row["loss"]) for row in rows_whole]
    assert len(set(losses)) > 30  # real, changing losses
    state_a, state_b = (
        load_checkpoint(resumed / "checkpoint.pt"),
        load_checkpoint(whole / "checkpoint.pt"),
    )
    assert state_a["step"] == state_b["step"] == 40
    assert state_a["config"]["steps"] == 40 and state_a["config"]["batch_size"] == 8
    _assert_same(state_a["model"], state_b["model"], "model")


def _assert_same(a, b, where):
    """Equal nested state: tensors bit for bit, everything else ==."""
    if isinstance(b, dict):
        assert isinstance(a, dict) and list(a) == list(b), where
        for key in b:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(b, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


def test_resume_reports_what_it_restored_and_changed(packed, config_file, tmp_path, capsys):
    assert main(_first_run(packed, tmp_path, config_file, 2)) == 0
    capsys.readouterr()
    assert main(_train(packed, tmp_path, "--resume", "--steps", "3", "--quiet")) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"resume: {tmp_path / 'checkpoint.pt'} at step 2 of 2, its settings restored; "
        "changed: steps 2 -> 3",
        "resume: the lr, weight decay and EMA schedules now span 3 steps",
    ]
    assert captured.out.startswith("dino: steps 2-3, loss ")


def test_resume_refuses_an_unsafe_change_by_name(packed, config_file, tmp_path, capsys):
    assert main(_first_run(packed, tmp_path, config_file, 2)) == 0
    before = (tmp_path / "checkpoint.pt").read_bytes()
    capsys.readouterr()
    assert main(_train(packed, tmp_path, "--resume", "--batch-size", "16", "--steps", "4")) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"shardstream train: error: checkpoint {tmp_path / 'checkpoint.pt'}: ")
    assert "made with batch_size=8, this run has 16; a resumed run may change only " in error
    assert "Traceback" not in error
    assert (tmp_path / "checkpoint.pt").read_bytes() == before


def test_resume_cannot_shorten_a_run_before_its_checkpoint(packed, config_file, tmp_path, capsys):
    assert main(_first_run(packed, tmp_path, config_file, 3)) == 0
    capsys.readouterr()
    assert main(_train(packed, tmp_path, "--resume", "--steps", "2")) == 1
    assert "the run is at step 3, so steps=2 would end before it" in capsys.readouterr().err


def test_reusing_a_run_folder_needs_resume_or_yes(packed, config_file, tmp_path, capsys):
    assert main(_first_run(packed, tmp_path, config_file, 3)) == 0
    checkpoint, metrics = (tmp_path / name for name in ("checkpoint.pt", "metrics.csv"))
    saved = checkpoint.read_bytes(), metrics.read_bytes()
    capsys.readouterr()
    assert main(_first_run(packed, tmp_path, config_file, 2)) == 1
    error = capsys.readouterr().err
    names = sorted(path.name for path in tmp_path.iterdir())
    expected = ["checkpoint.pt", "config.yaml", "log.jsonl", "metrics.csv"]
    assert [name for name in names if not name.startswith("events.out.tfevents.")] == expected
    assert error == (
        f"shardstream train: error: run folder {tmp_path} is not empty ({', '.join(names)}); "
        "add --resume to continue its run, -y to start over (its run files are replaced) or "
        "choose another --out\n"
    )
    assert (checkpoint.read_bytes(), metrics.read_bytes()) == saved  # untouched
    # -y starts over: the old run's rows are gone, not appended to
    (tmp_path / "notes.txt").write_text("mine")
    assert main([*_first_run(packed, tmp_path, config_file, 2), "-y"]) == 0
    assert capsys.readouterr().err.startswith(f"starting over in {tmp_path}: removed ")
    assert [int(row["step"]) for row in _metrics(tmp_path)] == [1, 2]
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [1, 2]
    assert load_checkpoint(checkpoint)["step"] == 2
    assert (tmp_path / "notes.txt").read_text() == "mine"  # not a run file: left alone


@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_resume_on_an_empty_folder_says_it_starts_fresh(packed, tmp_path, capsys, folder):
    out = tmp_path / "run"
    if folder == "empty":
        out.mkdir()
    args = _train(packed, out, "--resume", "--steps", "1", "--batch-size", "8", "--workers", "0")
    assert main([*args, "--device", "cpu", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"resume: no checkpoint in {out}, starting fresh\n"
    assert captured.out.startswith("dino: steps 0-1, loss ")


def test_run_folder_holds_config_metrics_and_knn_json(packed, runs, tmp_path, capsys):
    resumed, _, _ = runs
    # config.yaml: the resolved settings in dinov2's layout, valid as a --config-file
    document = yaml.safe_load((resumed / "config.yaml").read_text())
    assert document["train"]["batch_size_per_gpu"] == 8
    assert document["crops"]["local_crops_number"] == 1
    assert document["teacher"]["final_momentum_teacher"] == 0.99
    assert document["optim"]["scaling_rule"] == "linear_wrt_256"
    assert document["shardstream"]["steps"] == 40  # rewritten by the resume
    settings = read_config_file(resumed / "config.yaml")
    saved = load_checkpoint(resumed / "checkpoint.pt")["config"]
    expected = DinoTrainConfig.from_dict({**saved, "resume": False}, source="test").to_dict()
    assert DinoTrainConfig(**settings).to_dict() == expected
    # metrics.csv: every step (log_every 1), schedules and speed
    rows = _metrics(resumed)
    lr = 0.03125 * 8 / 256  # base_lr for the batch: 0.0009765625, exactly
    assert [float(row["lr"]) for row in rows[:3]] == pytest.approx([0, lr / 3, 2 * lr / 3])
    assert {float(row["lr"]) for row in rows[3:]} == {lr}  # warmup over, then flat
    assert {float(row["weight_decay"]) for row in rows} == {0.04}
    assert {float(row["teacher_momentum"]) for row in rows} == {0.99}
    assert {float(row["teacher_temperature"]) for row in rows} == {0.03}
    assert [int(row["epoch"]) for row in rows] == [step // 6 for step in range(40)]
    for row in rows:
        assert float(row["images_per_s"]) > 0 and 0 <= float(row["input_stall_pct"]) <= 100
        # the dino preset decodes inside its crop transform: no separate decode stage
        assert float(row["loader_read_s"]) > 0 and float(row["loader_transform_s"]) > 0
        assert float(row["loader_decode_s"]) == 0 and float(row["loader_collate_s"]) > 0
    log = [json.loads(line) for line in (resumed / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == list(range(1, 41))
    # the loader's summary line, counted since this process (the resumed run) started
    assert re.fullmatch(
        r"160 samples in 20 batches, [\d,]+ samples/s, .* \| read \d+ % decode 0 % "
        r"transform \d+ % collate \d+ % of [\d.]+ worker-s, wait [\d.]+ s",
        log[-1]["loader"],
    ), log[-1]["loader"]
    events = sorted(resumed.glob("events.out.tfevents.*"))
    assert bool(events) == tensorboard_available()
    # eval knn writes knn.json next to the checkpoint
    checkpoint = resumed / "checkpoint.pt"
    args = ["eval", "knn", str(packed), "--checkpoint", str(checkpoint), "--workers", "0"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    result = json.loads((resumed / "knn.json").read_text())
    assert set(result) == {
        "checkpoint", "step", "data", "test_data", "holdout", "image_size", "k",
        "temperature", "top1", "train_samples", "test_samples",
    }  # fmt: skip
    assert (result["step"], result["k"], result["holdout"]) == (40, 20, 2)
    assert (result["train_samples"], result["test_samples"], result["image_size"]) == (24, 24, 16)
    assert f"knn: top-1 {100 * result['top1']:.1f} %" in printed
    assert result["top1"] * 24 == pytest.approx(round(result["top1"] * 24))


@pytest.mark.skipif(not tensorboard_available(), reason="tensorboard is not installed")
def test_tensorboard_events_hold_the_metrics(runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    resumed, _, _ = runs
    events = EventAccumulator(str(resumed))
    events.Reload()
    losses = [event.value for event in events.Scalars("train/loss")]
    rows = _metrics(resumed)
    assert [event.step for event in events.Scalars("train/loss")] == list(range(1, 41))
    assert losses == pytest.approx([float(row["loss"]) for row in rows], rel=1e-6)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("crops:\n  global_crops_sise: 32\n", "unknown key crops.global_crops_sise"),
        ("shardstream:\n  stepz: 3\n", "unknown key shardstream.stepz"),
        ("ibot:\n  loss_weight: 1.0\n", "ibot.loss_weight=1.0 is not implemented"),
        ("evaluation:\n  eval_period_iterations: 5\n", "evaluation.eval_period_iterations"),
    ],
)
def test_config_file_with_an_unknown_key_is_refused_by_name(packed, tmp_path, capsys, text, named):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    out = tmp_path / "run"
    assert main(_train(packed, out, "--config-file", str(path), "--steps", "1")) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"shardstream train: error: config file {path}: ")
    assert named in error and "Traceback" not in error
    assert not out.exists()


def test_resume_without_checkpoint_starts_fresh_with_the_folders_settings(
    packed, config_file, tmp_path, capsys
):
    assert main(_first_run(packed, tmp_path, config_file, 2)) == 0
    (tmp_path / "checkpoint.pt").unlink()  # killed before its first checkpoint
    capsys.readouterr()
    assert main(_train(packed, tmp_path, "--resume", "--quiet")) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        f"resume: no checkpoint in {tmp_path}, starting fresh with the settings of "
        f"{tmp_path / 'config.yaml'}\n"
    )
    assert captured.out.startswith("dino: steps 0-2, loss ")
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert (state["step"], state["config"]["batch_size"], state["config"]["num_workers"]) == (
        2,
        8,
        0,
    )
    assert [int(row["step"]) for row in _metrics(tmp_path)] == [1, 2]
