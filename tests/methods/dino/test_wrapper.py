"""TeacherStudentWrapper: the EMA update equals its formula, the schedule, the no-op cases."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from shardstream.errors import ConfigError
from shardstream.methods.dino import TeacherStudentWrapper


def student() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def perturb(module: nn.Module) -> None:
    """Make the student differ from the teacher (as an optimiser step would)."""
    with torch.no_grad():
        for i, p in enumerate(module.parameters()):
            p.add_(torch.linspace(-1.0, 1.0, p.numel()).reshape(p.shape) * (i + 1))
    module(torch.randn(5, 3))  # training-mode BatchNorm: running stats and counter move


def test_teacher_starts_as_a_frozen_exact_copy():
    wrapper = TeacherStudentWrapper(student())
    assert wrapper.teacher is not wrapper.student
    for (name, t), s in zip(
        wrapper.teacher.state_dict().items(), wrapper.student.state_dict().values()
    ):
        assert torch.equal(t, s), name
    assert all(not p.requires_grad for p in wrapper.teacher.parameters())
    assert all(p.requires_grad for p in wrapper.student.parameters())
    assert float(wrapper.ema_coefficient) == 0.996
    assert wrapper.ema_coefficient.dtype == torch.float64


def test_update_teacher_equals_the_ema_formula():
    wrapper = TeacherStudentWrapper(student(), base_ema_coefficient=0.9)
    perturb(wrapper.student)
    teacher_before = {k: v.clone() for k, v in wrapper.teacher.state_dict().items()}
    student_now = {k: v.clone() for k, v in wrapper.student.state_dict().items()}
    wrapper.update_teacher()
    after = wrapper.teacher.state_dict()
    c = 0.9
    for name, t in teacher_before.items():
        s = student_now[name]
        if t.is_floating_point():
            expected = c * t + (1 - c) * s
        else:  # BatchNorm's num_batches_tracked is copied
            expected = s
        assert torch.equal(after[name], expected), name
        assert not torch.equal(after[name], t), name  # every tensor moved
    # the student is untouched
    for name, s in wrapper.student.state_dict().items():
        assert torch.equal(s, student_now[name]), name


def test_update_teacher_spot_value():
    wrapper = TeacherStudentWrapper(nn.Linear(1, 1, bias=False), base_ema_coefficient=0.75)
    with torch.no_grad():
        wrapper.teacher.weight.fill_(2.0)
        wrapper.student.weight.fill_(6.0)
    wrapper.update_teacher()
    assert wrapper.teacher.weight.item() == 0.75 * 2.0 + 0.25 * 6.0 == 3.0


def test_update_teacher_is_a_no_op_in_eval_mode_and_at_coefficient_one():
    wrapper = TeacherStudentWrapper(student(), base_ema_coefficient=0.5, final_ema_coefficient=1.0)
    perturb(wrapper.student)
    before = {k: v.clone() for k, v in wrapper.teacher.state_dict().items()}

    wrapper.eval()
    wrapper.update_teacher()
    wrapper.train()
    wrapper.update_ema_coefficient(10, 10)  # schedule end: 1.0, the teacher is frozen
    assert float(wrapper.ema_coefficient) == 1.0
    wrapper.update_teacher()
    for name, t in wrapper.teacher.state_dict().items():
        assert torch.equal(t, before[name]), name


def test_coefficient_zero_copies_the_student():
    wrapper = TeacherStudentWrapper(student(), base_ema_coefficient=0.0, final_ema_coefficient=1.0)
    perturb(wrapper.student)
    wrapper.update_teacher()
    for (name, t), s in zip(
        wrapper.teacher.state_dict().items(), wrapper.student.state_dict().values()
    ):
        assert torch.equal(t, s), name


def test_both_coefficients_zero_share_the_module():
    module = student()
    wrapper = TeacherStudentWrapper(module, base_ema_coefficient=0.0, final_ema_coefficient=0.0)
    assert wrapper.teacher is wrapper.student is module
    assert all(p.requires_grad for p in wrapper.teacher.parameters())


def test_update_ema_coefficient_follows_the_cosine_schedule():
    wrapper = TeacherStudentWrapper(student())
    values = []
    for step in (0, 25, 50, 100, 120):
        wrapper.update_ema_coefficient(step, 100)
        values.append(float(wrapper.ema_coefficient))
    assert values == [0.996, 0.9965857864376269, 0.998, 1.0, 1.0]
    # base and final stay as given
    assert float(wrapper.base_ema_coefficient) == 0.996
    assert float(wrapper.final_ema_coefficient) == 1.0


def test_coefficients_travel_with_the_state_dict():
    wrapper = TeacherStudentWrapper(student())
    wrapper.update_ema_coefficient(1, 4)
    state = wrapper.state_dict()
    assert state["ema_coefficient"].item() == 0.9965857864376269
    other = TeacherStudentWrapper(student())
    other.load_state_dict(state)
    assert float(other.ema_coefficient) == 0.9965857864376269


def test_forwards_teacher_without_grad_and_student_with_grad():
    wrapper = TeacherStudentWrapper(nn.Linear(2, 2))
    x = torch.ones(1, 2)
    assert wrapper.forward_student(x).requires_grad
    assert not wrapper.forward_teacher(x).requires_grad
    assert torch.equal(wrapper(x), wrapper.forward_teacher(x))


@pytest.mark.parametrize("name", ["base_ema_coefficient", "final_ema_coefficient"])
@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_coefficients_outside_zero_one_are_refused(name, value):
    with pytest.raises(ConfigError, match=rf"{name} must be in \[0, 1\], got {value}"):
        TeacherStudentWrapper(nn.Linear(1, 1), **{name: value})
