"""The package root: a sorted, importable, documented public API."""

from __future__ import annotations

import inspect

import pytest

import shardstream
from shardstream import errors


def test_all_is_sorted_and_importable():
    assert shardstream.__all__ == sorted(shardstream.__all__)
    for name in shardstream.__all__:
        assert getattr(shardstream, name) is not None, name


def test_seed_names_are_importable_from_the_root():
    from shardstream import (  # noqa: F401
        Cycler,
        DirectoryReader,
        FileWriter,
        ListReader,
        MsgpackReader,
        QuasiShuffler,
        Range,
        RawWriter,
        Repeater,
        ShardedReader,
        Shuffler,
        Writer,
        ZipFileReader,
        verify_data,
        verify_index,
    )


def test_every_public_name_and_method_has_a_docstring():
    missing = []
    for name in shardstream.__all__:
        obj = getattr(shardstream, name)
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not callable(member):
                    continue
                if not inspect.getdoc(member):
                    missing.append(f"{name}.{attr}")
    assert missing == []


def test_every_error_derives_from_the_base_and_is_documented():
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.ShardstreamError), name
        assert cls.__doc__, name


def test_importing_shardstream_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, shardstream; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_the_command_line_starts_without_torch():
    """Every subcommand's parser is built at start-up; none may pull in torch (seconds)."""
    import subprocess
    import sys

    code = (
        "import sys, shardstream.cli; shardstream.cli.build_parser(); "
        "print(sorted(m for m in ('torch', 'timm', 'cv2', 'duckdb') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_torch_names_without_torch_raise_a_clear_error():
    import subprocess
    import sys

    code = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTorch())
import shardstream
from shardstream.errors import MissingDependencyError
for name in ("InfiniteSampler", "make_data_loader", "IterableDataset", "DINO"):
    try:
        getattr(shardstream, name)
    except MissingDependencyError as e:
        print(type(e).__mro__[2].__name__, e)
print(shardstream.GlobalOrderSampler.__name__)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ImportError shardstream.InfiniteSampler needs torch: pip install 'shardstream[torch]'",
        "ImportError shardstream.make_data_loader needs torch: pip install 'shardstream[torch]'",
        "ImportError shardstream.IterableDataset needs torch: pip install 'shardstream[torch]'",
        "ImportError shardstream.DINO needs torch: pip install 'shardstream[torch]'",
        "GlobalOrderSampler",
    ]


def test_lazy_module_hooks_resolve_cache_and_list_names():
    from shardstream._lazy import lazy_module_hooks

    namespace = {"__all__": ["sqrt_like"], "present": 1}
    getattr_, dir_ = lazy_module_hooks("shardstream", {"sqrt_like": "_lazy"}, namespace)
    with pytest.raises(AttributeError, match="module 'shardstream' has no attribute 'missing'"):
        getattr_("missing")
    assert dir_() == ["__all__", "present", "sqrt_like"]
    with pytest.raises(AttributeError):  # the submodule exists but does not define the name
        getattr_("sqrt_like")
    resolved = lazy_module_hooks("shardstream", {"resolve_lazy": "_lazy"}, namespace)[0]
    from shardstream._lazy import resolve_lazy

    assert resolved("resolve_lazy") is resolve_lazy and namespace["resolve_lazy"] is resolve_lazy
