"""shardstream.methods: a sorted, documented, lazily imported public API."""

from __future__ import annotations

import inspect
import subprocess
import sys

import shardstream.methods as methods


def test_all_is_sorted_resolvable_and_documented():
    assert methods.__all__ == sorted(methods.__all__)
    missing = []
    for name in methods.__all__:
        obj = getattr(methods, name)
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and callable(member) and not inspect.getdoc(member):
                    missing.append(f"{name}.{attr}")
    assert missing == []


def test_without_torch_the_names_raise_a_clear_error():
    code = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTorch())
import shardstream.methods
from shardstream.errors import MissingDependencyError
try:
    shardstream.methods.DINO
except MissingDependencyError as error:
    print(error)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "shardstream.methods.DINO needs torch; install it (pip install torch)"
    )
