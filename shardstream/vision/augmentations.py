"""dinov2's multi-crop augmentation, per sample: ``DataAugmentationDINO``.

The reference API of the DINO pipeline, with dinov2's semantics and output, built from
shardstream's own pieces instead of torchvision transforms: crop boxes from
:func:`~shardstream.vision.crops.random_resized_crop_params` (torchvision's algorithm), Pillow's
bicubic resize and mirror (what torchvision does to PIL images), and the batched colour ops of
:mod:`~shardstream.vision.photometric`. Every random number comes from a NumPy generator, so a seed
reproduces the views exactly. The loader's fast path (:mod:`shardstream.vision.dino`) draws the
same distribution but decodes once per sample and colours whole batches on the device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError
from .crops import normalize_size, random_resized_crop_params
from .photometric import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PhotometricRecipe,
    apply_photometric,
    dinov2_recipes,
    draw_photometric_params,
    normalize,
    stack_photometric_params,
)

__all__ = ["DataAugmentationDINO", "ViewPlan"]

_RATIO = (3 / 4, 4 / 3)  # RandomResizedCrop's default aspect range, which dinov2 keeps
_FLIP_P = 0.5


@dataclass(frozen=True, kw_only=True)
class ViewPlan:
    """Everything random about one view, drawn before any pixel is touched.

    Attributes:
        kind: ``"global_1"``, ``"global_2"`` or ``"local"`` (which recipe colours it).
        box: ``(top, left, height, width)`` of the crop in the image, in pixels.
        size: ``(height, width)`` the crop is resized to.
        flip: whether the resized crop is mirrored left-right.
        params: the view's photometric parameters (:func:`draw_photometric_params`).
    """

    kind: str
    box: tuple[int, int, int, int]
    size: tuple[int, int]
    flip: bool
    params: dict[str, np.ndarray]


class DataAugmentationDINO:
    """dinov2's multi-crop augmentation: two global views and several local views per image.

    Each global view is a random resized crop (``global_crops_scale``, aspect 3/4 to 4/3,
    bicubic) mirrored with probability 0.5, then colour jitter (p 0.8, brightness 0.4, contrast
    0.4, saturation 0.2, hue 0.1, in a random order), grayscale (p 0.2) and Gaussian blur
    (kernel 9, sigma 0.1 to 2.0); global view 2 is also solarised (threshold 128, p 0.2). Local
    views use ``local_crops_scale`` and blur with p 0.5. All views are normalised with the
    ImageNet mean and std. By default the blur probabilities are dinov2's shipped ones (global
    view 1 never, global view 2 90%), which invert its documented ones; ``blur="documented"``
    gives those (1.0 and 0.1) instead. See :func:`~shardstream.vision.photometric.dinov2_recipes`.

    Args:
        global_crops_scale: ``(min, max)`` area fraction of the global crops (dinov2: (0.32, 1)).
        local_crops_scale: ``(min, max)`` area fraction of the local crops (dinov2: (0.05, 0.32)).
        local_crops_number: how many local views per image (dinov2: 8).
        global_crops_size: output size of the global views (an int or ``(height, width)``).
        local_crops_size: output size of the local views.
        blur: ``"dinov2"`` (shipped, inverted probabilities) or ``"documented"``.
        rng: the generator views are drawn from when a call passes none, or a seed for one;
            ``None`` seeds from fresh entropy.

    Raises:
        ConfigError: a scale is not ``(min, max)`` with ``0 <= min <= max``, the number of local
            crops is not an int ``>= 0``, a size is invalid, or ``blur`` is unknown.
    """

    def __init__(
        self,
        global_crops_scale: Sequence[float],
        local_crops_scale: Sequence[float],
        local_crops_number: int,
        global_crops_size: int | Sequence[int] = 224,
        local_crops_size: int | Sequence[int] = 96,
        *,
        blur: str = "dinov2",
        rng: np.random.Generator | int | None = None,
    ) -> None:
        self.global_crops_scale = _check_scale("global_crops_scale", global_crops_scale)
        self.local_crops_scale = _check_scale("local_crops_scale", local_crops_scale)
        if (
            isinstance(local_crops_number, bool)
            or not isinstance(local_crops_number, (int, np.integer))
            or local_crops_number < 0
        ):
            raise ConfigError(f"local_crops_number must be an int >= 0, got {local_crops_number!r}")
        self.local_crops_number = int(local_crops_number)
        self.global_crops_size = normalize_size(global_crops_size, "global_crops_size")
        self.local_crops_size = normalize_size(local_crops_size, "local_crops_size")
        self.blur = blur
        self.recipes: dict[str, PhotometricRecipe] = dinov2_recipes(blur)
        self._rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def __repr__(self) -> str:
        return (
            f"DataAugmentationDINO(global_crops_scale={self.global_crops_scale}, "
            f"local_crops_scale={self.local_crops_scale}, "
            f"local_crops_number={self.local_crops_number}, "
            f"global_crops_size={self.global_crops_size}, "
            f"local_crops_size={self.local_crops_size}, blur={self.blur!r})"
        )

    def plan(
        self, height: int, width: int, *, rng: np.random.Generator | None = None
    ) -> list[ViewPlan]:
        """Draw every random choice of one image's views, in dinov2's order.

        Per view: the crop box, the flip, then the photometric parameters; global view 1,
        global view 2, then the local views.

        Args:
            height: the image's height in pixels.
            width: the image's width in pixels.
            rng: the generator to draw from (default: the instance's).

        Returns:
            ``2 + local_crops_number`` view plans.

        Raises:
            ConfigError: a dimension is not a positive int.
        """
        rng = self._rng if rng is None else rng
        views = [
            ("global_1", self.global_crops_scale, self.global_crops_size),
            ("global_2", self.global_crops_scale, self.global_crops_size),
        ] + [("local", self.local_crops_scale, self.local_crops_size)] * self.local_crops_number
        plans = []
        for kind, scale, size in views:
            box = random_resized_crop_params(height, width, scale, _RATIO, rng=rng)
            flip = bool(rng.random() < _FLIP_P)
            params = draw_photometric_params(self.recipes[kind], rng)
            plans.append(ViewPlan(kind=kind, box=box, size=size, flip=flip, params=params))
        return plans

    def render(self, image: Image.Image, plans: Sequence[ViewPlan]) -> dict[str, object]:
        """Make the views of ``image`` that ``plans`` describe, as dinov2's dict.

        Args:
            image: a PIL image (converted to RGB when in another mode).
            plans: the views, from :meth:`plan`: two global views first, then local ones.

        Returns:
            ``{"global_crops": [g1, g2], "global_crops_teacher": [g1, g2] (the same tensor
            objects), "local_crops": [...], "offsets": ()}``; every view a normalised float32
            ``(3, H, W)`` tensor.

        Raises:
            ConfigError: ``image`` is not a PIL image, or a box does not lie inside it.
        """
        if not isinstance(image, Image.Image):
            raise ConfigError(f"image must be a PIL image, got {type(image).__name__}")
        if image.mode != "RGB":
            image = image.convert("RGB")
        crops = [_resized_crop(image, plan) for plan in plans]
        views: list[torch.Tensor | None] = [None] * len(plans)
        for kind in ("global_1", "global_2", "local"):
            members = [i for i, plan in enumerate(plans) if plan.kind == kind]
            for size in {plans[i].size for i in members}:
                group = [i for i in members if plans[i].size == size]
                pixels = torch.from_numpy(np.stack([crops[i] for i in group])).permute(0, 3, 1, 2)
                params = stack_photometric_params([plans[i].params for i in group])
                batch = apply_photometric(pixels, params, self.recipes[kind])
                batch = normalize(batch, IMAGENET_MEAN, IMAGENET_STD, inplace=True)
                for i, view in zip(group, batch.unbind(0)):
                    views[i] = view.clone() if len(group) > 1 else view
        global_crops = [views[i] for i, plan in enumerate(plans) if plan.kind != "local"]
        local_crops = [views[i] for i, plan in enumerate(plans) if plan.kind == "local"]
        return {
            "global_crops": global_crops,
            "global_crops_teacher": list(global_crops),
            "local_crops": local_crops,
            "offsets": (),
        }

    def __call__(
        self, image: Image.Image, *, rng: np.random.Generator | None = None
    ) -> dict[str, object]:
        """Augment one image: two global views and ``local_crops_number`` local views.

        Args:
            image: a PIL image (converted to RGB when in another mode).
            rng: the generator to draw from (default: the instance's); the loader passes each
                sample's own generator here, so views do not depend on the worker count.

        Returns:
            dinov2's dict: ``global_crops`` (2 tensors ``(3, *global_crops_size)``),
            ``global_crops_teacher`` (the same 2 tensor objects), ``local_crops``
            (``local_crops_number`` tensors ``(3, *local_crops_size)``), ``offsets`` (``()``);
            normalised float32 tensors.

        Raises:
            ConfigError: ``image`` is not a PIL image.
        """
        if not isinstance(image, Image.Image):
            raise ConfigError(f"image must be a PIL image, got {type(image).__name__}")
        return self.render(image, self.plan(image.height, image.width, rng=rng))


def _check_scale(name: str, scale: Sequence[float]) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in scale)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a pair (min, max) of numbers, got {scale!r}") from None
    if not 0.0 <= low <= high or not math.isfinite(high):
        raise ConfigError(f"{name} must be (min, max) with 0 <= min <= max, got {scale!r}")
    return low, high


def _resized_crop(image: Image.Image, plan: ViewPlan) -> np.ndarray:
    """Crop, bicubic-resize and maybe mirror, as torchvision's ``resized_crop`` + ``hflip`` on PIL."""
    top, left, height, width = plan.box
    if top < 0 or left < 0 or top + height > image.height or left + width > image.width:
        raise ConfigError(
            f"crop box {plan.box} (top, left, height, width) does not lie inside the "
            f"{image.height} x {image.width} image"
        )
    out_h, out_w = plan.size
    view = image.crop((left, top, left + width, top + height))
    view = view.resize((out_w, out_h), Image.Resampling.BICUBIC)
    if plan.flip:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(view)
