"""The schedules of DINO training: EMA coefficient, teacher temperature, warmup + cosine.

Plain float arithmetic (no torch), so a value at a given step is the same on every machine and
can be checked exactly:

- :func:`cosine_ema_coefficient`: the teacher's EMA coefficient rises from ``base`` to ``final``
  along half a cosine (stable_pretraining's ``TeacherStudentWrapper.update_ema_coefficient``).
- :func:`teacher_temperature`: linear warmup of the teacher temperature over whole epochs, then
  constant (stable_pretraining's ``DINO``).
- :class:`WarmupCosine`: linear warmup then cosine decay, for the learning rate and the weight
  decay (the original DINO's ``cosine_scheduler``, evaluated per step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...errors import ConfigError

__all__ = ["WarmupCosine", "cosine_ema_coefficient", "teacher_temperature"]


def cosine_ema_coefficient(step: float, total_steps: float, base: float, final: float) -> float:
    """The EMA coefficient at ``step`` of ``total_steps``: ``base`` at 0, ``final`` at the end.

    ``final - 0.5 * (final - base) * (1 + cos(pi * step / total_steps))``; ``step`` past the end
    gives ``final`` (the cosine is not continued beyond half a period). The steps may be epochs
    (as stable_pretraining's callback passes them) or optimiser steps.

    Args:
        step: how far training is (``>= 0``).
        total_steps: the length of the schedule (``> 0``).
        base: the coefficient at step 0.
        final: the coefficient at ``total_steps``.

    Returns:
        The coefficient.

    Raises:
        ConfigError: ``total_steps <= 0`` or ``step < 0``.
    """
    if not total_steps > 0:
        raise ConfigError(f"EMA schedule: total_steps must be > 0, got {total_steps!r}")
    if step < 0:
        raise ConfigError(f"EMA schedule: step must be >= 0, got {step!r}")
    progress = min(step, total_steps) / total_steps
    return final - 0.5 * (final - base) * (1.0 + math.cos(math.pi * progress))


def teacher_temperature(
    epoch: int, *, warmup_temperature: float, temperature: float, warmup_epochs: int
) -> float:
    """The teacher temperature in ``epoch``: linear warmup, then constant.

    ``warmup_temperature + (epoch / max(warmup_epochs, 1)) * (temperature - warmup_temperature)``
    before ``warmup_epochs``, ``temperature`` from then on. The value changes only at epoch
    boundaries (a fractional ``epoch`` is truncated), and ``temperature`` is first reached at epoch
    ``warmup_epochs`` (the original DINO's ``linspace`` reaches it one epoch earlier).

    Args:
        epoch: the current epoch (``>= 0``).
        warmup_temperature: the temperature at epoch 0.
        temperature: the temperature after the warmup.
        warmup_epochs: the length of the warmup in epochs.

    Returns:
        The temperature.

    Raises:
        ConfigError: ``epoch < 0``.
    """
    if epoch < 0:
        raise ConfigError(f"teacher temperature: epoch must be >= 0, got {epoch!r}")
    epoch = int(epoch)
    if epoch >= warmup_epochs:
        return temperature
    return warmup_temperature + (epoch / max(warmup_epochs, 1)) * (temperature - warmup_temperature)


@dataclass(frozen=True)
class WarmupCosine:
    """Linear warmup from ``start_warmup_value`` to ``base_value``, then cosine to ``final_value``.

    Call it with a step to get the value: during the warmup (``step < warmup_steps``)
    ``start_warmup_value + (base_value - start_warmup_value) * step / warmup_steps``; after it
    ``final_value + 0.5 * (base_value - final_value) * (1 + cos(pi * t))`` with
    ``t = (step - warmup_steps) / (total_steps - warmup_steps)``; ``final_value`` from
    ``total_steps`` on. The original DINO builds the same curve as an array over
    ``epochs * iterations_per_epoch`` steps (its warmup ends at ``base_value`` one step earlier).

    Args:
        base_value: the value when the warmup ends (the peak learning rate, the first weight
            decay).
        final_value: the value at ``total_steps``.
        total_steps: the schedule's length in steps (``> 0``).
        warmup_steps: steps of linear warmup (``0 <= warmup_steps <= total_steps``).
        start_warmup_value: the value at step 0 when there is a warmup.

    Raises:
        ConfigError: the steps are out of range.
    """

    base_value: float
    final_value: float
    total_steps: int
    warmup_steps: int = 0
    start_warmup_value: float = 0.0

    def __post_init__(self) -> None:
        if not self.total_steps > 0:
            raise ConfigError(f"WarmupCosine: total_steps must be > 0, got {self.total_steps!r}")
        if not 0 <= self.warmup_steps <= self.total_steps:
            raise ConfigError(
                f"WarmupCosine: warmup_steps must be in [0, total_steps={self.total_steps}], "
                f"got {self.warmup_steps!r}"
            )

    def __call__(self, step: int) -> float:
        """The value at ``step``.

        Args:
            step: the optimiser step (``>= 0``).

        Returns:
            The scheduled value.

        Raises:
            ConfigError: ``step < 0``.
        """
        if step < 0:
            raise ConfigError(f"WarmupCosine: step must be >= 0, got {step!r}")
        if step < self.warmup_steps:
            fraction = step / self.warmup_steps
            return self.start_warmup_value + (self.base_value - self.start_warmup_value) * fraction
        if step >= self.total_steps:
            return self.final_value
        t = (step - self.warmup_steps) / (self.total_steps - self.warmup_steps)
        return self.final_value + 0.5 * (self.base_value - self.final_value) * (
            1.0 + math.cos(math.pi * t)
        )
