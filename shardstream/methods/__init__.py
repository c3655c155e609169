"""Methods: self-supervised training methods that consume shardstream's loaders (DINO).

Everything here needs torch, so every name is imported on first use: ``import shardstream`` and
``import shardstream.methods`` stay free of torch (and of timm, which only a backbone built by
name needs).
"""

from __future__ import annotations

from .._lazy import lazy_module_hooks

#: public name -> submodule of shardstream.methods that defines it
LAZY_NAMES: dict[str, str] = {
    "DINO": "dino",
    "DINOOutput": "dino",
    "DINOProjector": "dino",
    "DINOv1Loss": "dino",
    "TeacherStudentWrapper": "dino",
    "WarmupCosine": "dino",
    "cosine_ema_coefficient": "dino",
    "teacher_temperature": "dino",
}

__all__ = sorted(LAZY_NAMES)


__getattr__, __dir__ = lazy_module_hooks(__name__, LAZY_NAMES, globals())
