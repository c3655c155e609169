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


def test_import_layers_and_compat_independence_hold():
    """import-linter's contracts in pyproject.toml: the layers of the data flow (errors < checks < format <
    read < write < order < engine < vision < loader < sets < compat < methods < cli) and the
    independence of the compat wings."""
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (it is in the dev extra)")
    result = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and "2 kept, 0 broken" in result.stdout


def _function_level_imports() -> list[tuple[str, int, str]]:
    import ast

    found = []
    for path in sorted((ROOT / "shardstream").rglob("*.py")):
        source = path.read_text()
        lines = source.splitlines()
        for function in ast.walk(ast.parse(source)):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and node.level > 0:
                    found.append((str(path.relative_to(ROOT)), node.lineno, lines[node.lineno - 1]))
    return found


def test_imports_inside_functions_only_delay_an_optional_dependency():
    """An import of one of our own modules inside a function must say which optional dependency
    it delays (``# delayed: ...``); any other is an import cycle dodged, which the layers forbid."""
    unexplained = [
        f"{path}:{line}: {text.strip()}"
        for path, line, text in _function_level_imports()
        if "# delayed:" not in text
    ]
    assert unexplained == []


def test_no_module_outgrows_one_job():
    """Small modules with one job: none over 600 lines, the Loader's builder steps under 450."""
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for path in (ROOT / "shardstream").rglob("*.py")
    }
    assert {path: n for path, n in sizes.items() if n > 600} == {}
    assert sizes["shardstream/loader/loader.py"] < 450
