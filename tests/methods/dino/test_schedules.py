"""The EMA, teacher-temperature and warmup + cosine schedules at chosen steps (exact floats)."""

from __future__ import annotations

import pytest

from shardstream.errors import ConfigError
from shardstream.methods.dino import WarmupCosine, cosine_ema_coefficient, teacher_temperature


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 0.996),
        (25, 0.9965857864376269),  # 1 - 0.002 * (1 + cos(pi / 4))
        (50, 0.998),
        (75, 0.9994142135623731),  # 1 - 0.002 * (1 + cos(3 pi / 4))
        (100, 1.0),
        (150, 1.0),  # clamped past the end
    ],
)
def test_cosine_ema_coefficient_at_chosen_steps(step, expected):
    assert cosine_ema_coefficient(step, 100, 0.996, 1.0) == expected


def test_cosine_ema_coefficient_with_epochs_like_the_callback():
    # stable_pretraining's callback passes (current_epoch, max_epochs)
    assert cosine_ema_coefficient(0, 4, 0.9, 0.99) == 0.9
    assert cosine_ema_coefficient(2, 4, 0.9, 0.99) == 0.9450000000000001
    assert cosine_ema_coefficient(4, 4, 0.9, 0.99) == 0.99


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [
        (0, 0.04),
        (1, 0.041),
        (15, 0.05500000000000001),  # 0.04 + 15 / 30 * 0.03, as floats
        (15.9, 0.05500000000000001),  # constant within an epoch
        (29, 0.069),
        (30, 0.07),  # first reached at the warmup's end, not one epoch earlier
        (100, 0.07),
    ],
)
def test_teacher_temperature_with_the_dino_defaults(epoch, expected):
    value = teacher_temperature(epoch, warmup_temperature=0.04, temperature=0.07, warmup_epochs=30)
    assert value == expected


def test_teacher_temperature_without_warmup_is_constant():
    assert (
        teacher_temperature(0, warmup_temperature=0.04, temperature=0.07, warmup_epochs=0) == 0.07
    )


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 0.0),
        (5, 0.00025),
        (10, 0.0005),  # warmup ends at base_value
        (55, 0.0002505),  # half-way through the cosine: (base + final) / 2
        (99, 1.1519886587356073e-06),  # 1e-6 + 0.5 * 4.99e-4 * (1 - cos(pi / 90))
        (100, 1e-06),
        (200, 1e-06),
    ],
)
def test_warmup_cosine_learning_rate(step, expected):
    schedule = WarmupCosine(base_value=5e-4, final_value=1e-6, total_steps=100, warmup_steps=10)
    assert schedule(step) == expected


def test_warmup_cosine_without_warmup_rises_like_dino_weight_decay():
    schedule = WarmupCosine(base_value=0.04, final_value=0.4, total_steps=100)
    assert [schedule(0), schedule(50), schedule(100)] == [0.03999999999999998, 0.22, 0.4]


def test_schedules_reject_out_of_range_steps():
    with pytest.raises(ConfigError, match="total_steps must be > 0"):
        cosine_ema_coefficient(0, 0, 0.996, 1.0)
    with pytest.raises(ConfigError, match="step must be >= 0"):
        cosine_ema_coefficient(-1, 10, 0.996, 1.0)
    with pytest.raises(ConfigError, match="epoch must be >= 0"):
        teacher_temperature(-1, warmup_temperature=0.04, temperature=0.07, warmup_epochs=3)
    with pytest.raises(ConfigError, match=r"warmup_steps must be in \[0, total_steps=10\]"):
        WarmupCosine(base_value=1.0, final_value=0.0, total_steps=10, warmup_steps=11)
    with pytest.raises(ConfigError, match="step must be >= 0"):
        WarmupCosine(base_value=1.0, final_value=0.0, total_steps=10)(-1)
