"""The README's examples run as written, and its first command installs what the demo needs."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from shardstream import FileWriter
from shardstream.sets.demo import render_demo_image

ROOT = Path(__file__).resolve().parents[1]


def readme_block(marker: str) -> str:
    """The README's python block that contains ``marker``."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    found = [block for block in blocks if marker in block]
    assert len(found) == 1, marker
    return found[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("readme")
    with FileWriter(path / "train.msgpack") as writer:
        for i in range(16):
            writer.write({"key": f"img_{i:02d}", "image": render_demo_image(i), "label": i % 4})
    return path


def run_example(code: str, cwd: Path) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_plain_dataloader_example_runs(workdir):
    code = readme_block("torch.utils.data.DataLoader(dataset")
    checks = textwrap.dedent(
        """
        print("batch", tuple(images.shape), images.dtype, tuple(labels.shape), labels.dtype)
        print("closed", dataset.reader._map is None, len(dataset))
        """
    )
    out = run_example(code + checks, workdir).splitlines()
    assert out == ["batch (8, 3, 64, 64) torch.uint8 (8,) torch.int64", "closed True 16"]


def test_the_lightning_example_runs(workdir):
    if importlib.util.find_spec("lightning") is None:  # not imported here: 7 s and 300 MB
        pytest.skip("lightning is not installed")
    code = readme_block("L.Trainer(")
    checks = 'print("steps", trainer.global_step, trainer.current_epoch)\n'
    out = run_example(code + checks, workdir).splitlines()
    assert out[-1] == "steps 4 2"  # 16 images / 8 per batch, 2 epochs


def _requirement_names(requirements: list[str]) -> set[str]:
    return {
        re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements
    }


def _closure(names: set[str]) -> set[str]:
    """``names`` and every distribution they require (installed ones; extras not followed)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo.extend(_requirement_names([r for r in requires if "extra ==" not in r]))
    return seen


def _site_with_only(names: set[str], site: Path) -> None:
    """Fill ``site`` with links to the installed files of the distributions ``names`` only."""
    site.mkdir()
    for name in sorted(names):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for file in dist.files or []:
            top = file.parts[0]
            if top == ".." or (site / top).exists():
                continue
            source = Path(dist.locate_file(top))
            if source.exists():
                (site / top).symlink_to(source)


def test_the_demo_runs_with_only_the_core_and_demo_extra_packages_installed(tmp_path):
    """``shardstream demo`` (pack, read, train DINO, k-NN) in an interpreter that sees only the
    core dependencies, the ``demo`` extra and what they require: what the README's first
    command installs."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    demo_extra = _requirement_names(project["optional-dependencies"]["demo"])
    assert {"torch", "timm", "scikit-image"} <= demo_extra
    _site_with_only(
        _closure(_requirement_names(project["dependencies"]) | demo_extra), tmp_path / "site"
    )
    code = textwrap.dedent(
        f"""
        import sys
        from shardstream.cli import main
        code = main(["demo", "--out", {str(tmp_path / "demo")!r}, "--images", "64",
                     "--classes", "4", "--quiet", "--train-steps", "2"])
        for name in ("pytest", "hypothesis", "lightning"):  # not there: not needed
            try:
                __import__(name)
                print("importable", name)
            except ImportError:
                pass
        print("rc", code)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path / "site")])}
    done = subprocess.run(
        [sys.executable, "-S", "-c", code],  # -S: no site-packages but the linked ones
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    out = done.stdout.splitlines()
    assert done.returncode == 0 and out[-1] == "rc 0", done.stdout + done.stderr
    assert any(line.startswith("dino:    2 steps x 32 images") for line in out)
    assert any(line.startswith("knn:     top-1") for line in out)
    assert not any(line.startswith("importable") for line in out)
