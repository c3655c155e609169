"""Batched colour augmentation with per-sample parameters: dinov2's photometric recipe in torch.

dinov2 augments each view on a PIL image with torchvision's ``ColorJitter`` (applied with
probability 0.8, its four ops in a random order), ``RandomGrayscale``, ``GaussianBlur`` and
``RandomSolarize``. Here the random parameters of one view are drawn up front on a NumPy generator
(:func:`draw_photometric_params`, cheap, in loader workers) and the ops run later on a whole batch
of uint8 crops at once on any torch device (:func:`apply_photometric`), each sample with its own
parameters.

Every op computes what ``torchvision.transforms.functional`` computes on a float tensor for the
same input and parameters (``adjust_brightness``, ``adjust_contrast``, ``adjust_saturation``,
``adjust_hue``, ``rgb_to_grayscale``, ``gaussian_blur`` with reflect padding, ``solarize``): the
results agree to float32 rounding (about 1e-6). dinov2 runs these ops on PIL images, which round to
uint8 after every op (and quantise the hue shift to 1/255); this module keeps float32 throughout,
so it differs from dinov2's PIL path by those roundings only (see the tests for the bounds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .recipes import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PARAM_KEYS,
    PhotometricRecipe,
    dinov2_recipes,
    draw_photometric_params,
    draw_photometric_params_many,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PARAM_KEYS",
    "PhotometricRecipe",
    "apply_photometric",
    "dinov2_recipes",
    "draw_photometric_params",
    "draw_photometric_params_many",
    "normalize",
    "stack_photometric_params",
]

# Colour jitter op ids, as torchvision's ColorJitter numbers them in its random order.
_BRIGHTNESS, _CONTRAST, _SATURATION, _HUE = range(4)
# torchvision's (and TensorFlow's) luma weights for RGB -> grayscale on tensors.
_LUMA = (0.2989, 0.587, 0.114)


def stack_photometric_params(
    params: Sequence[Mapping[str, np.ndarray]], device: torch.device | str | None = None
) -> dict[str, torch.Tensor]:
    """Stack per-view parameter dicts into batched tensors, as a default collate would.

    Args:
        params: one dict from :func:`draw_photometric_params` per view.
        device: where the tensors go (default: the CPU).

    Returns:
        A dict with the same keys; each value has a new leading batch axis.

    Raises:
        ConfigError: ``params`` is empty or a dict lacks a key.
    """
    if len(params) == 0:
        raise ConfigError("params must hold at least one parameter dict")
    stacked = {}
    for key in PARAM_KEYS:
        try:
            values = [np.asarray(p[key]) for p in params]
        except KeyError:
            raise ConfigError(f"a photometric parameter dict lacks the key {key!r}") from None
        stacked[key] = torch.from_numpy(np.stack(values)).to(device)
    return stacked


def apply_photometric(
    images: torch.Tensor,
    params: Mapping[str, torch.Tensor],
    recipe: PhotometricRecipe,
) -> torch.Tensor:
    """Apply one kind of view's colour ops to a batch, each sample with its own parameters.

    The ops run in dinov2's order: colour jitter (its four ops in each sample's drawn order),
    grayscale, Gaussian blur, solarisation. The flags are read on the host in one transfer and
    the batch is sorted by them, so each op runs in place on runs of consecutive samples that
    take it (never on samples that do not); the result is returned in the input order.

    Args:
        images: ``(B, 3, H, W)`` uint8 images (scaled to ``[0, 1]``), or floating images already
            in ``[0, 1]``, on any device.
        params: the batched parameters (see :func:`stack_photometric_params`), each with leading
            dimension ``B``; tensors on another device, or NumPy arrays, are moved to the images'.
        recipe: the recipe the parameters were drawn from; its blur kernel size and solarise
            threshold are used, and a zero jitter strength disables that op (as torchvision).

    Returns:
        A new float32 ``(B, 3, H, W)`` tensor in ``[0, 1]`` (up to float rounding of the blur).

    Raises:
        ConfigError: the images are not ``(B, 3, H, W)`` uint8/float, a parameter is missing,
            has the wrong batch size or (``order``) is not a permutation, or the blur kernel is
            too large for the image.
    """
    if not isinstance(recipe, PhotometricRecipe):
        raise ConfigError(f"recipe must be a PhotometricRecipe, got {type(recipe).__name__}")
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ConfigError(f"images must be a (B, 3, H, W) tensor, got {shape}")
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise ConfigError(f"images must be uint8 or floating point, got {images.dtype}")
    batch, _, height, width = images.shape
    p = _batched(params, batch, images.device)
    out = torch.empty(images.shape, dtype=torch.float32, device=images.device)
    if batch == 0:
        return out
    radius = recipe.blur_kernel_size // 2
    if recipe.blur_p > 0 and (radius >= height or radius >= width):
        raise ConfigError(
            f"blur kernel size {recipe.blur_kernel_size} is too large for {height} x {width} "
            "images (reflect padding needs the image larger than half the kernel)"
        )
    flags = (
        torch.cat([p["order"]] + [p[k].view(batch, 1).to(torch.int64) for k in _FLAG_KEYS], dim=1)
        .cpu()
        .numpy()
    )  # the one device -> host transfer
    if not (np.sort(flags[:, :4], axis=1) == np.arange(4)).all():
        raise ConfigError("photometric param 'order' must hold a permutation of 0..3 per image")
    # Sort the batch so that samples taking the same op at each step are contiguous: by jitter,
    # the op order, then grayscale, blur, solarize. Every op then runs in place on slices.
    keys = np.concatenate([flags[:, 4:5], flags[:, :4], flags[:, 5:]], axis=1)
    perm = np.lexsort(keys.T[::-1])
    identity = bool((perm == np.arange(batch)).all())
    sorted_images = images
    if not identity:
        index = torch.from_numpy(perm).to(images.device)
        sorted_images = images.index_select(0, index)
        keys = keys[perm]
        p = {key: value.index_select(0, index) for key, value in p.items()}
    x = out if identity else torch.empty_like(out)
    if images.dtype == torch.uint8:
        torch.div(sorted_images, 255.0, out=x)
    else:
        x.copy_(sorted_images)
    rows = batch if x.device.type != "cpu" else max(1, _CPU_CHUNK_PIXELS // (height * width))
    _apply_sorted(x, p, keys, recipe, rows)
    if not identity:
        torch.index_select(x, 0, torch.from_numpy(np.argsort(perm)).to(x.device), out=out)
    return out


def normalize(
    images: torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    *,
    inplace: bool = False,
) -> torch.Tensor:
    """Normalise images per channel, ``(x - mean) / std``, as torchvision's ``Normalize``.

    uint8 images are read as ``x / 255`` (what ``ToTensor`` gives) and come back as float32,
    equal to ``Normalize(mean, std)(ToTensor()(x))``.

    Args:
        images: float (values in [0, 1]) or uint8 ``(..., C, H, W)`` images
            (``C`` = ``len(mean)``).
        mean: per-channel means.
        std: per-channel standard deviations, all non-zero.
        inplace: overwrite ``images`` instead of allocating the result (float images only).

    Returns:
        The normalised images (``images`` itself when ``inplace``).

    Raises:
        ConfigError: the images are neither floating point nor uint8, ``inplace`` is asked for
            uint8 images, ``mean``/``std`` do not match the channel count, or a standard
            deviation is zero.
    """
    if (
        not isinstance(images, torch.Tensor)
        or not (images.is_floating_point() or images.dtype == torch.uint8)
        or images.ndim < 3
    ):
        raise ConfigError("images must be a floating point or uint8 (..., C, H, W) tensor")
    if inplace and not images.is_floating_point():
        raise ConfigError("inplace normalisation needs float images; uint8 ones become float32")
    channels = images.shape[-3]
    if len(mean) != channels or len(std) != channels:
        raise ConfigError(
            f"mean and std need one value per channel ({channels}), got {len(mean)} and {len(std)}"
        )
    if any(float(s) == 0.0 for s in std):
        raise ConfigError(f"std must not contain zeros, got {tuple(std)!r}")
    if images.dtype == torch.uint8:  # ToTensor's x / 255 first: equal to torchvision's result
        images, inplace = images.to(torch.float32).div_(255), True
    mean_t = torch.as_tensor(mean, dtype=images.dtype, device=images.device).view(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=images.dtype, device=images.device).view(-1, 1, 1)
    out = images.sub_(mean_t) if inplace else images.sub(mean_t)
    return out.div_(std_t)


# --- helpers -------------------------------------------------------------------------------------

_FLAG_KEYS = ("jitter", "grayscale", "blur", "solarize")
# Pixels per image plane processed at once on the CPU: small enough for the temporaries of the
# hue op to stay in L2 cache, large enough to amortise the per-op overhead of eager torch.
_CPU_CHUNK_PIXELS = 1 << 15


def _apply_sorted(
    x: torch.Tensor,
    p: Mapping[str, torch.Tensor],
    keys: np.ndarray,
    recipe: PhotometricRecipe,
    rows: int,
) -> None:
    """Run the recipe in place on float images ``x`` sorted by ``keys``.

    ``keys`` columns: jitter, the four jitter ops in order, grayscale, blur, solarize; rows are
    sorted lexicographically, so each op applies to runs of consecutive samples. Runs are cut
    into pieces of at most ``rows`` samples (cache-sized on the CPU).
    """
    ops = {
        _BRIGHTNESS: (recipe.brightness > 0, _brightness, "brightness"),
        _CONTRAST: (recipe.contrast > 0, _contrast, "contrast"),
        _SATURATION: (recipe.saturation > 0, _saturation, "saturation"),
        _HUE: (recipe.hue > 0, _hue, "hue"),
    }
    for step in range(4):
        for start, stop in _runs(keys[:, : step + 2], keys[:, 0] != 0, rows):
            on, fn, name = ops[int(keys[start, step + 1])]
            if on:
                _inplace(x[start:stop], fn(x[start:stop], p[name][start:stop]))
    for start, stop in _runs(keys[:, :6], keys[:, 5] != 0, rows):
        _grayscale(x[start:stop])
    if recipe.blur_p > 0:
        kernel = _gaussian_kernels(p["sigma"], recipe.blur_kernel_size)
        # On the CPU, shifted multiply-adds on cache-sized pieces beat a depthwise convolution;
        # elsewhere one convolution per run of blurred samples.
        on_cpu = x.device.type == "cpu"
        blur_op = _blur_shifted if on_cpu else _blur
        for start, stop in _runs(keys[:, :7], keys[:, 6] != 0, rows if on_cpu else len(keys)):
            _inplace(x[start:stop], blur_op(x[start:stop], kernel[start:stop]))
    if recipe.solarize_p > 0:
        threshold = _unit_level(recipe.solarize_threshold)
        for start, stop in _runs(keys, keys[:, 7] != 0, rows):
            _inplace(x[start:stop], _solarize(x[start:stop], threshold))


def _runs(keys: np.ndarray, selected: np.ndarray, rows: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of the runs of equal ``keys`` rows where ``selected``, cut to ``rows``."""
    change = np.flatnonzero((keys[1:] != keys[:-1]).any(axis=1)) + 1
    bounds = np.concatenate([[0], change, [len(keys)]])
    runs: list[tuple[int, int]] = []
    for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        if selected[start]:
            runs.extend((i, min(i + rows, stop)) for i in range(start, stop, rows))
    return runs


def _inplace(target: torch.Tensor, result: torch.Tensor) -> None:
    if result.data_ptr() != target.data_ptr():
        target.copy_(result)


def _batched(
    params: Mapping[str, torch.Tensor], batch: int, device: torch.device
) -> dict[str, torch.Tensor]:
    out = {}
    for key in PARAM_KEYS:
        if key not in params:
            raise ConfigError(f"photometric params lack the key {key!r}")
        value = torch.as_tensor(params[key], device=device)
        expected = (batch, 4) if key == "order" else (batch,)
        if value.numel() != math.prod(expected) or (value.ndim and value.shape[0] != batch):
            raise ConfigError(
                f"photometric param {key!r} must have shape {expected} for {batch} images, "
                f"got {tuple(value.shape)}"
            )
        out[key] = value.reshape(expected)
    for key in ("brightness", "contrast", "saturation", "hue", "sigma"):
        out[key] = out[key].to(torch.float32)
    return out


def _unit_level(level: float) -> float:
    """A uint8 level on the ``[0, 1]`` scale, rounded as ``uint8 / 255`` is in float32."""
    return float(np.float32(level) / np.float32(255.0))


def _luma(x: torch.Tensor) -> torch.Tensor:
    """``(n, 1, H, W)`` grayscale of ``(n, 3, H, W)`` images, as torchvision's rgb_to_grayscale."""
    r, g, b = x.unbind(dim=1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def _per_sample(values: torch.Tensor) -> torch.Tensor:
    return values.view(-1, 1, 1, 1)


def _blend_(x: torch.Tensor, other: torch.Tensor | None, ratio: torch.Tensor) -> torch.Tensor:
    """``clamp(ratio * x + (1 - ratio) * other, 0, 1)`` in place, as torchvision's ``_blend``."""
    ratio = _per_sample(ratio)
    x.mul_(ratio)
    if other is not None:
        x.add_((1.0 - ratio) * other)
    return x.clamp_(0.0, 1.0)


def _brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend_(x, None, factor)


def _contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    mean = _luma(x).mean(dim=(1, 2, 3), keepdim=True)
    return _blend_(x, mean, factor)


def _saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend_(x, _luma(x), factor)


def _grayscale(x: torch.Tensor) -> torch.Tensor:
    return x.copy_(_luma(x).expand_as(x))


def _hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue as torchvision's ``adjust_hue`` does on float tensors (rgb -> hsv -> rgb).

    Computed in closed form with few passes instead of torchvision's six-way selection: with
    ``M``/``m`` the largest/smallest channel and ``C = M - m``, the hue sextant position is
    ``6 h = (g - b) / C`` (red largest), ``2 + (b - r) / C`` (green) or ``4 + (r - g) / C``
    (blue), taken modulo 6; after the shift, channel ``c`` is ``M - C * clamp(2 - |k - 2|, 0, 1)``
    with ``k = (6 h + n_c) mod 6`` and ``n`` = 5, 3, 1 for r, g, b. This is the same function as
    torchvision's ``_rgb2hsv`` / ``_hsv2rgb``; results agree to float32 rounding. Masks are float
    (comparisons into bool tensors, ``torch.where`` and ``remainder`` are slow on the CPU).
    """
    tiny = torch.finfo(x.dtype).tiny
    r, g, b = x.unbind(dim=1)
    maxc = torch.maximum(torch.maximum(r, g), b)
    chroma = maxc - torch.minimum(torch.minimum(r, g), b)
    # Grey pixels have chroma 0: every hue numerator below is then 0 and the output is maxc.
    inverse = chroma.clamp_min(tiny).reciprocal_()
    red_max = torch.eq(maxc, r, out=torch.empty_like(maxc))
    green_max = torch.eq(maxc, g, out=torch.empty_like(maxc)).sub_(red_max).clamp_(min=0.0)
    sextant = (r - g).mul_(inverse).add_(4.0)  # blue largest
    sextant.add_((b - r).mul_(inverse).add_(2.0).sub_(sextant).mul_(green_max))
    sextant.add_((g - b).mul_(inverse).sub_(sextant).mul_(red_max))
    # sextant is in [-1, 5); shifted by 6 * [-0.5, 0.5] and 6 it stays positive for the floor.
    sextant.add_(shift.view(-1, 1, 1) * 6.0 + 6.0)
    out = torch.empty_like(x)
    for channel, offset in enumerate((5.0, 3.0, 1.0)):
        k = sextant + offset
        k.sub_(torch.floor(k * (1.0 / 6.0)).mul_(6.0)).sub_(2.0).abs_()
        k.neg_().add_(2.0).clamp_(0.0, 1.0).mul_(chroma)
        torch.sub(maxc, k, out=out[:, channel])
    return out


def _gaussian_kernels(sigma: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, size)`` normalised 1-D Gaussian kernels, computed as torchvision computes them."""
    half = (size - 1) * 0.5
    offsets = torch.linspace(-half, half, steps=size, dtype=torch.float32, device=sigma.device)
    pdf = torch.exp(-0.5 * (offsets / sigma.view(-1, 1)).pow(2))
    return pdf / pdf.sum(dim=1, keepdim=True)


def _blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding: one depthwise pass along W, one along H."""
    n, channels, height, width = x.shape
    size = kernel.shape[1]
    radius = size // 2
    weights = kernel.repeat_interleave(channels, dim=0)  # (n * channels, size)
    planes = F.pad(x.reshape(1, n * channels, height, width), (radius,) * 4, mode="reflect")
    planes = F.conv2d(planes, weights.view(-1, 1, 1, size), groups=n * channels)
    planes = F.conv2d(planes, weights.view(-1, 1, size, 1), groups=n * channels)
    return planes.view(n, channels, height, width)


def _blur_shifted(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """:func:`_blur` as shifted multiply-adds (same sums, same order; faster on the CPU)."""
    n, _, height, width = x.shape
    size = kernel.shape[1]
    radius = size // 2
    padded = F.pad(x, (radius,) * 4, mode="reflect")
    taps = kernel.view(n, 1, 1, size)
    rows = padded[..., 0:width] * taps[..., 0:1]
    for i in range(1, size):
        rows.addcmul_(padded[..., i : i + width], taps[..., i : i + 1])
    taps = kernel.view(n, 1, size, 1)
    out = rows[..., 0:height, :] * taps[..., 0:1, :]
    for i in range(1, size):
        out.addcmul_(rows[..., i : i + height, :], taps[..., i : i + 1, :])
    return out


def _solarize(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """Invert pixels at or above ``threshold`` (exact selection by masks; no ``torch.where``)."""
    above = torch.ge(x, threshold, out=torch.empty_like(x))
    return torch.lerp(x, 1.0 - x, above)  # exact for weights 0 and 1
