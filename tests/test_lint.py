"""The code base stays ruff-clean (lint and format), checked like any other test."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def ruff(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("ruff")
    command = [exe] if exe else [sys.executable, "-m", "ruff"]
    return subprocess.run([*command, *args], cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("args", [("check", "."), ("format", "--check", ".")])
def test_ruff(args):
    result = ruff(*args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_starts_with_title_sentence_and_the_two_commands_and_ci_runs_the_second():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert lines[0] == "# shardstream"
    assert lines[1] == "" and lines[2].endswith(".") and lines[3] == ""
    assert lines[2].count(". ") == 0, "the introduction is one sentence"
    demo, tests = lines[4].strip(), lines[5].strip()
    assert demo == "pip install -e '.[demo]' && shardstream demo"
    assert tests == "pip install -e '.[dev]' && python -m pytest -q"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == tests
