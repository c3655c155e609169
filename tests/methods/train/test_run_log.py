"""The metric files of a run: fresh runs start them, resumed runs drop rows after the checkpoint."""

from __future__ import annotations

import csv
import json

import pytest

from shardstream.methods.train.loop import train_dino
from shardstream.methods.train.run_log import METRICS_COLUMNS, RunLog

from .test_training import small_config


def _row(step: int) -> dict[str, float]:
    return {name: float(step) if name != "step" else step for name in METRICS_COLUMNS}


def _steps(out) -> tuple[list[int], list[int]]:
    with open(out / "metrics.csv", newline="") as f:
        metrics = [int(row["step"]) for row in csv.DictReader(f)]
    log = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    return metrics, log


def test_resume_drops_rows_after_the_checkpoint_and_torn_lines(tmp_path):
    log = RunLog(out=tmp_path, first_step=0, tensorboard=False)
    for step in range(1, 6):
        log.write(_row(step), loader_summary="x")
    log.close()
    with open(tmp_path / "metrics.csv", "a") as f:
        f.write("6,0,1.5")  # a row torn by a kill
    with open(tmp_path / "log.jsonl", "a") as f:
        f.write('{"step": 6, "lo')
    log = RunLog(out=tmp_path, first_step=3, tensorboard=False)
    log.write(_row(4))
    log.close()
    assert _steps(tmp_path) == ([1, 2, 3, 4], [1, 2, 3, 4])
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0] == ",".join(METRICS_COLUMNS)
    assert lines[4] == "4," + ",".join(["4.0"] * (len(METRICS_COLUMNS) - 1))
    assert json.loads((tmp_path / "log.jsonl").read_text().splitlines()[0])["loader"] == "x"
    # a fresh run (step 0) starts both files over
    RunLog(out=tmp_path, first_step=0, tensorboard=False).close()
    assert _steps(tmp_path) == ([], [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl", "metrics.csv"]


class Killed(Exception):
    """Stands in for a kill between two checkpoints."""


def test_killed_run_resumes_with_each_step_logged_once(demo_70, tmp_path):
    def kill_at_step_4(step: int, loss: float) -> None:
        if step == 4:
            raise Killed

    config = small_config(demo_70, tmp_path, steps=6, checkpoint_every=2, log_every=1)
    with pytest.raises(Killed):
        train_dino(config, on_step=kill_at_step_4)
    assert _steps(tmp_path) == ([1, 2, 3], [1, 2, 3])  # step 3 came after the checkpoint
    resumed = train_dino(config.replace(resume=True))
    assert (resumed.first_step, resumed.steps) == (2, 6)
    assert _steps(tmp_path) == ([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6])
    with open(tmp_path / "metrics.csv", newline="") as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    assert losses[2:] == resumed.losses
