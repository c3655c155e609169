"""``shardstream write FORMAT --engine ray``: same files as the local engine, one-line errors."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shardstream.cli import main
from tests.write import ray_cluster
from tests.write.demo_tree import NOT_AN_IMAGE, copy_tree, demo_tree
from tests.write.ray_cluster import RAY_ENV

ray_local = ray_cluster.ray_local_module  # the write tests start their own later
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = copy_tree(demo_tree(tmp_path_factory.mktemp("demo")), tmp_path_factory.mktemp("t") / "t")
    (root / "astronaut" / "zz-broken.jpg").write_bytes(NOT_AN_IMAGE)
    return root


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def test_engine_ray_writes_the_local_engines_files(ray_local, tree, tmp_path):
    common = ["write", "imagefolder", os.fspath(tree), "--shard-samples", "5", "-q", "-y"]
    common += ["--on-error", "skip", "--max-side", "32"]
    local = run(*common, "-o", os.fspath(tmp_path / "local" / "x.manifest"))
    remote = run(*common, "-o", os.fspath(tmp_path / "ray" / "x.manifest"), "--engine", "ray")
    assert local[0] == remote[0] == 0
    assert (
        "13 samples" not in remote[1] and "12 samples" in remote[1] and "in 3 shards" in remote[1]
    )
    assert "skipped 1 bad source(s)" in remote[2]
    assert files(tmp_path / "ray") == files(tmp_path / "local")
    assert "x.manifest.skipped.tsv" in files(tmp_path / "ray")


def test_a_bad_source_is_one_line_on_stderr(ray_local, tree, tmp_path):
    code, _, err = run(
        "write", "imagefolder", os.fspath(tree), "--shard-samples", "5", "-q", "--engine", "ray",
        "-o", os.fspath(tmp_path / "x.manifest"),
    )  # fmt: skip
    assert code == 1
    assert err.startswith("shardstream write: error: ") and "zz-broken.jpg" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--resume"], "resume needs shard_samples"),
        (["--shard-samples", "2", "--shard-size", "1M"], "not both"),
    ],
)
def test_option_conflicts_are_one_line_errors(tree, tmp_path, extra, message):
    code, _, err = run(
        "write", "imagefolder", os.fspath(tree), "-q", "-o", os.fspath(tmp_path / "x.manifest"),
        *extra,
    )  # fmt: skip
    assert code == 1 and message in err and "Traceback" not in err


def test_without_ray_the_error_names_the_extra(tree, tmp_path):
    script = (
        "import sys; sys.modules['ray'] = None\n"  # as if Ray were not installed
        "from shardstream.cli import main\n"
        f"sys.exit(main(['write', 'imagefolder', {os.fspath(tree)!r}, '-q', '--engine', 'ray',"
        f" '--shard-samples', '4', '-o', {os.fspath(tmp_path / 'x.manifest')!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=RAY_ENV, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "pip install 'shardstream[ray]'" in result.stderr
    assert "Traceback" not in result.stderr
