"""shardstream.methods.dino: a sorted, documented public API; the root re-exports it lazily."""

from __future__ import annotations

import inspect

import shardstream
import shardstream.methods.dino as dino


def test_all_is_sorted_resolvable_and_documented():
    assert dino.__all__ == sorted(dino.__all__)
    missing = []
    for name in dino.__all__:
        obj = getattr(dino, name)
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and callable(member) and not inspect.getdoc(member):
                    missing.append(f"{name}.{attr}")
    assert missing == []


def test_the_root_re_exports_the_methods_names_from_their_home():
    for name in ("DINO", "DINOOutput", "DINOProjector", "DINOv1Loss", "TeacherStudentWrapper"):
        assert getattr(shardstream, name) is getattr(dino, name)
