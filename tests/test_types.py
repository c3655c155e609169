"""The package type-checks: mypy, configured by ``[tool.mypy]`` in pyproject.toml, finds nothing.

mypy is in the ``dev`` extra (pinned like ruff, since this test depends on its verdict); the test
is skipped only where it is not installed. Its incremental cache (``.mypy_cache``) makes reruns
take seconds.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_finds_no_errors_in_the_package():
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[dev]')")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "shardstream"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.startswith("Success: no issues found"), output
