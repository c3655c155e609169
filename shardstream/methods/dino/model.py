"""DINO: self-distillation with multi-crop views and an EMA teacher (stable_pretraining's method).

stable_pretraining runs this module under Lightning, where ``TeacherStudentCallback`` advances the
EMA and ``self.current_epoch`` drives the teacher temperature. Here a plain training loop does
both with three calls per step::

    model.set_epoch(epoch)                          # teacher temperature schedule (per epoch)
    out = model(global_views=views[:2], local_views=views[2:])
    out.loss.backward(); optimizer.step(); optimizer.zero_grad()
    model.update_ema_coefficient(step, total_steps) # cosine EMA schedule (per step or epoch)
    model.update_teacher()                          # t = c * t + (1 - c) * s

The optimiser gets the parameters with ``requires_grad`` (the student's); the teacher's never
receive gradients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ...checks import check_int
from ...errors import ConfigError
from .encoders import build_encoder, cls_embedding, embedding_dim
from .loss import DINOv1Loss
from .projector import DINOProjector
from .schedules import teacher_temperature
from .wrapper import TeacherStudentWrapper

__all__ = ["DINO", "DINOOutput"]


@dataclass
class DINOOutput:
    """What :meth:`DINO.forward` returns.

    Attributes:
        loss: the scalar DINO loss (a zero scalar for ``images=``).
        embedding: detached teacher CLS embeddings, ``(B, D)`` for ``images=``, else
            ``(n_global * B, D)`` with the global views one after the other.
        teacher_logits: detached ``(n_global, B, K)`` teacher prototype scores (None for
            ``images=``).
        student_logits: ``(n_global + n_local, B, K)`` student prototype scores, global views
            first, with gradients (None for ``images=``).
    """

    loss: torch.Tensor | None = None
    embedding: torch.Tensor | None = None
    teacher_logits: torch.Tensor | None = None
    student_logits: torch.Tensor | None = None


class DINO(nn.Module):
    """DINO self-distillation with multi-crop and an EMA teacher.

    The backbone and the projector (:class:`DINOProjector`: 3-layer MLP → L2 norm → prototypes)
    are each wrapped in a :class:`TeacherStudentWrapper`; the loss is :class:`DINOv1Loss` with
    centring. The teacher sees only the global views, the student all views; every student view
    is compared with every teacher view except the same global view.

    Example::

        model = DINO("vit_small_patch16_224", encoder_kwargs={"dynamic_img_size": True})
        global_views = [torch.randn(8, 3, 224, 224), torch.randn(8, 3, 224, 224)]
        local_views = [torch.randn(8, 3, 96, 96) for _ in range(6)]
        out = model(global_views=global_views, local_views=local_views)
        out.loss.backward()

    Args:
        encoder_name: a timm model name (timm is optional, see
            :func:`~shardstream.methods.dino.encoders.build_encoder`) or a built ``nn.Module``.
            For multi-crop a timm ViT needs ``dynamic_img_size=True`` in ``encoder_kwargs``.
        projector_hidden_dim: hidden width of the projector's MLP.
        projector_bottleneck_dim: width of the normalised bottleneck.
        n_prototypes: number of prototypes (the logits' size ``K``).
        temperature_student: the student's softmax temperature.
        temperature_teacher_warmup: the teacher temperature at epoch 0.
        temperature_teacher: the teacher temperature after the warmup.
        warmup_epochs_temperature_teacher: epochs of linear teacher-temperature warmup.
        center_momentum: momentum of the teacher centre.
        ema_decay_start: the EMA coefficient at the start of training.
        ema_decay_end: the EMA coefficient at the end of training.
        encoder_kwargs: extra ``timm.create_model`` arguments.
        pretrained: load timm's pretrained weights.
        normalize_prototypes: L2-normalise the prototype weights (the original DINO's
            weight-normalised last layer); stable_pretraining does not, hence the default.

    Attributes:
        embed_dim: the backbone's embedding dimension, found by running it once.
        n_prototypes: the number of prototypes.
        current_epoch: the epoch the teacher temperature is taken at (see :meth:`set_epoch`).

    Raises:
        ConfigError: an argument is out of range, or the backbone's output has an unexpected
            shape.
        MissingDependencyError: ``encoder_name`` is a name and timm is not installed.
    """

    def __init__(
        self,
        encoder_name: str | nn.Module = "vit_small_patch16_224",
        projector_hidden_dim: int = 2048,
        projector_bottleneck_dim: int = 256,
        n_prototypes: int = 65536,
        temperature_student: float = 0.1,
        temperature_teacher_warmup: float = 0.04,
        temperature_teacher: float = 0.07,
        warmup_epochs_temperature_teacher: int = 30,
        center_momentum: float = 0.9,
        ema_decay_start: float = 0.996,
        ema_decay_end: float = 1.0,
        encoder_kwargs: Mapping[str, Any] | None = None,
        pretrained: bool = False,
        *,
        normalize_prototypes: bool = False,
    ):
        super().__init__()
        for name, value in (
            ("temperature_teacher_warmup", temperature_teacher_warmup),
            ("temperature_teacher", temperature_teacher),
        ):
            if not value > 0:
                raise ConfigError(f"DINO: {name} must be > 0, got {value!r}")
        if warmup_epochs_temperature_teacher < 0:
            raise ConfigError(
                "DINO: warmup_epochs_temperature_teacher must be >= 0, "
                f"got {warmup_epochs_temperature_teacher!r}"
            )
        backbone = build_encoder(encoder_name, pretrained=pretrained, encoder_kwargs=encoder_kwargs)
        self.embed_dim = embedding_dim(backbone)
        self.n_prototypes = n_prototypes
        projector = DINOProjector(
            in_dim=self.embed_dim,
            hidden_dim=projector_hidden_dim,
            bottleneck_dim=projector_bottleneck_dim,
            n_prototypes=n_prototypes,
            normalize_prototypes=normalize_prototypes,
        )
        self.backbone = TeacherStudentWrapper(
            backbone,
            warm_init=True,
            base_ema_coefficient=ema_decay_start,
            final_ema_coefficient=ema_decay_end,
        )
        self.projector = TeacherStudentWrapper(
            projector,
            warm_init=True,
            base_ema_coefficient=ema_decay_start,
            final_ema_coefficient=ema_decay_end,
        )
        self.dino_loss = DINOv1Loss(temperature_student, center_momentum)
        self.temperature_teacher_warmup = temperature_teacher_warmup
        self.temperature_teacher = temperature_teacher
        self.warmup_epochs_temperature_teacher = warmup_epochs_temperature_teacher
        self.current_epoch = 0

    @property
    def teacher_temperature(self) -> float:
        """The teacher temperature at :attr:`current_epoch` (linear warmup, then constant)."""
        return teacher_temperature(
            self.current_epoch,
            warmup_temperature=self.temperature_teacher_warmup,
            temperature=self.temperature_teacher,
            warmup_epochs=self.warmup_epochs_temperature_teacher,
        )

    @property
    def ema_coefficient(self) -> float:
        """The current EMA coefficient (the backbone's and the projector's are kept equal)."""
        return float(self.backbone.ema_coefficient)

    def set_epoch(self, epoch: int) -> None:
        """Set :attr:`current_epoch`, which selects the teacher temperature (Lightning sets it).

        Args:
            epoch: the epoch about to be trained (``>= 0``).

        Raises:
            ConfigError: ``epoch`` is negative or not an integer.
        """
        self.current_epoch = check_int(
            epoch,
            "epoch",
            low=0,
            message="DINO.set_epoch: epoch must be an int >= 0, got {value!r}",
        )

    def update_ema_coefficient(self, step: float, total_steps: float) -> None:
        """Set the EMA coefficient of backbone and projector from the cosine schedule.

        stable_pretraining's callback passes ``(current_epoch, max_epochs)``; the original DINO
        schedules per optimiser step, ``(step, total_steps)``. Either works.

        Args:
            step: progress so far (``>= 0``).
            total_steps: the schedule's length (``> 0``).

        Raises:
            ConfigError: ``total_steps <= 0`` or ``step < 0``.
        """
        self.backbone.update_ema_coefficient(step, total_steps)
        self.projector.update_ema_coefficient(step, total_steps)

    def update_teacher(self) -> None:
        """Move the teacher backbone and projector towards the student (call after each step).

        A no-op in eval mode or while the coefficient is 1.
        """
        self.backbone.update_teacher()
        self.projector.update_teacher()

    def forward(
        self,
        global_views: Sequence[torch.Tensor] | None = None,
        local_views: Sequence[torch.Tensor] | None = None,
        images: torch.Tensor | None = None,
    ) -> DINOOutput:
        """The DINO loss of a multi-crop batch, or the teacher embeddings of plain images.

        In training mode the teacher centre statistics of this batch are queued for the next
        step; in eval mode the centre is left alone.

        Args:
            global_views: ``n_global`` tensors ``(B, C, H, W)`` of one size (e.g. two 224 x 224
                crops).
            local_views: ``n_local`` tensors ``(B, C, h, w)`` of one size (e.g. six 96 x 96
                crops); optional.
            images: a ``(B, C, H, W)`` batch; when given the other arguments are ignored and
                only the teacher CLS embedding is returned.

        Returns:
            A :class:`DINOOutput`.

        Raises:
            ConfigError: no views and no images, views given as one tensor instead of a
                sequence, or views that disagree in batch size or shape.
        """
        if images is not None:
            embedding = cls_embedding(self.backbone.forward_teacher(images)).detach()
            return DINOOutput(loss=embedding.new_zeros(()), embedding=embedding)
        global_views = _views("global_views", global_views)
        local_views = _views("local_views", local_views)
        if not global_views:
            raise ConfigError("DINO.forward needs global_views or images")
        batch = global_views[0].shape[0]
        if local_views and local_views[0].shape[0] != batch:
            raise ConfigError(
                f"DINO.forward: local_views have batch size {local_views[0].shape[0]}, "
                f"global_views {batch}; all views must hold the same images"
            )
        n_global, n_local = len(global_views), len(local_views)

        globals_ = torch.cat(global_views)
        with torch.no_grad():
            teacher_cls = cls_embedding(self.backbone.forward_teacher(globals_))
            teacher_logits = self.projector.forward_teacher(teacher_cls)
            teacher_logits = teacher_logits.reshape(n_global, batch, -1)

        student_cls = cls_embedding(self.backbone.forward_student(globals_))
        if local_views:
            local_cls = cls_embedding(self.backbone.forward_student(torch.cat(local_views)))
            student_cls = torch.cat([student_cls, local_cls])
        student_logits = self.projector.forward_student(student_cls)
        student_logits = student_logits.reshape(n_global + n_local, batch, -1)

        teacher_probs = self.dino_loss.softmax_center_teacher(
            teacher_logits, teacher_temp=self.teacher_temperature
        )
        loss = self.dino_loss(student_logits, teacher_probs)
        if self.training:
            self.dino_loss.update_center(teacher_logits)
        return DINOOutput(
            loss=loss,
            embedding=teacher_cls.detach(),
            teacher_logits=teacher_logits.detach(),
            student_logits=student_logits,
        )

    def get_extra_state(self) -> dict[str, int]:
        """The state ``state_dict()`` saves besides tensors: ``{"current_epoch": ...}``.

        Returns:
            A dict of plain ints.
        """
        return {"current_epoch": int(self.current_epoch)}

    def set_extra_state(self, state: dict[str, int]) -> None:
        """Restore what :meth:`get_extra_state` saved (``load_state_dict()`` calls this).

        Args:
            state: the saved dict.

        Raises:
            ConfigError: ``state`` lacks ``"current_epoch"``.
        """
        if not isinstance(state, Mapping) or "current_epoch" not in state:
            raise ConfigError(f"DINO.load_state_dict: extra state lacks 'current_epoch': {state!r}")
        self.set_epoch(int(state["current_epoch"]))


def _views(name: str, views: Sequence[torch.Tensor] | None) -> list[torch.Tensor]:
    if views is None:
        return []
    if isinstance(views, torch.Tensor):
        raise ConfigError(
            f"DINO.forward: {name} must be a sequence of (B, C, H, W) tensors, one per view, "
            f"not one tensor of shape {tuple(views.shape)} (split it, e.g. list(x.chunk(n)))"
        )
    views = list(views)
    for i, view in enumerate(views):
        if view.ndim != 4 or view.shape != views[0].shape:
            raise ConfigError(
                f"DINO.forward: {name}[{i}] has shape {tuple(view.shape)}, but every view of "
                f"{name} must be (B, C, H, W) of one shape, like {name}[0] "
                f"{tuple(views[0].shape)}"
            )
    return views
