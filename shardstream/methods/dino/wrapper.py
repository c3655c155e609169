"""TeacherStudentWrapper: a trainable student module and its exponential-moving-average teacher.

stable_pretraining's wrapper, for a plain training loop instead of a Lightning callback: where
its ``TeacherStudentCallback`` calls ``update_ema_coefficient(epoch, max_epochs)`` and
``update_teacher()`` on every wrapper, a loop calls those two methods itself (for a whole
:class:`~shardstream.methods.dino.DINO`, through ``DINO.update_ema_coefficient`` and
``DINO.update_teacher``), after each optimiser step.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ...errors import ConfigError
from .schedules import cosine_ema_coefficient

__all__ = ["TeacherStudentWrapper"]


class TeacherStudentWrapper(nn.Module):
    """A student module and a teacher copy of it updated as ``t = c * t + (1 - c) * s``.

    The teacher starts as an exact deep copy of the student with ``requires_grad`` off, so only
    the student's parameters are trained. The coefficients are registered buffers
    (``base_ema_coefficient``, ``final_ema_coefficient`` and the current ``ema_coefficient``,
    float64 scalars), so they travel with ``state_dict()``. When both coefficients are 0 the
    teacher *is* the student (no copy).

    Args:
        student: the module to train.
        warm_init: kept for stable_pretraining's signature; the teacher always starts equal to the
            student.
        base_ema_coefficient: the EMA coefficient at the start of training, in ``[0, 1]``.
        final_ema_coefficient: the EMA coefficient at the end of training, in ``[0, 1]``.

    Raises:
        ConfigError: a coefficient is outside ``[0, 1]``.
    """

    # the registered float64 scalar buffers, declared for the type checker
    base_ema_coefficient: torch.Tensor
    final_ema_coefficient: torch.Tensor
    ema_coefficient: torch.Tensor

    def __init__(
        self,
        student: nn.Module,
        warm_init: bool = True,
        base_ema_coefficient: float = 0.996,
        final_ema_coefficient: float = 1.0,
    ):
        super().__init__()
        for name, value in (
            ("base_ema_coefficient", base_ema_coefficient),
            ("final_ema_coefficient", final_ema_coefficient),
        ):
            if not 0.0 <= float(value) <= 1.0:
                raise ConfigError(f"TeacherStudentWrapper: {name} must be in [0, 1], got {value!r}")
        self.student = student
        if base_ema_coefficient == 0.0 and final_ema_coefficient == 0.0:
            self.teacher = student
        else:
            self.teacher = copy.deepcopy(student)
            self.teacher.requires_grad_(False)
        self.warm_init = warm_init
        for name, value in (
            ("base_ema_coefficient", base_ema_coefficient),
            ("final_ema_coefficient", final_ema_coefficient),
            ("ema_coefficient", base_ema_coefficient),
        ):
            self.register_buffer(name, torch.tensor(float(value), dtype=torch.float64))

    @torch.no_grad()
    def update_teacher(self) -> None:
        """Move the teacher towards the student: ``t = c * t + (1 - c) * s``, ``c = ema_coefficient``.

        Parameters and then buffers are paired in registration order; floating-point tensors are
        updated in the teacher's dtype, other buffers (counters) are copied from the student.
        Nothing happens in eval mode, when the coefficient is exactly 1 (the teacher is frozen),
        or when the teacher is the student.
        """
        c = float(self.ema_coefficient)
        if not self.training or c == 1.0 or self.teacher is self.student:
            return
        pairs = [
            *zip(self.teacher.parameters(), self.student.parameters()),
            *zip(self.teacher.buffers(), self.student.buffers()),
        ]
        floating = [(t, s.to(t.dtype)) for t, s in pairs if t.is_floating_point()]
        for teacher, student in pairs:
            if not teacher.is_floating_point():
                teacher.copy_(student)
        if floating:
            teachers, students = (list(group) for group in zip(*floating))
            # one fused kernel per step and dtype/device group instead of one per tensor
            torch._foreach_mul_(teachers, c)
            torch._foreach_add_(teachers, torch._foreach_mul(students, 1.0 - c))

    @torch.no_grad()
    def update_ema_coefficient(self, epoch: float, total_epochs: float) -> None:
        """Set ``ema_coefficient`` from the cosine schedule at ``epoch`` of ``total_epochs``.

        See :func:`~shardstream.methods.dino.schedules.cosine_ema_coefficient`; the two arguments
        may equally be optimiser steps (the original DINO schedules per step).

        Args:
            epoch: progress so far (``>= 0``).
            total_epochs: the schedule's length (``> 0``).

        Raises:
            ConfigError: ``total_epochs <= 0`` or ``epoch < 0``.
        """
        value = cosine_ema_coefficient(
            epoch,
            total_epochs,
            float(self.base_ema_coefficient),
            float(self.final_ema_coefficient),
        )
        self.ema_coefficient.fill_(value)

    def forward_student(self, *args: Any, **kwargs: Any) -> Any:
        """Run the student (with gradients).

        Returns:
            The student's output.
        """
        return self.student(*args, **kwargs)

    def forward_teacher(self, *args: Any, **kwargs: Any) -> Any:
        """Run the teacher under ``torch.no_grad()``.

        Returns:
            The teacher's output.
        """
        with torch.no_grad():
            return self.teacher(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the teacher (same as :meth:`forward_teacher`).

        Returns:
            The teacher's output.
        """
        return self.forward_teacher(*args, **kwargs)
