"""dinov2's photometric recipe on uint8 views on the CPU, as dinov2's PIL path computes it.

:mod:`shardstream.vision.photometric` runs the colour ops batched in float32 torch, which suits an
accelerator; on a CPU-only machine that costs several milliseconds per view. dinov2 itself runs the
ops on PIL uint8 images, where every op is a cheap table lookup or a short integer pass. This
module applies the very parameters :func:`~shardstream.vision.photometric.draw_photometric_params`
drew to a uint8 ``(H, W, 3)`` RGB view inside a loader worker, with OpenCV (SIMD, releases the GIL)
and 256-entry lookup tables; there is no per-pixel Python and no torch.

Each op computes what ``torchvision.transforms.functional`` computes on a PIL image (dinov2's path)
for the same parameters:

- brightness ``f``: PIL's blend with black, ``trunc(f * v)`` clipped (a lookup table; exact);
- contrast ``f``: PIL's blend with the rounded mean ``m`` of the grayscale image,
  ``trunc(m + f * (v - m))`` clipped (a lookup table; exact given the grayscale);
- saturation ``f``: the blend with the grayscale image, ``floor(f * v + (1 - f) * gray)``
  (``cv2.addWeighted``; float rounding differs from PIL's by one level on well under 1% of
  values);
- hue ``h``: PIL converts to uint8 HSV, adds ``int(h * 255)`` to H with uint8 wrap-around and
  converts back; here OpenCV's uint8 HSV (``COLOR_RGB2HSV_FULL``, H in 1/256 turns, rounded where
  PIL truncates) gets the same shift. Both quantise hue and saturation to 8 bits, differently: a
  mean difference of about 0.4 levels on photos (about 1 on strongly saturated colours), at most
  about a dozen levels on a few pixels (the float torch op differs from PIL by as much);
- grayscale: three equal channels of the luma (OpenCV's 14-bit fixed point weights; PIL's
  16-bit ones round differently on about 0.1% of pixels, by one level);
- Gaussian blur: torchvision's normalised kernel for the drawn sigma, separably, reflect-101
  border, rounded (``cv2.sepFilter2D``; one level on about 1e-5 of values);
- solarize: a lookup table, ``255 - v`` where ``v >= threshold`` (exact).

They run in dinov2's order, the order :func:`~shardstream.vision.photometric.apply_photometric`
uses: colour jitter (its four ops in the drawn ``order``, an op with strength zero in the recipe
skipped as torchvision skips it), grayscale, blur, solarize; only ops whose flags are set run.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from ..errors import ConfigError
from .recipes import PARAM_KEYS, PhotometricRecipe

__all__ = ["apply_photometric_uint8", "apply_photometric_views", "normalize_uint8"]

_RECIPE_FIELDS = (
    "brightness",
    "contrast",
    "saturation",
    "hue",
    "blur_p",
    "blur_kernel_size",
    "solarize_threshold",
)
_BRIGHTNESS, _CONTRAST, _SATURATION, _HUE = range(4)
_LEVELS = np.arange(256, dtype=np.float32)
# cv2.addWeighted rounds to nearest; shifting by just under half a level makes it truncate as
# PIL's blend does (the margin absorbs float32 rounding of values that are whole numbers).
_TRUNCATE = -0.5 + 1e-3
_LAYOUTS = ("NHWC", "NCHW")


def apply_photometric_uint8(
    view: np.ndarray,
    params: Mapping[str, Any],
    recipe: PhotometricRecipe,
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Apply one view's drawn colour ops to a uint8 RGB image, as dinov2's PIL path does.

    Args:
        view: ``(H, W, 3)`` uint8 RGB pixels (any strides; not modified unless it is ``out``).
        params: one view's parameters, as :func:`~shardstream.vision.photometric.draw_photometric_params`
            returns them (0-d arrays or Python scalars; ``order`` four ints).
        recipe: the :class:`~shardstream.vision.recipes.PhotometricRecipe` the parameters
            were drawn from; its jitter strengths (zero skips that op), blur kernel size and
            solarise threshold are used.
        out: where the result goes: a writeable C-contiguous uint8 array of the view's shape;
            may be ``view`` itself to work in place. Default: a new array.

    Returns:
        The ``(H, W, 3)`` uint8 result (``out`` when given).

    Raises:
        ConfigError: ``view`` or ``out`` is not a uint8 ``(H, W, 3)`` array (``out`` also
            C-contiguous and of the view's shape), ``recipe`` lacks a recipe field, ``params``
            lacks a key or its ``order`` is not a permutation of 0..3, or the recipe's blur kernel
            is too large for the view.
    """
    _check_image("view", view)
    settings = _settings(recipe)
    if out is None:
        out = np.empty(view.shape, dtype=np.uint8)
    else:
        _check_image("out", out)
        if out.shape != view.shape or not out.flags.c_contiguous or not out.flags.writeable:
            raise ConfigError(
                f"out must be a writeable C-contiguous uint8 array of the view's shape "
                f"{view.shape}, got shape {out.shape}"
                f"{'' if out.flags.c_contiguous else ' (not C-contiguous)'}"
                f"{'' if out.flags.writeable else ' (read-only)'}"
            )
    _check_blur_size(settings, view.shape[0], view.shape[1])
    # cv2 reads rows with one stride; other layouts (a transposed CHW view) get one copy.
    source = view if _cv2_readable(view) else np.ascontiguousarray(view)
    _apply(source, _read_params(params), settings, out)
    return out


def apply_photometric_views(
    views: np.ndarray,
    params_list: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    recipe: PhotometricRecipe,
    *,
    layout: str | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Apply each view's drawn colour ops to a stack of uint8 views of one kind.

    Channels-last views (``NHWC``) are processed in place in ``out`` one by one. Channels-first
    views (``NCHW``, as torch wants them) are interleaved one view at a time (``cv2.merge`` of the
    three planes), processed, and split back into the output planes (``cv2.split``): two extra
    passes per view (measured 20-50 us per 224 x 224 view on one core, about 20 us per 96 x 96
    view), so producing ``NHWC`` crops upstream and permuting once in torch is cheaper.

    Args:
        views: ``(N, H, W, 3)`` or ``(N, 3, H, W)`` uint8 RGB views.
        params_list: one parameter dict per view (a sequence of ``N`` dicts from
            :func:`~shardstream.vision.photometric.draw_photometric_params`), or one dict of
            stacked parameters whose values have a leading axis of length ``N``.
        recipe: the recipe every view's parameters were drawn from.
        layout: ``"NHWC"`` or ``"NCHW"``; default: inferred from which axis has length 3
            (required when both do).
        out: where the results go: a writeable C-contiguous uint8 array of ``views``' shape;
            may be ``views`` to work in place. Default: a new array.

    Returns:
        The processed views, in the layout of ``views`` (``out`` when given).

    Raises:
        ConfigError: ``views`` is not a 4-D uint8 array with 3 channels in the layout, the layout
            is unknown or ambiguous, ``params_list`` does not hold ``N`` parameter sets, ``out``
            does not match, or a view's parameters or the recipe are invalid (see
            :func:`apply_photometric_uint8`).
    """
    if not isinstance(views, np.ndarray) or views.dtype != np.uint8 or views.ndim != 4:
        raise ConfigError(f"views must be a 4-D uint8 array, got {_describe(views)}")
    layout = _layout(views.shape, layout)
    count = views.shape[0]
    params = _split_params(params_list, count)  # already read: plain Python values
    settings = _settings(recipe)
    if out is None:
        out = np.empty(views.shape, dtype=np.uint8)
    elif (
        not isinstance(out, np.ndarray)
        or out.dtype != np.uint8
        or out.shape != views.shape
        or not out.flags.c_contiguous
        or not out.flags.writeable
    ):
        raise ConfigError(
            f"out must be a writeable C-contiguous uint8 array of shape {views.shape}, "
            f"got {_describe(out)}"
        )
    if count == 0:
        return out
    height, width = views.shape[1:3] if layout == "NHWC" else views.shape[2:4]
    _check_blur_size(settings, height, width)
    if layout == "NHWC":
        for i in range(count):
            view = views[i]
            source = view if _cv2_readable(view) else np.ascontiguousarray(view)
            _apply(source, params[i], settings, out[i])
        return out
    scratch = np.empty((height, width, 3), dtype=np.uint8)
    for i in range(count):
        planes = [np.ascontiguousarray(plane) for plane in views[i]]
        cv2.merge(planes, dst=scratch)
        _apply(scratch, params[i], settings, scratch)
        cv2.split(scratch, list(out[i]))  # writes into out's three contiguous planes
    return out


# --- the ops -------------------------------------------------------------------------------------


class _Settings:
    """The recipe fields the ops read, as plain Python numbers."""

    __slots__ = ("strengths", "blur_p", "kernel_size", "solarize_lut")

    def __init__(self, recipe: Any) -> None:
        self.strengths = tuple(
            float(getattr(recipe, name)) for name in ("brightness", "contrast", "saturation", "hue")
        )
        self.blur_p = float(recipe.blur_p)
        self.kernel_size = int(recipe.blur_kernel_size)
        self.solarize_lut = _solarize_lut(float(recipe.solarize_threshold))


def _apply(source: np.ndarray, p: dict[str, Any], settings: _Settings, out: np.ndarray) -> None:
    """Run the drawn ops from ``source`` into ``out`` (each op after the first works in place)."""
    src = source
    if p["jitter"]:
        for op in p["order"]:
            if settings.strengths[op] <= 0.0:
                continue  # torchvision's ColorJitter leaves an op out when its strength is 0
            if op == _BRIGHTNESS:
                cv2.LUT(src, _blend_lut(0.0, p["brightness"]), dst=out)
            elif op == _CONTRAST:
                gray = cv2.cvtColor(src, cv2.COLOR_RGB2GRAY)
                mean = math.floor(cv2.mean(gray)[0] + 0.5)  # ImageEnhance.Contrast's rounding
                cv2.LUT(src, _blend_lut(float(mean), p["contrast"]), dst=out)
            elif op == _SATURATION:
                gray = cv2.cvtColor(cv2.cvtColor(src, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
                factor = p["saturation"]
                cv2.addWeighted(src, factor, gray, 1.0 - factor, _TRUNCATE, dst=out)
            else:
                _hue(src, p["hue"], out)
            src = out
    if p["grayscale"]:
        cv2.cvtColor(cv2.cvtColor(src, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB, dst=out)
        src = out
    if p["blur"]:
        kernel = _gaussian_kernel(p["sigma"], settings.kernel_size)
        cv2.sepFilter2D(src, -1, kernel, kernel, dst=out, borderType=cv2.BORDER_REFLECT_101)
        src = out
    if p["solarize"]:
        cv2.LUT(src, settings.solarize_lut, dst=out)
        src = out
    if src is not out:
        np.copyto(out, src)


def _blend_lut(base: float, factor: float) -> np.ndarray:
    """PIL's ``Image.blend(constant base, image, factor)`` per level: float32, truncated, clipped."""
    levels = np.float32(base) + np.float32(factor) * (_LEVELS - np.float32(base))
    return np.clip(levels, 0.0, 255.0, out=levels).astype(np.uint8)


def _hue(src: np.ndarray, shift: float, out: np.ndarray) -> None:
    """Rotate the hue in uint8 HSV by ``int(shift * 255)`` steps with wrap-around, as PIL."""
    cv2.cvtColor(src, cv2.COLOR_RGB2HSV_FULL, dst=out)
    steps = int(shift * 255.0) % 256  # torchvision: np.int32(hue * 255).astype(np.uint8)
    if steps:
        hue = out[..., 0]
        np.add(hue, np.uint8(steps), out=hue)  # uint8 arithmetic wraps around
    cv2.cvtColor(out, cv2.COLOR_HSV2RGB_FULL, dst=out)


def _gaussian_kernel(sigma: float, size: int) -> np.ndarray:
    """torchvision's normalised 1-D Gaussian kernel for ``sigma``, computed in float32."""
    pdf = np.exp(np.float32(-0.5) * np.square(_kernel_offsets(size) / np.float32(sigma)))
    return pdf / pdf.sum(dtype=np.float32)


@functools.lru_cache(maxsize=16)
def _kernel_offsets(size: int) -> np.ndarray:
    half = (size - 1) * 0.5
    offsets = np.linspace(-half, half, size, dtype=np.float32)
    offsets.flags.writeable = False
    return offsets


@functools.lru_cache(maxsize=16)
def _solarize_lut(threshold: float) -> np.ndarray:
    """``v`` below ``threshold``, ``255 - v`` at or above it (PIL's ``ImageOps.solarize``)."""
    levels = np.arange(256, dtype=np.uint8)
    lut = np.where(levels < threshold, levels, 255 - levels).astype(np.uint8)
    lut.flags.writeable = False
    return lut


# --- validation ----------------------------------------------------------------------------------


def _settings(recipe: Any) -> _Settings:
    missing = [name for name in _RECIPE_FIELDS if not hasattr(recipe, name)]
    if missing:
        raise ConfigError(
            f"recipe must be a PhotometricRecipe, got {type(recipe).__name__} "
            f"(lacks {', '.join(repr(m) for m in missing)})"
        )
    return _Settings(recipe)


def _read_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """One view's parameters as Python values; checks keys and the op order."""
    if not isinstance(params, Mapping):
        raise ConfigError(f"params must be a mapping of photometric parameters, got {params!r}")
    try:
        p = {key: params[key] for key in PARAM_KEYS}
    except KeyError as error:
        raise ConfigError(f"params lack the key {error.args[0]!r}") from None
    values: dict[str, Any] = {}
    try:
        for key in ("jitter", "grayscale", "blur", "solarize"):
            values[key] = bool(np.asarray(p[key]).reshape(()))
        for key in ("brightness", "contrast", "saturation", "hue", "sigma"):
            values[key] = float(np.asarray(p[key]).reshape(()))
        order = np.asarray(p["order"]).reshape(-1)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"params hold a value that is not one number: {error}") from None
    if order.shape != (4,) or sorted(order.tolist()) != [0, 1, 2, 3]:
        raise ConfigError(f"params 'order' must be a permutation of 0..3, got {order.tolist()}")
    values["order"] = order.tolist()
    return values


def _split_params(
    params_list: Sequence[Mapping[str, Any]] | Mapping[str, Any], count: int
) -> list[dict[str, Any]]:
    """Per-view parameters, read and checked (:func:`_read_params`), from a list of dicts or a
    dict of stacked values (read with one conversion per key, not per view)."""
    if isinstance(params_list, Mapping):
        stacked = {}
        for key in PARAM_KEYS:
            if key not in params_list:
                raise ConfigError(f"params_list lacks the key {key!r}")
            value = np.asarray(params_list[key])
            if value.ndim == 0 or value.shape[0] != count:
                raise ConfigError(
                    f"params_list[{key!r}] must have a leading axis of {count} views, "
                    f"got shape {value.shape}"
                )
            stacked[key] = value
        return _read_stacked(stacked, count)
    if not isinstance(params_list, Sequence) or isinstance(params_list, (str, bytes)):
        raise ConfigError(
            f"params_list must be a sequence of parameter dicts or a dict of stacked parameters, "
            f"got {type(params_list).__name__}"
        )
    if len(params_list) != count:
        raise ConfigError(f"params_list holds {len(params_list)} parameter sets for {count} views")
    return [_read_params(params) for params in params_list]


def _read_stacked(stacked: Mapping[str, np.ndarray], count: int) -> list[dict[str, Any]]:
    """:func:`_read_params` for ``count`` views whose values are stacked along axis 0."""
    try:
        columns: dict[str, list] = {}
        for key in ("jitter", "grayscale", "blur", "solarize"):
            columns[key] = [bool(v) for v in stacked[key].reshape(count).tolist()]
        for key in ("brightness", "contrast", "saturation", "hue", "sigma"):
            columns[key] = [float(v) for v in stacked[key].reshape(count).tolist()]
        orders = stacked["order"].reshape(count, -1)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"params hold a value that is not one number: {error}") from None
    order_lists = orders.tolist()
    for order in order_lists:
        if sorted(order) != [0, 1, 2, 3]:
            raise ConfigError(f"params 'order' must be a permutation of 0..3, got {order}")
    columns["order"] = order_lists
    return [{key: values[i] for key, values in columns.items()} for i in range(count)]


def _check_image(name: str, image: Any) -> None:
    if (
        not isinstance(image, np.ndarray)
        or image.dtype != np.uint8
        or image.ndim != 3
        or image.shape[2] != 3
    ):
        raise ConfigError(f"{name} must be a (H, W, 3) uint8 RGB array, got {_describe(image)}")


def _check_blur_size(settings: _Settings, height: int, width: int) -> None:
    radius = settings.kernel_size // 2
    if settings.blur_p > 0 and (radius >= height or radius >= width):
        raise ConfigError(
            f"blur kernel size {settings.kernel_size} is too large for {height} x {width} views "
            "(reflect padding needs the view larger than half the kernel)"
        )


def _layout(shape: tuple[int, ...], layout: str | None) -> str:
    if layout is None:
        channels_last, channels_first = shape[3] == 3, shape[1] == 3
        if channels_last and channels_first:
            raise ConfigError(
                f"views of shape {shape} could be NHWC or NCHW; pass layout='NHWC' or 'NCHW'"
            )
        if not (channels_last or channels_first):
            raise ConfigError(f"views must be (N, H, W, 3) or (N, 3, H, W), got shape {shape}")
        return "NHWC" if channels_last else "NCHW"
    if layout not in _LAYOUTS:
        raise ConfigError(f"layout must be 'NHWC' or 'NCHW', got {layout!r}")
    if shape[3 if layout == "NHWC" else 1] != 3:
        raise ConfigError(f"views of shape {shape} do not have 3 channels in layout {layout}")
    return layout


def _cv2_readable(image: np.ndarray) -> bool:
    """Whether OpenCV can read ``image`` without a copy: pixels packed, rows at one stride."""
    return (
        image.strides[2] == 1 and image.strides[1] == 3 and image.strides[0] >= 3 * image.shape[1]
    )


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__


def normalize_uint8(
    images: np.ndarray,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``(x / 255 - mean) / std`` of channels-first uint8 images, as float32, by table lookup.

    Each channel plane goes through a 256-entry float32 table (``cv2.LUT``): one read and one
    write per value, cheaper than converting and then normalising.

    Args:
        images: ``(..., 3, H, W)`` uint8 (one image or a stack).
        mean: per-channel mean (RGB, in [0, 1]).
        std: per-channel standard deviation (RGB, in [0, 1]).
        out: a C-contiguous float32 array of ``images``' shape to write into (default: new).

    Returns:
        The normalised float32 images.

    Raises:
        ConfigError: ``images`` is not uint8 with 3 channels on its third-last axis, or ``out``
            does not fit.
    """
    if images.dtype != np.uint8 or images.ndim < 3 or images.shape[-3] != 3:
        raise ConfigError(
            f"images must be uint8 (..., 3, H, W), got {images.dtype} {tuple(images.shape)}"
        )
    if out is None:
        out = np.empty(images.shape, np.float32)
    elif out.shape != images.shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ConfigError(f"out must be C-contiguous float32 of shape {tuple(images.shape)}")
    levels = np.arange(256, dtype=np.float32) / np.float32(255)
    tables = [
        ((levels - np.float32(m)) / np.float32(d)).astype(np.float32) for m, d in zip(mean, std)
    ]
    count = int(np.prod(images.shape[:-3], dtype=np.int64))
    if count == 0 or images.size == 0:
        return out
    # one call per channel: the channel's planes of every image as the rows of a strided matrix
    planes = np.ascontiguousarray(images).reshape(count, 3, -1)
    target = out.reshape(planes.shape)
    for channel in range(3):
        cv2.LUT(planes[:, channel], tables[channel], dst=target[:, channel])
    return out
