"""DINO: the seed's example, what the teacher and student see, gradients, embeddings, state."""

from __future__ import annotations

import pytest
import torch

from shardstream.errors import ConfigError
from shardstream.methods.dino import DINO, DINOOutput, DINOv1Loss, cls_embedding

from .tiny import TINY_VIT_KWARGS, TinyEncoder

SMALL_HEAD = {"projector_hidden_dim": 24, "projector_bottleneck_dim": 8, "n_prototypes": 32}


def tiny_dino(seed: int = 0, **kwargs) -> DINO:
    torch.manual_seed(seed)
    return DINO(TinyEncoder(dim=16), **{**SMALL_HEAD, **kwargs})


def views(seed: int = 1, batch: int = 4):
    generator = torch.Generator().manual_seed(seed)
    global_views = [torch.randn(batch, 3, 16, 16, generator=generator) for _ in range(2)]
    local_views = [torch.randn(batch, 3, 8, 8, generator=generator) for _ in range(3)]
    return global_views, local_views


def train_step(model: DINO, optimizer: torch.optim.Optimizer, seed: int) -> float:
    global_views, local_views = views(seed)
    loss = model(global_views=global_views, local_views=local_views).loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    model.update_teacher()
    return loss.item()


def test_the_seed_example_runs_with_a_tiny_vit():
    # stable_pretraining's example, with the tiny ViT and small crops instead of ViT-S at 224/96
    model = DINO("vit_tiny_patch16_224", encoder_kwargs=TINY_VIT_KWARGS)
    global_views = [torch.randn(8, 3, 32, 32), torch.randn(8, 3, 32, 32)]
    local_views = [torch.randn(8, 3, 16, 16) for _ in range(6)]
    out = model(global_views=global_views, local_views=local_views)
    out.loss.backward()

    assert isinstance(out, DINOOutput)
    assert model.embed_dim == 32 and model.n_prototypes == 65536
    assert out.loss.shape == () and torch.isfinite(out.loss)
    assert out.embedding.shape == (16, 32)
    assert out.teacher_logits.shape == (2, 8, 65536)
    assert out.student_logits.shape == (8, 8, 65536)


def test_teacher_sees_global_views_and_the_loss_is_assembled_from_both():
    model = tiny_dino()
    model.set_epoch(15)
    global_views, local_views = views()
    out = model(global_views=global_views, local_views=local_views)

    globals_ = torch.cat(global_views)
    with torch.no_grad():
        teacher_cls = model.backbone.teacher(globals_)
        teacher_logits = model.projector.teacher(teacher_cls).reshape(2, 4, 32)
        student_cls = torch.cat(
            [model.backbone.student(globals_), model.backbone.student(torch.cat(local_views))]
        )
        student_logits = model.projector.student(student_cls).reshape(5, 4, 32)
    assert torch.equal(out.embedding, teacher_cls)
    assert torch.equal(out.teacher_logits, teacher_logits)
    assert torch.equal(out.student_logits, student_logits)

    # first step: no centre yet; teacher temperature at epoch 15 of 30 is 0.055
    assert model.teacher_temperature == 0.05500000000000001
    teacher_probs = torch.softmax(teacher_logits / 0.05500000000000001, dim=-1)
    expected = DINOv1Loss(temperature_student=0.1)(out.student_logits, teacher_probs)
    assert torch.equal(out.loss, expected)
    # training mode queued the centre update (folded in at the next step)
    assert not model.dino_loss.updated


def test_only_student_parameters_receive_gradients():
    model = DINO("vit_tiny_patch16_224", encoder_kwargs=TINY_VIT_KWARGS, **SMALL_HEAD)
    global_views = [torch.randn(2, 3, 32, 32) for _ in range(2)]
    local_views = [torch.randn(2, 3, 16, 16) for _ in range(2)]
    model(global_views=global_views, local_views=local_views).loss.backward()

    named = dict(model.named_parameters())
    student = {n for n in named if ".student." in n}
    teacher = {n for n in named if ".teacher." in n}
    assert student and teacher and student | teacher == set(named)
    assert {n for n, p in named.items() if p.grad is not None} == student
    assert {n for n, p in named.items() if p.requires_grad} == student
    assert all(named[n].grad.abs().sum() > 0 for n in student if "prototypes" in n)


def test_images_return_teacher_embeddings_only():
    model = tiny_dino()
    images = torch.randn(5, 3, 16, 16)
    out = model(images=images)
    assert out.embedding.shape == (5, model.embed_dim) == (5, 16)
    assert torch.equal(out.embedding, model.backbone.teacher(images))
    assert not out.embedding.requires_grad
    assert out.loss.shape == () and out.loss.item() == 0.0
    assert out.teacher_logits is None and out.student_logits is None
    # images take precedence over views
    global_views, _ = views()
    assert torch.equal(model(global_views=global_views, images=images).embedding, out.embedding)


def test_images_take_the_cls_token_of_a_token_backbone():
    torch.manual_seed(0)
    model = DINO(TinyEncoder(dim=12, tokens=True), **SMALL_HEAD)
    images = torch.randn(3, 3, 16, 16)
    out = model(images=images)
    assert out.embedding.shape == (3, 12)
    assert torch.equal(out.embedding, cls_embedding(model.backbone.teacher(images)))


def test_global_views_alone_and_eval_mode():
    model = tiny_dino()
    global_views, _ = views()
    model.eval()
    out = model(global_views=global_views)
    assert out.student_logits.shape == (2, 4, 32)
    assert model.dino_loss.updated and model.dino_loss.center is None  # eval: centre untouched


def test_schedules_are_set_by_plain_calls():
    model = tiny_dino()
    assert model.ema_coefficient == 0.996 and model.teacher_temperature == 0.04
    model.update_ema_coefficient(50, 100)
    assert model.ema_coefficient == 0.998
    assert float(model.projector.ema_coefficient) == 0.998
    model.set_epoch(30)
    assert model.teacher_temperature == 0.07
    with pytest.raises(ConfigError, match="epoch must be an int >= 0, got -1"):
        model.set_epoch(-1)


def test_update_teacher_moves_backbone_and_projector_by_the_formula():
    model = tiny_dino(ema_decay_start=0.5)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    global_views, local_views = views()
    teacher = {k: v.clone() for k, v in model.state_dict().items() if ".teacher." in k}
    model(global_views=global_views, local_views=local_views).loss.backward()
    optimizer.step()
    student = {k: v.clone() for k, v in model.state_dict().items() if ".student." in k}
    model.update_teacher()
    after = model.state_dict()
    for name, t in teacher.items():
        s = student[name.replace(".teacher.", ".student.")]
        assert torch.equal(after[name], 0.5 * t + (1 - 0.5) * s), name
        assert not torch.equal(after[name], t), name


def test_state_dict_round_trip_is_exact():
    model = tiny_dino(seed=0)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for step in range(3):
        model.update_ema_coefficient(step, 10)
        train_step(model, optimizer, seed=step)
    model.set_epoch(7)
    state = model.state_dict()
    assert "dino_loss.center" in state and state["_extra_state"] == {"current_epoch": 7}

    restored = tiny_dino(seed=123)
    restored.load_state_dict(state)
    restored_state = restored.state_dict()
    assert restored_state.keys() == state.keys()
    for name, value in state.items():
        if name != "_extra_state":
            assert torch.equal(restored_state[name], value), name
    assert restored.current_epoch == 7 and restored.ema_coefficient == model.ema_coefficient

    # both continue identically (centre included)
    global_views, local_views = views(seed=99)
    a = model(global_views=global_views, local_views=local_views)
    b = restored(global_views=global_views, local_views=local_views)
    assert torch.equal(a.loss, b.loss) and torch.equal(a.student_logits, b.student_logits)


def test_bad_views_are_refused():
    model = tiny_dino()
    global_views, local_views = views()
    with pytest.raises(ConfigError, match="DINO.forward needs global_views or images"):
        model(local_views=local_views)
    with pytest.raises(ConfigError, match=r"global_views must be a sequence .* \(8, 3, 16, 16\)"):
        model(global_views=torch.cat(global_views))
    with pytest.raises(ConfigError, match=r"global_views\[1\] has shape \(4, 3, 8, 8\)"):
        model(global_views=[global_views[0], local_views[0]])
    with pytest.raises(ConfigError, match="local_views have batch size 2, global_views 4"):
        model(global_views=global_views, local_views=[v[:2] for v in local_views])
    with pytest.raises(ConfigError, match="temperature_teacher must be > 0"):
        tiny_dino(temperature_teacher=0.0)
