"""benchmarks/gpu_check.sh: its CPU dry run executes every step in miniature."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def run_check(*args: str, work: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "GPU_CHECK_DIR": str(work),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=400, env=env
    )


def test_dry_run_executes_every_step_and_prints_both_loaders(tmp_path):
    done = run_check("--dry-run", work=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    steps = [line for line in lines if line.startswith("gpu_check: ok: ")]
    assert [re.sub(r" \(\d+ s\)$", "", line) for line in steps] == [
        "gpu_check: ok: fast paths",
        "gpu_check: ok: cuda tests",
        "gpu_check: ok: bench_dino device-only",
        "gpu_check: ok: dino training, both loaders",
    ]
    assert lines[0] == "gpu_check: dry run (CPU, tiny sizes)"
    assert re.fullmatch(r"gpu_check: done in \d+ s", lines[-1])
    assert any(line.startswith("_resample:") for line in lines)  # info --system ran
    # the CUDA tests: they skip on a CPU machine and run where torch sees a GPU
    assert any(re.fullmatch(r"(4 skipped|4 passed) in [\d.]+s", line) for line in lines)
    assert any(line.startswith("device step on cpu") for line in lines)  # bench_dino ran
    for loader in ("shardstream", "shardstream-resize", "torchvision"):
        found = [line for line in lines if line.startswith(f"loader={loader} ")]
        assert len(found) == 1, loader
        assert re.match(
            rf"loader={loader} images/s=\d+\.\d stall=\d+\.\d% steps=2 batch=8 "
            r"encoder=vit_tiny_patch16_224 crops=2x32\+2x16 device=cpu workers=1 loss=\d",
            found[0],
        ), found[0]
    assert (tmp_path / "demo-40.msgpack").exists() and (tmp_path / "images-40").is_dir()


def test_unknown_argument_is_a_usage_error(tmp_path):
    done = run_check("--fast", work=tmp_path)
    assert done.returncode == 2
    assert done.stderr == "usage: bash benchmarks/gpu_check.sh [--dry-run]\n"
    assert done.stdout == ""
