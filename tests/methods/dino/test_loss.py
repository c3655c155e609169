"""DINOv1Loss: the value against a hand computation, centring, the state it saves."""

from __future__ import annotations

import math

import pytest
import torch

from shardstream.errors import ConfigError
from shardstream.methods.dino import DINOv1Loss

# 3 student views (2 global + 1 local), 2 teacher views, batch 2, 3 prototypes
STUDENT = [
    [[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]],
    [[-0.3, 0.8, 0.1], [0.0, 0.0, 1.0]],
    [[2.0, 1.0, -1.0], [0.25, -0.75, 0.5]],
]
TEACHER_PROBS = [
    [[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]],
    [[0.1, 0.8, 0.1], [1 / 3, 1 / 3, 1 / 3]],
]


def hand_log_softmax(row: list[float], temperature: float) -> list[float]:
    scaled = [x / temperature for x in row]
    log_sum = math.log(sum(math.exp(x) for x in scaled))
    return [x - log_sum for x in scaled]


def hand_dino_loss(student, teacher_probs, temperature):
    total, pairs = 0.0, 0
    for s, student_view in enumerate(student):
        for t, teacher_view in enumerate(teacher_probs):
            if s == t:  # the same global crop: excluded
                continue
            pairs += 1
            for student_row, probs in zip(student_view, teacher_view):
                log_p = hand_log_softmax(student_row, temperature)
                total -= sum(q * lp for q, lp in zip(probs, log_p))
    return total / (pairs * len(student[0]))


def test_loss_equals_the_hand_computed_value_in_float64():
    loss = DINOv1Loss(temperature_student=0.1)
    value = loss(
        torch.tensor(STUDENT, dtype=torch.float64), torch.tensor(TEACHER_PROBS, dtype=torch.float64)
    )
    expected = hand_dino_loss(STUDENT, TEACHER_PROBS, 0.1)
    assert value.dtype == torch.float64
    assert value.item() == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(10.84694542291914, rel=1e-12)  # 4 pairs x 2 samples


def test_loss_in_float32_and_half_inputs():
    expected = hand_dino_loss(STUDENT, TEACHER_PROBS, 0.5)
    loss = DINOv1Loss(temperature_student=0.5)
    value = loss(torch.tensor(STUDENT), torch.tensor(TEACHER_PROBS))
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(expected, rel=1e-6)
    half = loss(torch.tensor(STUDENT).bfloat16(), torch.tensor(TEACHER_PROBS))
    assert half.dtype == torch.float32  # computed in float32 under mixed precision


def test_only_same_view_pairs_are_excluded():
    # two views each: only the cross pairs (0, 1) and (1, 0) count
    student = [STUDENT[0], STUDENT[1]]
    loss = DINOv1Loss(temperature_student=0.1)
    value = loss(
        torch.tensor(student, dtype=torch.float64), torch.tensor(TEACHER_PROBS, dtype=torch.float64)
    )
    cross = hand_dino_loss(student, TEACHER_PROBS, 0.1)
    assert value.item() == pytest.approx(cross, rel=1e-12)


def test_loss_has_no_side_effects():
    loss = DINOv1Loss()
    loss(torch.tensor(STUDENT), torch.tensor(TEACHER_PROBS))
    assert loss.center is None and loss.updated


TEACHER_1 = torch.tensor([[[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]], [[5.0, 6.0, 7.0], [7.0, 8.0, 9.0]]])
TEACHER_2 = torch.tensor([[[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]], [[-1.0, 0.5, 4.0], [1.0, 1.5, 0.0]]])


def test_centring_follows_the_documented_one_step_lag():
    loss = DINOv1Loss(center_momentum=0.9)
    # step 1: nothing to centre with yet
    probs = loss.softmax_center_teacher(TEACHER_1, teacher_temp=0.5)
    assert torch.equal(probs, torch.softmax(TEACHER_1 / 0.5, dim=-1))
    loss.update_center(TEACHER_1)
    assert loss.center is None and not loss.updated  # queued, not applied

    # step 2: the first statistics become the centre as they are (sum of batch means / views)
    probs = loss.softmax_center_teacher(TEACHER_2, teacher_temp=0.5)
    assert torch.equal(loss.center, torch.tensor([[4.0, 5.0, 6.0]]))
    assert torch.equal(probs, torch.softmax((TEACHER_2 - torch.tensor([4.0, 5.0, 6.0])) / 0.5, -1))
    loss.update_center(TEACHER_2)

    # step 3: EMA with momentum 0.9 of TEACHER_2's statistics ([1, 1, 1] + [0, 1, 2]) / 2
    loss.softmax_center_teacher(TEACHER_1, teacher_temp=0.5)
    batch_center = torch.tensor([[0.5, 1.0, 1.5]])
    expected = torch.tensor([[4.0, 5.0, 6.0]]) * 0.9 + batch_center * (1 - 0.9)
    assert torch.equal(loss.center, expected)
    assert loss.center[0].tolist() == pytest.approx([3.65, 4.6, 5.55], rel=1e-6)


def test_softmax_center_teacher_can_skip_the_pending_update():
    loss = DINOv1Loss()
    loss.update_center(TEACHER_1)
    loss.softmax_center_teacher(TEACHER_2, teacher_temp=0.04, update_centers=False)
    assert loss.center is None and not loss.updated


def test_centre_and_pending_update_survive_a_state_dict_round_trip():
    loss = DINOv1Loss()
    assert "center" not in loss.state_dict()  # no centre before the first update
    loss.update_center(TEACHER_1)
    loss.softmax_center_teacher(TEACHER_1, teacher_temp=0.1)
    loss.update_center(TEACHER_2)  # pending when the state is taken
    state = loss.state_dict()
    restored = DINOv1Loss()
    restored.load_state_dict(state)
    expected = loss.softmax_center_teacher(TEACHER_1, teacher_temp=0.1)
    assert torch.equal(restored.softmax_center_teacher(TEACHER_1, teacher_temp=0.1), expected)
    assert torch.equal(restored.center, loss.center)
    # loading a state without a centre clears it
    restored.load_state_dict(DINOv1Loss().state_dict())
    assert restored.center is None


def test_bad_shapes_and_a_lone_same_view_pair_are_refused():
    loss = DINOv1Loss()
    with pytest.raises(
        ConfigError, match=r"disagree in batch or prototypes: \(3, 2, 3\) vs \(2, 2, 4\)"
    ):
        loss(torch.zeros(3, 2, 3), torch.zeros(2, 2, 4))
    with pytest.raises(ConfigError, match=r"must be \(views, batch, prototypes\)"):
        loss(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ConfigError, match="at least two global views"):
        loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3))
    with pytest.raises(ConfigError, match="temperature_student must be > 0"):
        DINOv1Loss(temperature_student=0.0)
    with pytest.raises(ConfigError, match=r"center_momentum must be in \[0, 1\]"):
        DINOv1Loss(center_momentum=1.5)
