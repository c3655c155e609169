"""DINO (stable_pretraining's method): model, teacher-student wrapper, projector, loss, schedules.

Importing this package imports torch; timm is imported only when a backbone is built by name.
"""

from __future__ import annotations

from .encoders import build_encoder, cls_embedding, embedding_dim
from .loss import DINOv1Loss
from .model import DINO, DINOOutput
from .projector import DINOProjector
from .schedules import WarmupCosine, cosine_ema_coefficient, teacher_temperature
from .wrapper import TeacherStudentWrapper

__all__ = [
    "DINO",
    "DINOOutput",
    "DINOProjector",
    "DINOv1Loss",
    "TeacherStudentWrapper",
    "WarmupCosine",
    "build_encoder",
    "cls_embedding",
    "cosine_ema_coefficient",
    "embedding_dim",
    "teacher_temperature",
]
