"""Temp files of checkpoint saves killed mid-write are removed by the next save to the same place;
those of live savers are left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from shardstream.methods.train.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

#: A saver that stops at its fsync (the temp file is written, not yet renamed): ``kill`` kills
#: itself there with SIGKILL, ``hang`` says so on stdout and waits to be killed.
SAVER = """
import os
import signal
import sys
import time

import torch

from shardstream.methods.train import checkpoint

how = sys.argv[2]


def stop_here(fd):
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    print("saving", flush=True)
    time.sleep(120)


checkpoint.os.fsync = stop_here
checkpoint.save_checkpoint(sys.argv[1], {"weights": torch.arange(100000)})
"""


def temps(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def run_saver(path: Path, how: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SAVER), str(path), how],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_killed_savers_temp_file_is_removed_by_the_next_save(tmp_path):
    path = tmp_path / "run" / "checkpoint.pt"
    save_checkpoint(path, {"step": 1})
    saver = run_saver(path, "kill")
    assert saver.wait(60) == -signal.SIGKILL
    (stale,) = temps(path)
    assert stale.stat().st_size > 400000  # the killed saver wrote its data
    assert load_checkpoint(path)["step"] == 1  # the previous checkpoint is intact
    save_checkpoint(path, {"step": 2})
    assert temps(path) == []
    assert load_checkpoint(path)["step"] == 2
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.pt"]


def test_a_live_savers_temp_file_is_left_alone(tmp_path):
    from shardstream.errors import DatasetLockedError
    from shardstream.format.atomic import remove_stale_temporaries
    from shardstream.format.lock import DatasetLock

    path = tmp_path / "checkpoint.pt"
    saver = run_saver(path, "hang")
    try:
        assert saver.stdout.readline().strip() == "saving"
        (live,) = temps(path)
        with pytest.raises(DatasetLockedError):  # a second saver waits for the live one's turn
            DatasetLock.acquire(path, wait=0)
        assert temps(path) == [live]
    finally:
        saver.kill()
        saver.wait()
    lock = DatasetLock.acquire(path, wait=0)  # released by the kernel when the saver died
    try:
        assert remove_stale_temporaries(path, [path.name]) == [live]
    finally:
        lock.release()
    save_checkpoint(path, {"step": 3})
    assert temps(path) == []
    assert load_checkpoint(path)["step"] == 3


def test_another_checkpoints_temp_file_is_kept(tmp_path):
    path = tmp_path / "checkpoint.pt"
    other = tmp_path / ".other.pt.abc12345.tmp"
    other.write_bytes(b"x")  # another checkpoint's temp file
    save_checkpoint(path, {"step": 4})
    assert other.exists()
    assert load_checkpoint(path)["step"] == 4
