"""dinov2's multi-crop augmentation, per sample: ``DataAugmentationDINO``.

The reference API of the DINO pipeline, with dinov2's semantics and output, built without
torchvision: every view is made on a PIL image with the very operations torchvision v1 applies
to PIL images (Pillow's crop, bicubic resize and mirror; ``ImageEnhance`` brightness, contrast and
colour; the HSV hue shift; ``convert("L")`` grayscale; torchvision's float32 Gaussian blur of the
uint8 pixels, rounded back to uint8; ``ImageOps.solarize``), so each op's output is quantised to
uint8 before the next exactly where dinov2's is.

Where randomness comes from:

- by default (``rng=None``), torch's global generator, with the very calls torchvision's
  transforms make in dinov2's order (``torch.rand``, ``torch.randint``, ``torch.randperm``,
  ``uniform_``) at call time. ``torch.manual_seed(s)`` then gives exactly the views dinov2 gives,
  and in ``DataLoader`` workers, which torch seeds one by one (``base_seed + worker_id``, a new
  ``base_seed`` per epoch), views differ per worker and per epoch as in dinov2.
- an explicit ``rng`` (a NumPy generator or a seed), in the constructor or per call: every draw
  comes from that generator (same distribution, other numbers), deterministic whatever torch's
  state. A generator held by the instance is copied into forked workers, so with an explicit
  ``rng`` every worker repeats the same stream (pass each sample its own generator instead).

The loader's fast path (:mod:`shardstream.vision.dino`) draws the same distribution but decodes
once per sample and colours whole batches on the device, in float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance, ImageOps

from ..checks import check_int
from ..errors import ConfigError
from .crops import check_dims, normalize_size, random_resized_crop_params
from .photometric import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PhotometricRecipe,
    dinov2_recipes,
    draw_photometric_params,
    normalize,
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
    Every colour op works on uint8 pixels as dinov2's PIL pipeline does.

    Randomness: with ``rng=None`` (the default, dinov2's behaviour) every draw is made from
    torch's global generator when a view is drawn, so ``torch.manual_seed`` reproduces the views
    (the same ones dinov2 makes) and ``DataLoader`` workers, which torch seeds per worker and per
    epoch, make different views. With ``rng`` the views come from that NumPy generator instead.

    Args:
        global_crops_scale: ``(min, max)`` area fraction of the global crops (dinov2: (0.32, 1)).
        local_crops_scale: ``(min, max)`` area fraction of the local crops (dinov2: (0.05, 0.32)).
        local_crops_number: how many local views per image (dinov2: 8).
        global_crops_size: output size of the global views (an int or ``(height, width)``).
        local_crops_size: output size of the local views.
        blur: ``"dinov2"`` (shipped, inverted probabilities) or ``"documented"``.
        rng: a NumPy generator (or a seed for one) to draw every view from when a call passes
            none: a deterministic stream, whatever torch's state. ``None`` (default): draw from
            torch's global generator at call time, as dinov2 does.

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
        self.local_crops_number = check_int(
            local_crops_number,
            "local_crops_number",
            low=0,
            message="{name} must be an int >= {low}, got {value!r}",
        )
        self.global_crops_size = normalize_size(global_crops_size, "global_crops_size")
        self.local_crops_size = normalize_size(local_crops_size, "local_crops_size")
        self.blur = blur
        self.recipes: dict[str, PhotometricRecipe] = dinov2_recipes(blur)
        if rng is None or isinstance(rng, np.random.Generator):
            self._rng = rng
        else:
            self._rng = np.random.default_rng(rng)

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
        global view 2, then the local views. From torch's global generator (no generator given
        here or to the constructor), the draws are torchvision's own calls in dinov2's order, so
        an op's parameters are drawn only when torchvision draws them; the plan then holds
        neutral values for the others (factor 1, hue 0, the smallest sigma, order 0..3). From a
        NumPy generator, every parameter is drawn for every view
        (:func:`~shardstream.vision.photometric.draw_photometric_params`).

        Args:
            height: the image's height in pixels.
            width: the image's width in pixels.
            rng: the generator to draw from (default: the instance's, else torch's global one).

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
        if rng is None:
            height, width = check_dims(height, width)
        plans = []
        for kind, scale, size in views:
            recipe = self.recipes[kind]
            if rng is None:  # torchvision's draws: RandomResizedCrop, RandomHorizontalFlip, ...
                box = _torch_crop_box(height, width, scale, _RATIO)
                flip = bool(torch.rand(1) < _FLIP_P)
                params = _torch_photometric_params(recipe, solarize=kind == "global_2")
            else:
                box = random_resized_crop_params(height, width, scale, _RATIO, rng=rng)
                flip = bool(rng.random() < _FLIP_P)
                params = draw_photometric_params(recipe, rng)
            plans.append(ViewPlan(kind=kind, box=box, size=size, flip=flip, params=params))
        return plans

    def render(self, image: Image.Image, plans: Sequence[ViewPlan]) -> dict[str, object]:
        """Make the views of ``image`` that ``plans`` describe, as dinov2's dict.

        Each view is cropped, resized and mirrored, coloured on uint8 pixels in dinov2's order
        (jitter ops in the plan's order, grayscale, blur, solarise; each op rounds to uint8 as
        Pillow and torchvision do), then scaled to ``[0, 1]`` and normalised.

        Args:
            image: a PIL image (converted to RGB when in another mode).
            plans: the views, from :meth:`plan`: two global views first, then local ones.

        Returns:
            ``{"global_crops": [g1, g2], "global_crops_teacher": [g1, g2] (the same tensor
            objects), "local_crops": [...], "offsets": ()}``; every view a normalised float32
            ``(3, H, W)`` tensor.

        Raises:
            ConfigError: ``image`` is not a PIL image, a box does not lie inside it, or a view is
                too small for the blur kernel (reflect padding needs more than half the kernel).
        """
        if not isinstance(image, Image.Image):
            raise ConfigError(f"image must be a PIL image, got {type(image).__name__}")
        if image.mode != "RGB":
            image = image.convert("RGB")
        views = [_to_tensor(self._colour(_resized_crop(image, plan), plan)) for plan in plans]
        global_crops = [views[i] for i, plan in enumerate(plans) if plan.kind != "local"]
        local_crops = [views[i] for i, plan in enumerate(plans) if plan.kind == "local"]
        return {
            "global_crops": global_crops,
            "global_crops_teacher": list(global_crops),
            "local_crops": local_crops,
            "offsets": (),
        }

    def _colour(self, view: Image.Image, plan: ViewPlan) -> Image.Image:
        """The plan's colour ops on one RGB view, as torchvision applies them to PIL images."""
        recipe, p = self.recipes[plan.kind], plan.params
        if p["jitter"]:
            for op in np.asarray(p["order"]).tolist():  # torchvision's ColorJitter.forward
                if op == 0 and recipe.brightness > 0:
                    view = ImageEnhance.Brightness(view).enhance(float(p["brightness"]))
                elif op == 1 and recipe.contrast > 0:
                    view = ImageEnhance.Contrast(view).enhance(float(p["contrast"]))
                elif op == 2 and recipe.saturation > 0:
                    view = ImageEnhance.Color(view).enhance(float(p["saturation"]))
                elif op == 3 and recipe.hue > 0:
                    view = _adjust_hue(view, float(p["hue"]))
        if p["grayscale"]:
            gray = view.convert("L")
            view = Image.merge("RGB", (gray, gray, gray))
        if p["blur"]:
            view = _gaussian_blur(view, recipe.blur_kernel_size, float(p["sigma"]))
        if p["solarize"]:
            view = ImageOps.solarize(view, recipe.solarize_threshold)
        return view

    def __call__(
        self, image: Image.Image, *, rng: np.random.Generator | None = None
    ) -> dict[str, object]:
        """Augment one image: two global views and ``local_crops_number`` local views.

        Args:
            image: a PIL image (converted to RGB when in another mode).
            rng: the generator to draw from (default: the instance's, else torch's global
                generator, as dinov2); a per-sample generator makes views independent of the
                worker count.

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


def _torch_crop_box(
    height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float]
) -> tuple[int, int, int, int]:
    """torchvision's ``RandomResizedCrop.get_params``, call for call on torch's generator."""
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1]).item()
        aspect_ratio = torch.exp(
            torch.empty(1).uniform_(float(log_ratio[0]), float(log_ratio[1]))
        ).item()
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, size=(1,)).item())
            left = int(torch.randint(0, width - w + 1, size=(1,)).item())
            return top, left, h, w
    in_ratio = float(width) / float(height)  # no draw fitted: the centred fallback
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def _torch_photometric_params(
    recipe: PhotometricRecipe, *, solarize: bool
) -> dict[str, np.ndarray]:
    """One view's colour draws, as dinov2's torchvision transforms make them on torch's generator.

    ``RandomApply(ColorJitter)``, ``RandomGrayscale``, dinov2's ``GaussianBlur`` (a
    ``RandomApply``) and, for global view 2 only, ``RandomSolarize``, each with torchvision's
    comparison; jitter factors and sigma are drawn only when their op runs.
    """
    params = {
        "jitter": np.array(not bool(recipe.jitter_p < torch.rand(1))),
        "order": np.arange(4, dtype=np.int64),
        "brightness": np.array(1.0, dtype=np.float32),
        "contrast": np.array(1.0, dtype=np.float32),
        "saturation": np.array(1.0, dtype=np.float32),
        "hue": np.array(0.0, dtype=np.float32),
    }
    if params["jitter"]:  # ColorJitter.get_params: randperm(4), then the enabled factors
        params["order"] = torch.randperm(4).numpy().astype(np.int64)
        for name in ("brightness", "contrast", "saturation", "hue"):
            strength = getattr(recipe, name)
            if strength > 0:  # torchvision's ranges: [-hue, hue], [max(0, 1 - s), 1 + s]
                low = -strength if name == "hue" else max(0.0, 1.0 - strength)
                high = strength if name == "hue" else 1.0 + strength
                params[name] = np.array(torch.empty(1).uniform_(low, high).item(), np.float32)
    params["grayscale"] = np.array(bool(torch.rand(1) < recipe.grayscale_p))
    params["blur"] = np.array(not bool(recipe.blur_p < torch.rand(1)))
    sigma = recipe.blur_sigma[0]
    if params["blur"]:
        sigma = torch.empty(1).uniform_(recipe.blur_sigma[0], recipe.blur_sigma[1]).item()
    params["sigma"] = np.array(sigma, dtype=np.float32)
    params["solarize"] = np.array(solarize and torch.rand(1).item() < recipe.solarize_p)
    return params


def _adjust_hue(view: Image.Image, hue: float) -> Image.Image:
    """torchvision's ``adjust_hue`` on an RGB PIL image: Pillow's uint8 HSV, hue shifted mod 256."""
    h, s, v = view.convert("HSV").split()
    shifted = np.array(h, dtype=np.uint8)
    shifted += np.int32(hue * 255).astype(np.uint8)  # wraps around, as in torchvision
    return Image.merge("HSV", (Image.fromarray(shifted, "L"), s, v)).convert("RGB")


def _gaussian_blur(view: Image.Image, kernel_size: int, sigma: float) -> Image.Image:
    """torchvision's ``gaussian_blur`` of a PIL image: float32 kernel, reflect padding, rounded."""
    radius = kernel_size // 2
    if radius >= view.height or radius >= view.width:
        raise ConfigError(
            f"blur kernel size {kernel_size} is too large for {view.height} x {view.width} "
            "views (reflect padding needs the view larger than half the kernel)"
        )
    half = (kernel_size - 1) * 0.5
    x = torch.linspace(-half, half, steps=kernel_size, dtype=torch.float32)
    pdf = torch.exp(-0.5 * (x / sigma).pow(2))
    kernel1d = pdf / pdf.sum()
    kernel = torch.mm(kernel1d[:, None], kernel1d[None, :]).expand(3, 1, kernel_size, kernel_size)
    pixels = torch.from_numpy(np.array(view, dtype=np.uint8)).permute(2, 0, 1)
    padded = F.pad(pixels.unsqueeze(0).to(torch.float32), [radius] * 4, mode="reflect")
    blurred = torch.round(F.conv2d(padded, kernel, groups=3)).to(torch.uint8)[0]
    return Image.fromarray(blurred.permute(1, 2, 0).numpy(), "RGB")


def _to_tensor(view: Image.Image) -> torch.Tensor:
    """``Normalize(ToTensor()(view))`` with the ImageNet mean and std: a float32 ``(3, H, W)``."""
    pixels = torch.from_numpy(np.array(view, dtype=np.uint8)).permute(2, 0, 1).contiguous()
    return normalize(pixels, IMAGENET_MEAN, IMAGENET_STD)


def _resized_crop(image: Image.Image, plan: ViewPlan) -> Image.Image:
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
    return view
