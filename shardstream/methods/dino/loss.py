"""DINOv1Loss: cross-entropy between sharpened, centred teacher and student distributions.

The centre is a running mean of the teacher's logits. As in stable_pretraining, the statistics of
step ``t`` are queued by :meth:`DINOv1Loss.update_center` (under ``torch.distributed`` their
all-reduce is started asynchronously) and folded into the centre at the start of step ``t + 1``
by :meth:`DINOv1Loss.softmax_center_teacher`, so step ``t`` is centred with the statistics up to
step ``t - 1``. The very first step is not centred; the first statistics become the centre as is.

:meth:`DINOv1Loss.sinkhorn_knopp_teacher` is stable_pretraining's alternative to centring: the
teacher's distributions are balanced over the prototypes by Sinkhorn-Knopp iterations
(:func:`sinkhorn_knopp`), which keep no state.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ...checks import check_int
from ...errors import ConfigError

__all__ = ["DINOv1Loss", "sinkhorn_knopp"]


@torch.no_grad()
def sinkhorn_knopp(
    teacher_output: torch.Tensor,
    teacher_temp: float,
    num_samples: int | torch.Tensor,
    n_iterations: int = 3,
) -> torch.Tensor:
    """Balance ``(N, K)`` teacher logits over the ``K`` prototypes (SwAV / DINOv3 Sinkhorn-Knopp).

    ``Q = exp(logits / teacher_temp)`` transposed to ``(K, N)`` is divided by its total, then
    ``n_iterations`` times each prototype's row is scaled to sum to ``1 / K`` and each sample's
    column to ``1 / num_samples``; finally ``Q * num_samples`` transposed back, so every sample's
    distribution sums to 1. Under an initialised ``torch.distributed`` the total and the row sums
    are summed over the ranks (and ``num_samples`` too when it is a tensor), so the prototypes are
    balanced over the global batch; the column sums stay per sample. There is no epsilon and no
    log-space stabilisation, as upstream.

    Args:
        teacher_output: ``(N, K)`` teacher logits of this rank.
        teacher_temp: the temperature (> 0).
        num_samples: samples over all ranks (an int, or a tensor that is all-reduced).
        n_iterations: Sinkhorn iterations (>= 0).

    Returns:
        ``(N, K)`` probabilities, float32 (float64 inputs stay float64).

    Raises:
        ConfigError: ``teacher_output`` is not 2-D, ``teacher_temp <= 0`` or ``n_iterations < 0``.
    """
    if teacher_output.ndim != 2:
        raise ConfigError(
            f"sinkhorn_knopp: teacher_output must be (samples, prototypes), got "
            f"{tuple(teacher_output.shape)}"
        )
    if not teacher_temp > 0:
        raise ConfigError(f"sinkhorn_knopp: teacher_temp must be > 0, got {teacher_temp!r}")
    n_iterations = check_int(
        n_iterations,
        "n_iterations",
        low=0,
        message="sinkhorn_knopp: n_iterations must be an int >= 0, got {value!r}",
    )
    distributed = dist.is_available() and dist.is_initialized()
    dtype = torch.promote_types(teacher_output.dtype, torch.float32)
    q = torch.exp(teacher_output.to(dtype) / teacher_temp).t()
    prototypes = q.shape[0]
    if isinstance(num_samples, torch.Tensor):
        num_samples = num_samples.clone()
        if distributed:
            dist.all_reduce(num_samples)
    total = torch.sum(q)
    if distributed:
        dist.all_reduce(total)
    q /= total
    for _ in range(n_iterations):
        rows = torch.sum(q, dim=1, keepdim=True)
        if distributed:
            dist.all_reduce(rows)
        q /= rows
        q /= prototypes
        q /= torch.sum(q, dim=0, keepdim=True)
        q /= num_samples
    q *= num_samples
    return q.t()


class DINOv1Loss(nn.Module):
    """The DINO loss over all (student view, teacher view) pairs except same-view pairs.

    For student logits ``s`` of shape ``(S, B, K)`` and teacher probabilities ``q`` of shape
    ``(T, B, K)`` (the teacher's views are the first ``T`` student views), with
    ``log_p = log_softmax(s / temperature_student)``::

        L[i, j] = - sum_b sum_k q[j, b, k] * log_p[i, b, k]
        loss = (sum of L[i, j] over i != j) / ((S * T - min(S, T)) * B)

    The centre is a registered buffer (``None`` until the first update) so that it is saved with
    ``state_dict()``; saving first folds in a pending update (it would be folded in at the next
    step anyway, with the same result), so a restored loss continues exactly.

    Args:
        temperature_student: the student's softmax temperature.
        center_momentum: ``m`` in ``center = m * center + (1 - m) * batch_center``.

    Raises:
        ConfigError: ``temperature_student <= 0`` or ``center_momentum`` outside ``[0, 1]``.
    """

    center: torch.Tensor | None

    def __init__(self, temperature_student: float = 0.1, center_momentum: float = 0.9):
        super().__init__()
        if not temperature_student > 0:
            raise ConfigError(
                f"DINOv1Loss: temperature_student must be > 0, got {temperature_student!r}"
            )
        if not 0.0 <= center_momentum <= 1.0:
            raise ConfigError(
                f"DINOv1Loss: center_momentum must be in [0, 1], got {center_momentum!r}"
            )
        self.temperature_student = temperature_student
        self.center_momentum = center_momentum
        self.register_buffer("center", None)
        self.updated = True
        self.len_teacher_output: int | None = None
        self.reduce_world_size = 1
        self.async_batch_center: torch.Tensor | None = None
        self.reduce_handle: Any = None

    def forward(self, student_logits: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
        """The loss of ``student_logits`` ``(S, B, K)`` against ``teacher_probs`` ``(T, B, K)``.

        Computed in float32 (float64 inputs stay float64); no side effects.

        Args:
            student_logits: the student's prototype scores, views first.
            teacher_probs: the teacher's distributions (:meth:`softmax_center_teacher`).

        Returns:
            The scalar loss.

        Raises:
            ConfigError: the shapes disagree, or there is only one pair of views and it is a
                same-view pair (``S == T == 1``), which leaves nothing to compare.
        """
        if student_logits.ndim != 3 or teacher_probs.ndim != 3:
            raise ConfigError(
                "DINOv1Loss: student_logits and teacher_probs must be (views, batch, prototypes), "
                f"got {tuple(student_logits.shape)} and {tuple(teacher_probs.shape)}"
            )
        if student_logits.shape[1:] != teacher_probs.shape[1:]:
            raise ConfigError(
                "DINOv1Loss: student_logits and teacher_probs disagree in batch or prototypes: "
                f"{tuple(student_logits.shape)} vs {tuple(teacher_probs.shape)}"
            )
        n_student, batch, _ = student_logits.shape
        n_teacher = teacher_probs.shape[0]
        n_pairs = n_student * n_teacher - min(n_student, n_teacher)
        if n_pairs == 0:
            raise ConfigError(
                "DINOv1Loss: one student view and one teacher view are the same view; "
                "give at least two global views or some local views"
            )
        dtype = torch.promote_types(student_logits.dtype, torch.float32)
        log_p = F.log_softmax(student_logits.to(dtype) / self.temperature_student, dim=-1)
        pairwise = -torch.einsum("tbk,sbk->st", teacher_probs.to(dtype), log_p)
        same_view = torch.eye(n_student, n_teacher, dtype=torch.bool, device=pairwise.device)
        pairwise = pairwise.masked_fill(same_view, 0.0)
        return pairwise.sum() / (n_pairs * batch)

    @torch.no_grad()
    def softmax_center_teacher(
        self, teacher_logits: torch.Tensor, teacher_temp: float, update_centers: bool = True
    ) -> torch.Tensor:
        """Centred, sharpened teacher distributions ``softmax((logits - center) / teacher_temp)``.

        Args:
            teacher_logits: ``(..., K)`` teacher prototype scores.
            teacher_temp: the teacher temperature.
            update_centers: first fold a pending centre update in.

        Returns:
            Probabilities of the shape of ``teacher_logits``, float32 (or float64).
        """
        if update_centers:
            self.apply_center_update()
        dtype = torch.promote_types(teacher_logits.dtype, torch.float32)
        logits = teacher_logits.to(dtype)
        if self.center is not None:
            if self.center.device != logits.device:
                self.center = self.center.to(logits.device)
            logits = logits - self.center
        return F.softmax(logits / teacher_temp, dim=-1)

    @torch.no_grad()
    def sinkhorn_knopp_teacher(
        self,
        teacher_logits: torch.Tensor,
        teacher_temp: float,
        num_samples: int | torch.Tensor | None = None,
        n_iterations: int = 3,
    ) -> torch.Tensor:
        """Teacher distributions balanced over the prototypes by :func:`sinkhorn_knopp`.

        The alternative to :meth:`softmax_center_teacher` (stable_pretraining's; ``DINO`` itself
        centres): it neither reads nor updates the centre. Every dimension but the last is
        flattened into samples and the result has the shape of ``teacher_logits``.

        Args:
            teacher_logits: ``(..., K)`` teacher prototype scores, e.g. ``(B, K)`` or
                ``(T, B, K)``.
            teacher_temp: the teacher temperature (> 0).
            num_samples: samples over all ranks. None means, as upstream,
                ``teacher_logits.shape[0] * world_size`` (``world_size`` is 1 without an
                initialised process group); for ``(T, B, K)`` that counts views, not samples,
                so pass ``T * B * world_size`` there. (It scales every row and column alike,
                so it changes the result only by rounding.)
            n_iterations: Sinkhorn iterations (default 3).

        Returns:
            Probabilities of the shape of ``teacher_logits``, float32 (or float64).

        Raises:
            ConfigError: ``teacher_logits`` has no dimension, ``teacher_temp <= 0`` or
                ``n_iterations < 0``.
        """
        if teacher_logits.ndim < 1:
            raise ConfigError("DINOv1Loss: teacher_logits must have a prototype dimension")
        if num_samples is None:
            world_size = (
                dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
            )
            num_samples = teacher_logits.shape[0] * world_size
        shape = teacher_logits.shape
        flat = teacher_logits.reshape(-1, shape[-1])
        return sinkhorn_knopp(flat, teacher_temp, num_samples, n_iterations).reshape(shape)

    @torch.no_grad()
    def update_center(self, teacher_output: torch.Tensor) -> None:
        """Queue this step's teacher statistics: the sum over views of the batch mean.

        Under an initialised ``torch.distributed`` the sum over ranks is started asynchronously;
        :meth:`apply_center_update` waits for it.

        Args:
            teacher_output: ``(T, B, K)`` teacher logits.
        """
        self.updated = False
        self.len_teacher_output = teacher_output.shape[0]
        dtype = torch.promote_types(teacher_output.dtype, torch.float32)
        self.async_batch_center = teacher_output.to(dtype).mean(dim=1).sum(dim=0, keepdim=True)
        # the world the sum runs over, recorded now: the update may be applied after the
        # process group is gone (e.g. a final checkpoint), and must still divide by it
        self.reduce_world_size = 1
        if dist.is_available() and dist.is_initialized():
            self.reduce_world_size = dist.get_world_size()
            self.reduce_handle = dist.all_reduce(self.async_batch_center, async_op=True)

    @torch.no_grad()
    def apply_center_update(self) -> None:
        """Fold the queued statistics into the centre (a no-op when nothing is queued).

        ``batch_center = queued / (T * world_size)``; the first time it becomes the centre,
        afterwards ``center = m * center + (1 - m) * batch_center``.
        """
        queued, rows = self.async_batch_center, self.len_teacher_output
        if self.updated or queued is None or rows is None:  # queued and rows are set together
            return
        if self.reduce_handle is not None:
            self.reduce_handle.wait()
            self.reduce_handle = None
        world_size = self.reduce_world_size
        batch_center = queued / (rows * world_size)
        if self.center is None:
            self.center = batch_center
        else:
            m = self.center_momentum
            self.center.mul_(m).add_(batch_center.to(self.center) * (1.0 - m))
        self.async_batch_center = None
        self.updated = True

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        self.apply_center_update()
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "center"
        saved = state_dict.get(key)
        if saved is None:
            self.center = None
        elif self.center is None or self.center.shape != saved.shape:
            self.center = torch.empty_like(saved)
        self.updated = True
        self.async_batch_center = None
        self.reduce_handle = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
