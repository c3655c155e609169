"""dinov2's ``collate_data_and_cast``: stack multi-crop views, draw iBOT masks, cast.

The mask outputs (``collated_masks``, ``mask_indices_list``, ``masks_weight``, ``upperbound``,
``n_masked_patches``) are built by :func:`collate_masks`, shared with the loader's fast path, which
draws its masks per sample in the workers (:func:`~shardstream.vision.masking.sample_masks`)
instead of per batch (:func:`stratified_masks`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..checks import check_int
from ..errors import ConfigError, ConfigTypeError
from .masking import (
    RandomSource,
    _random_source,
    check_mask_probability,
    check_mask_ratio_tuple,
)

__all__ = ["collate_data_and_cast", "collate_masks", "stratified_masks"]

MaskFn = Callable[..., np.ndarray]
"""A mask generator: called with a target patch count, returns an ``(H, W)`` bool array."""


def collate_data_and_cast(
    samples_list: Sequence[Any],
    mask_ratio_tuple: tuple[float, float],
    mask_probability: float,
    dtype: torch.dtype,
    n_tokens: int | None = None,
    mask_generator: MaskFn | None = None,
    *,
    rng: RandomSource = None,
) -> dict[str, Any]:
    """Collate ``DataAugmentationDINO`` outputs into one batch, as dinov2's collate does.

    Crops are stacked crop-major (every sample's crop 0, then every sample's crop 1, ...). Of the
    ``B = n_global * batch`` global crops, ``int(B * mask_probability)`` get a block mask, drawn
    by :func:`stratified_masks`; the rest get none.

    Args:
        samples_list: ``(augmented, target)`` pairs (targets are ignored), where ``augmented`` is
            a dict with lists ``"global_crops"`` and ``"local_crops"`` of ``(C, H, W)`` tensors;
            a bare dict is accepted in place of a pair.
        mask_ratio_tuple: ``(lo, hi)``, ``0 <= lo <= hi <= 1``: the range of mask ratios.
        mask_probability: the share of global crops that are masked, in ``[0, 1]``.
        dtype: the dtype the crops are cast to (e.g. ``torch.half``).
        n_tokens: the number of patch tokens per global crop that mask ratios refer to;
            defaults to the generator's ``height * width`` (dinov2 fails without it).
        mask_generator: called as ``mask_generator(n)`` (``mask_generator(n, rng=rng)`` when
            ``rng`` is given) for an ``(H, W)`` bool mask with at most ``n`` patches, e.g. a
            :class:`~shardstream.vision.masking.MaskingGenerator`. Required.
        rng: where mask randomness comes from (see :mod:`shardstream.vision.masking`); ``None``
            draws from Python's global :mod:`random` module, bit-identical to dinov2.

    Returns:
        A dict with dinov2's keys:
        ``collated_global_crops`` (``(n_global * batch, C, H, W)``, ``dtype``),
        ``collated_local_crops`` (``(n_local * batch, C, h, w)``, ``dtype``; shape ``(0,)`` when
        there are no local crops, where dinov2 fails), and the mask keys of
        :func:`collate_masks`.

    Raises:
        ConfigError: ``samples_list`` is empty or malformed, or another argument is out of range
            or missing (the message names it); a ``ConfigTypeError`` for a wrong type.
    """
    if not isinstance(samples_list, Sequence) or len(samples_list) == 0:
        raise ConfigError(
            f"samples_list must be a non-empty sequence of samples, got {samples_list!r}"
        )
    if not isinstance(dtype, torch.dtype):
        raise ConfigTypeError(f"dtype must be a torch.dtype, got {dtype!r}")
    if mask_generator is None or not callable(mask_generator):
        raise ConfigTypeError(
            f"mask_generator must be a callable such as MaskingGenerator, got {mask_generator!r}"
        )
    views = [_views(sample, i) for i, sample in enumerate(samples_list)]
    global_crops = _stack_crop_major(views, "global_crops")
    local_crops = _stack_crop_major(views, "local_crops")
    if n_tokens is None:
        height, width = _shape(mask_generator)
        n_tokens = height * width
    masks, upperbound = stratified_masks(
        mask_generator,
        len(global_crops),
        mask_ratio_tuple,
        mask_probability,
        n_tokens,
        rng=rng,
    )
    return {
        "collated_global_crops": global_crops.to(dtype),
        "collated_local_crops": local_crops.to(dtype),
        **collate_masks(masks, upperbound),
    }


def stratified_masks(
    mask_generator: MaskFn,
    n_images: int,
    mask_ratio_tuple: tuple[float, float],
    mask_probability: float,
    n_tokens: int,
    *,
    rng: RandomSource = None,
) -> tuple[list[np.ndarray], int]:
    """dinov2's batch-level mask draw: stratified ratios, then a shuffle over the images.

    With ``n = int(n_images * mask_probability)`` and ``edges = torch.linspace(lo, hi, n + 1)``
    (float32, as dinov2): image ``i < n`` gets ``mask_generator(int(n_tokens * uniform(edges[i],
    edges[i + 1])))`` (float32 arithmetic, as dinov2's tensor bounds give) and adds
    ``int(n_tokens * edges[i + 1])`` to the upper bound; the others get ``mask_generator(0)``.
    The list is then shuffled. Draw for draw what dinov2 does, so with ``rng=None`` and the same
    global :mod:`random` state the result is bit-identical.

    Args:
        mask_generator: see :func:`collate_data_and_cast`.
        n_images: how many masks, ``>= 0``.
        mask_ratio_tuple: ``(lo, hi)``, ``0 <= lo <= hi <= 1``.
        mask_probability: the share of images masked, in ``[0, 1]``.
        n_tokens: the number of tokens a ratio refers to, ``>= 1``.
        rng: where randomness comes from (see :mod:`shardstream.vision.masking`); one source
            serves the ratios, the generator and the shuffle.

    Returns:
        ``(masks, upperbound)``: ``n_images`` bool ``(H, W)`` arrays in shuffled order, and the
        sum of the masked images' bin upper edges times ``n_tokens`` (a Python int).

    Raises:
        ConfigError: an argument is out of range (the message names it).
    """
    n_images = _int(n_images, "n_images", low=0)
    n_tokens = _int(n_tokens, "n_tokens", low=1)
    low, high = check_mask_ratio_tuple(mask_ratio_tuple)
    mask_probability = check_mask_probability(mask_probability)
    draws = _random_source(rng)
    n_masked = int(n_images * mask_probability)
    edges = torch.linspace(low, high, n_masked + 1)
    pass_rng = {} if rng is None else {"rng": draws}
    masks = []
    upperbound = 0
    for i in range(n_masked):
        edge_low, edge_high = edges[i], edges[i + 1]
        target = int(n_tokens * draws.uniform(edge_low, edge_high))
        masks.append(mask_generator(target, **pass_rng))
        upperbound += int(n_tokens * edge_high)
    masks.extend(mask_generator(0, **pass_rng) for _ in range(n_masked, n_images))
    draws.shuffle(masks)
    return masks, upperbound


def collate_masks(
    masks: np.ndarray | torch.Tensor | Sequence[np.ndarray | torch.Tensor], upperbound: int
) -> dict[str, Any]:
    """dinov2's mask outputs from a batch of per-image masks.

    Args:
        masks: the global crops' masks, either ``(B, H, W)`` (or a sequence of ``(H, W)``) in
            dinov2's crop-major order (every sample's crop 0, then every sample's crop 1, ...),
            or ``(batch, n_global, H, W)`` as the loader stacks per-sample masks, which is
            reordered crop-major to match ``collated_global_crops``.
        upperbound: the bound to report (from :func:`stratified_masks` or
            :func:`~shardstream.vision.masking.masks_upperbound`).

    Returns:
        A dict with ``collated_masks`` (bool ``(B, H * W)``), ``mask_indices_list`` (int64
        indices of the True cells of ``collated_masks.flatten()``), ``masks_weight`` (float32,
        per masked token ``1 / max(1, masked tokens of its image)``), ``upperbound`` (the Python
        int given) and ``n_masked_patches`` (int64 tensor of shape ``(1,)``). Tensors are on the
        device of ``masks`` when it is a tensor.

    Raises:
        ConfigError: ``masks`` is not 3- or 4-dimensional, or ``upperbound`` is not an int.
    """
    upperbound = _int(upperbound, "upperbound", low=0)
    if isinstance(masks, (np.ndarray, torch.Tensor)):
        stacked = torch.as_tensor(masks)
    else:
        if len(masks) == 0:
            raise ConfigError("masks must hold at least one mask, got an empty sequence")
        stacked = torch.stack([torch.as_tensor(m) for m in masks])
    if stacked.ndim == 4:
        stacked = stacked.transpose(0, 1).reshape(-1, *stacked.shape[2:])
    if stacked.ndim != 3:
        raise ConfigError(
            "masks must have shape (B, H, W) or (batch, n_global, H, W), "
            f"got shape {tuple(stacked.shape)}"
        )
    collated = stacked.to(torch.bool).flatten(1)
    indices = collated.flatten().nonzero().flatten()
    weight = 1 / collated.sum(-1).clamp(min=1.0)
    return {
        "collated_masks": collated,
        "mask_indices_list": indices,
        "masks_weight": weight.unsqueeze(-1).expand_as(collated)[collated],
        "upperbound": upperbound,
        "n_masked_patches": torch.full(
            (1,), fill_value=indices.shape[0], dtype=torch.long, device=collated.device
        ),
    }


# --- helpers ---------------------------------------------------------------------------------


def _views(sample: Any, position: int) -> Mapping[str, Any]:
    views = sample if isinstance(sample, Mapping) else None
    if views is None:
        try:
            views = sample[0]
        except (TypeError, IndexError, KeyError):
            views = None
    if not isinstance(views, Mapping) or "global_crops" not in views or "local_crops" not in views:
        raise ConfigError(
            f"samples_list[{position}] must be an (augmented, target) pair whose augmented dict "
            f"has 'global_crops' and 'local_crops', got {type(sample).__name__}"
        )
    return views


def _stack_crop_major(views: list[Mapping[str, Any]], key: str) -> torch.Tensor:
    count = len(views[0][key])
    for position, sample in enumerate(views):
        if len(sample[key]) != count:
            raise ConfigError(
                f"samples_list[{position}] has {len(sample[key])} {key}, "
                f"samples_list[0] has {count}"
            )
    if count == 0:
        return torch.empty((0,))
    crops = [torch.as_tensor(sample[key][i]) for i in range(count) for sample in views]
    try:
        return torch.stack(crops)
    except RuntimeError as error:
        raise ConfigError(f"samples_list: {key} differ in shape ({error})") from None


def _shape(mask_generator: MaskFn) -> tuple[int, int]:
    get_shape = getattr(mask_generator, "get_shape", None)
    if get_shape is None:
        raise ConfigError(
            "n_tokens is required when mask_generator has no get_shape() to count its patches"
        )
    return get_shape()


def _int(value: object, name: str, low: int) -> int:
    return check_int(value, name, low=low)
