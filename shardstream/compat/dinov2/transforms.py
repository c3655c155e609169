"""dinov2's ``transforms`` module: its blur, tensor conversion, normalisation and classification
pipelines, as torchvision transforms with dinov2's defaults.

These are the reference API for code written against ``dinov2.data.transforms``: torchvision
(v1) transforms on PIL images, drawing from torch's global generator, so ``torch.manual_seed``
gives exactly the images dinov2 gives. They need torchvision, which shardstream does not depend
on: importing this module without it raises :class:`~shardstream.errors.MissingDependencyError`
(``pip install 'shardstream[torchvision]'``). The package root resolves these names on first use,
so ``import shardstream`` never imports torchvision.

The loader's fast path makes the same classification pipelines without torchvision, decoding
each image once in the workers: :func:`~shardstream.vision.supervised.make_classification_train_preset`
and :func:`~shardstream.vision.supervised.make_classification_eval_preset` take the same
arguments and defaults.

Kept from dinov2 on purpose: :class:`GaussianBlur` hands ``1 - p`` to ``RandomApply``, so it blurs
with probability ``1 - p`` (``p=1.0`` never blurs); see
:func:`~shardstream.vision.recipes.dinov2_recipes` for what :class:`DataAugmentationDINO` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ...errors import ConfigError, MissingDependencyError
from ...vision.recipes import IMAGENET_MEAN, IMAGENET_STD

try:
    import torch
    from torchvision import transforms
except ModuleNotFoundError as _error:  # torch or torchvision
    raise MissingDependencyError(
        "shardstream.compat.dinov2.transforms (dinov2's transforms) needs torchvision: "
        "pip install 'shardstream[torchvision]' (or pip install torchvision); the loader's "
        "presets (make_classification_train_preset, ...) work without it"
    ) from _error

__all__ = [
    "IMAGENET_DEFAULT_MEAN",
    "IMAGENET_DEFAULT_STD",
    "GaussianBlur",
    "MaybeToTensor",
    "make_normalize_transform",
    "make_classification_train_transform",
    "make_classification_eval_transform",
]

#: ImageNet's per-channel RGB mean in [0, 1] (timm's name, as dinov2 uses)
IMAGENET_DEFAULT_MEAN: tuple[float, float, float] = IMAGENET_MEAN
#: ImageNet's per-channel RGB standard deviation in [0, 1]
IMAGENET_DEFAULT_STD: tuple[float, float, float] = IMAGENET_STD

_BLUR_KERNEL_SIZE = 9  # dinov2's fixed kernel


class GaussianBlur(transforms.RandomApply):
    """dinov2's random Gaussian blur: a 9-pixel kernel with sigma drawn from
    ``[radius_min, radius_max]``, applied with probability **``1 - p``**.

    A torchvision ``RandomApply`` of ``GaussianBlur(kernel_size=9, sigma=(radius_min,
    radius_max))`` handed ``1 - p``, exactly as dinov2 ships it (its comment assumes torchvision
    keeps the image with probability ``p``; ``RandomApply`` applies with it). So ``p=1.0`` never
    blurs, ``p=0.1`` blurs 90 % of the time. Draws come from torch's global generator: one
    ``torch.rand(1)`` per call, then the sigma when the blur runs.

    Args:
        p: dinov2's ``p`` (the probability of *not* blurring), in ``[0, 1]``.
        radius_min: the smallest sigma, ``> 0``.
        radius_max: the largest sigma, ``>= radius_min``.

    Raises:
        ConfigError: ``p`` is not in ``[0, 1]`` or the sigma range is not ``0 < min <= max``
            (both ``ValueError``s; torchvision raises ``ValueError`` for a bad sigma range too).
    """

    def __init__(self, *, p: float = 0.5, radius_min: float = 0.1, radius_max: float = 2.0):
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ConfigError(f"GaussianBlur: p must be a probability in [0, 1], got {p!r}")
        for name, value in (("radius_min", radius_min), ("radius_max", radius_max)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"GaussianBlur: {name} must be a number, got {value!r}")
        if not (0.0 < radius_min <= radius_max and math.isfinite(radius_max)):
            raise ConfigError(
                "GaussianBlur: need 0 < radius_min <= radius_max, got "
                f"radius_min={radius_min!r}, radius_max={radius_max!r}"
            )
        blur = transforms.GaussianBlur(
            kernel_size=_BLUR_KERNEL_SIZE, sigma=(radius_min, radius_max)
        )
        super().__init__(transforms=[blur], p=1.0 - p)  # dinov2's inversion, kept


class MaybeToTensor(transforms.ToTensor):
    """torchvision's ``ToTensor``, except that a tensor is returned as it is (the same object).

    A PIL image or ``numpy.ndarray`` (H x W x C) becomes a float tensor ``(C, H, W)`` scaled to
    ``[0, 1]`` (uint8 input) as ``ToTensor`` does.
    """

    def __call__(self, pic: Any) -> torch.Tensor:
        """Convert ``pic`` to a tensor, or return it unchanged when it is one already.

        Args:
            pic: a PIL image, a ``numpy.ndarray`` or a ``torch.Tensor``.

        Returns:
            ``pic`` itself when it is a tensor; otherwise ``ToTensor()(pic)``.

        Raises:
            TypeError: ``pic`` is none of these (torchvision's error).
        """
        if isinstance(pic, torch.Tensor):
            return pic
        return super().__call__(pic)


def make_normalize_transform(
    mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
    std: Sequence[float] = IMAGENET_DEFAULT_STD,
) -> transforms.Normalize:
    """torchvision's ``Normalize(mean, std)``, by default with ImageNet's statistics.

    Args:
        mean: per-channel mean subtracted from a ``[0, 1]`` float tensor.
        std: per-channel standard deviation divided by.

    Returns:
        A ``torchvision.transforms.Normalize``.

    Raises:
        ConfigError: ``mean`` and ``std`` differ in length or a ``std`` entry is not positive.
    """
    if len(mean) != len(std) or any(not s > 0 for s in std):
        raise ConfigError(
            f"make_normalize_transform: mean and std need one value per channel and std > 0, "
            f"got mean={mean!r}, std={std!r}"
        )
    return transforms.Normalize(mean=mean, std=std)


def make_classification_train_transform(
    *,
    crop_size: int = 224,
    interpolation: transforms.InterpolationMode = transforms.InterpolationMode.BICUBIC,
    hflip_prob: float = 0.5,
    mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
    std: Sequence[float] = IMAGENET_DEFAULT_STD,
) -> transforms.Compose:
    """dinov2's classification training pipeline (close to torchvision's reference preset).

    ``RandomResizedCrop(crop_size, interpolation)`` (scale 0.08 to 1, aspect 3/4 to 4/3), then
    ``RandomHorizontalFlip(hflip_prob)`` when ``hflip_prob > 0`` (left out otherwise, so no draw
    is made for it), :class:`MaybeToTensor` and :func:`make_normalize_transform`. The fast
    loader's equivalent is :func:`~shardstream.vision.supervised.make_classification_train_preset`.

    Args:
        crop_size: output size (an int: square).
        interpolation: a ``torchvision.transforms.InterpolationMode`` (dinov2: bicubic).
        hflip_prob: probability of mirroring the crop.
        mean: normalisation mean.
        std: normalisation standard deviation.

    Returns:
        A ``torchvision.transforms.Compose`` taking a PIL image, returning a float tensor
        ``(3, crop_size, crop_size)``.

    Raises:
        ConfigError: ``hflip_prob`` is not in ``[0, 1]``, or ``mean``/``std`` are invalid.
    """
    if not 0.0 <= hflip_prob <= 1.0:
        raise ConfigError(f"hflip_prob must be a probability in [0, 1], got {hflip_prob!r}")
    steps: list[Any] = [transforms.RandomResizedCrop(crop_size, interpolation=interpolation)]
    if hflip_prob > 0.0:
        steps.append(transforms.RandomHorizontalFlip(hflip_prob))
    steps += [MaybeToTensor(), make_normalize_transform(mean=mean, std=std)]
    return transforms.Compose(steps)


def make_classification_eval_transform(
    *,
    resize_size: int = 256,
    interpolation: transforms.InterpolationMode = transforms.InterpolationMode.BICUBIC,
    crop_size: int = 224,
    mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
    std: Sequence[float] = IMAGENET_DEFAULT_STD,
) -> transforms.Compose:
    """dinov2's classification evaluation pipeline: resize the shorter side, centre crop.

    ``Resize(resize_size, interpolation)``, ``CenterCrop(crop_size)``, :class:`MaybeToTensor`
    and :func:`make_normalize_transform`. The fast loader's equivalent is
    :func:`~shardstream.vision.supervised.make_classification_eval_preset`.

    Args:
        resize_size: the shorter side after resizing.
        interpolation: a ``torchvision.transforms.InterpolationMode`` (dinov2: bicubic).
        crop_size: the output size.
        mean: normalisation mean.
        std: normalisation standard deviation.

    Returns:
        A ``torchvision.transforms.Compose`` taking a PIL image, returning a float tensor
        ``(3, crop_size, crop_size)``.

    Raises:
        ConfigError: ``mean``/``std`` are invalid.
    """
    return transforms.Compose(
        [
            transforms.Resize(resize_size, interpolation=interpolation),
            transforms.CenterCrop(crop_size),
            MaybeToTensor(),
            make_normalize_transform(mean=mean, std=std),
        ]
    )
