"""Temp files of checkpoint saves killed mid-write are removed by the next save to the same place;
those of live savers are left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from shardstream.methods.train import checkpoint  # noqa: E402
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
    path = tmp_path / "checkpoint.pt"
    saver = run_saver(path, "hang")
    try:
        assert saver.stdout.readline().strip() == "saving"
        (live,) = temps(path)
        save_checkpoint(path, {"step": 3})
        assert temps(path) == [live]
        assert load_checkpoint(path)["step"] == 3
    finally:
        saver.kill()
        saver.wait()
    assert checkpoint.remove_stale_temps(path) == [live]  # its saver is dead now
    assert temps(path) == []


def test_a_fresh_empty_temp_file_is_kept_until_it_is_old(tmp_path):
    path = tmp_path / "checkpoint.pt"
    empty = tmp_path / ".checkpoint.pt.abc123.tmp"
    empty.touch()  # as a saver leaves it between creating and locking its temp file
    other = tmp_path / ".other.pt.abc123.tmp"
    other.write_bytes(b"x")  # another checkpoint's temp file
    save_checkpoint(path, {"step": 4})
    assert empty.exists()
    old = time.time() - checkpoint.EMPTY_TEMP_AGE_S - 1
    os.utime(empty, (old, old))
    assert checkpoint.remove_stale_temps(path) == [empty]
    assert not empty.exists() and other.exists()
