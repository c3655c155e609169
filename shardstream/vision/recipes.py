"""What a view's colour augmentation is and how its random parameters are drawn (no torch).

:class:`PhotometricRecipe` says which ops a kind of view gets and with what strengths and
probabilities (:func:`dinov2_recipes`: dinov2's three kinds); :func:`draw_photometric_params` draws
one view's parameters as torchvision's transforms would, on a NumPy generator, so loader workers
can draw them without torch. The ops themselves are in :mod:`~shardstream.vision.photometric`
(batched, torch, any device) and :mod:`~shardstream.vision.colour_cpu` (uint8, OpenCV).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..checks import check_int
from ..errors import ConfigError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PARAM_KEYS",
    "PhotometricDraws",
    "PhotometricRecipe",
    "dinov2_recipes",
    "draw_photometric_params",
    "draw_photometric_params_many",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
"""Per-channel mean (RGB) that dinov2 and timm normalise ImageNet images with."""

IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
"""Per-channel standard deviation (RGB) that dinov2 and timm normalise ImageNet images with."""

PARAM_KEYS: tuple[str, ...] = (
    "jitter",
    "order",
    "brightness",
    "contrast",
    "saturation",
    "hue",
    "grayscale",
    "blur",
    "sigma",
    "solarize",
)
"""The keys of the parameter dicts of :func:`draw_photometric_params`, in drawing order."""


@dataclass(frozen=True, kw_only=True)
class PhotometricRecipe:
    """What one kind of view gets: colour jitter, grayscale, Gaussian blur and solarisation.

    The defaults are dinov2's ``color_jittering`` (jitter and grayscale, no blur, no solarise).
    Probabilities are the *effective* rates an op is applied with; see :func:`dinov2_recipes` for
    dinov2's inverted blur probabilities.

    Attributes:
        jitter_p: probability of applying colour jitter (torchvision ``RandomApply``).
        brightness: jitter strength; the factor is uniform in ``[max(0, 1 - b), 1 + b]``.
        contrast: as ``brightness``, for the contrast factor.
        saturation: as ``brightness``, for the saturation factor.
        hue: the hue shift is uniform in ``[-hue, hue]``; at most 0.5.
        grayscale_p: probability of converting to grayscale (three equal channels).
        blur_p: probability of a Gaussian blur.
        blur_sigma: ``(min, max)`` of the blur's standard deviation, drawn uniformly.
        blur_kernel_size: the blur kernel's side in pixels (odd, reflect-padded as torchvision).
        solarize_p: probability of solarising.
        solarize_threshold: pixels at or above this uint8 level are inverted (dinov2: 128).

    Raises:
        ConfigError: a probability is outside ``[0, 1]``, a strength is negative (hue above 0.5),
            the sigma range is not ``0 < min <= max``, the kernel size is not a positive odd int,
            or the threshold is outside ``[0, 255]``.
    """

    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel_size: int = 9
    solarize_p: float = 0.0
    solarize_threshold: int = 128

    def __post_init__(self) -> None:
        for name in ("jitter_p", "grayscale_p", "blur_p", "solarize_p"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"PhotometricRecipe.{name} must be in [0, 1], got {value!r}")
        for name in ("brightness", "contrast", "saturation", "hue"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value < math.inf:
                raise ConfigError(f"PhotometricRecipe.{name} must be >= 0, got {value!r}")
        if self.hue > 0.5:
            raise ConfigError(f"PhotometricRecipe.hue must be at most 0.5, got {self.hue!r}")
        sigma = self.blur_sigma
        if (
            not isinstance(sigma, Sequence)
            or len(sigma) != 2
            or not all(_is_number(v) for v in sigma)
            or not 0.0 < sigma[0] <= sigma[1] < math.inf
        ):
            raise ConfigError(
                f"PhotometricRecipe.blur_sigma must be (min, max) with 0 < min <= max, got {sigma!r}"
            )
        size = self.blur_kernel_size
        if not _is_int(size) or size < 1 or size % 2 == 0:
            raise ConfigError(
                f"PhotometricRecipe.blur_kernel_size must be a positive odd int, got {size!r}"
            )
        threshold = self.solarize_threshold
        if not _is_number(threshold) or not 0 <= threshold <= 255:
            raise ConfigError(
                f"PhotometricRecipe.solarize_threshold must be in [0, 255], got {threshold!r}"
            )


def dinov2_recipes(blur: str = "dinov2") -> dict[str, PhotometricRecipe]:
    """dinov2's photometric recipe for each kind of view.

    Every view gets jitter (p 0.8) and grayscale (p 0.2); global view 2 is also solarised (p 0.2).
    dinov2's ``GaussianBlur(p)`` blurs with probability ``1 - p`` (it hands ``1 - p`` to
    ``RandomApply``), so the shipped code, with which the published models were trained, never
    blurs global view 1, blurs global view 2 90% of the time and local views 50%. Its documented
    intent is the reverse for the global views.

    Args:
        blur: ``"dinov2"`` for the shipped (inverted) blur probabilities (global 1: 0, global 2:
            0.9, local: 0.5), or ``"documented"`` for the documented ones (1.0, 0.1, 0.5).

    Returns:
        ``{"global_1": ..., "global_2": ..., "local": ...}``.

    Raises:
        ConfigError: ``blur`` is neither ``"dinov2"`` nor ``"documented"``.
    """
    if blur == "dinov2":
        global_1, global_2, local = 0.0, 0.9, 0.5
    elif blur == "documented":
        global_1, global_2, local = 1.0, 0.1, 0.5
    else:
        raise ConfigError(f"blur must be 'dinov2' or 'documented', got {blur!r}")
    return {
        "global_1": PhotometricRecipe(blur_p=global_1),
        "global_2": PhotometricRecipe(blur_p=global_2, solarize_p=0.2),
        "local": PhotometricRecipe(blur_p=local),
    }


def draw_photometric_params(
    recipe: PhotometricRecipe, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Draw the random parameters of one view, as torchvision's transforms draw them.

    Every call makes the same draws in the same order whatever is applied, so a stream of views
    from one generator is reproducible. Factors are drawn even for ops that end up not applied.

    Args:
        recipe: the view's recipe.
        rng: the generator every draw comes from.

    Returns:
        A dict with the keys of :data:`PARAM_KEYS`: ``jitter``, ``grayscale``, ``blur`` and
        ``solarize`` (0-d bool: whether the op is applied), ``order`` (int64 ``[4]``: the colour
        jitter ops in the order they are applied, 0 brightness, 1 contrast, 2 saturation, 3 hue,
        as torchvision's ``torch.randperm(4)``), ``brightness``, ``contrast``, ``saturation``
        (0-d float32 factors), ``hue`` (0-d float32 shift) and ``sigma`` (0-d float32 blur
        standard deviation).

    Raises:
        ConfigError: ``recipe`` is not a :class:`PhotometricRecipe`.
    """
    if not isinstance(recipe, PhotometricRecipe):
        raise ConfigError(f"recipe must be a PhotometricRecipe, got {type(recipe).__name__}")
    return {
        "jitter": np.array(rng.random() < recipe.jitter_p),
        "order": rng.permutation(4).astype(np.int64),
        "brightness": _factor(rng, recipe.brightness),
        "contrast": _factor(rng, recipe.contrast),
        "saturation": _factor(rng, recipe.saturation),
        "hue": np.array(rng.uniform(-recipe.hue, recipe.hue), dtype=np.float32),
        "grayscale": np.array(rng.random() < recipe.grayscale_p),
        "blur": np.array(rng.random() < recipe.blur_p),
        "sigma": np.array(rng.uniform(*recipe.blur_sigma), dtype=np.float32),
        "solarize": np.array(rng.random() < recipe.solarize_p),
    }


def draw_photometric_params_many(
    recipe: PhotometricRecipe, rng: np.random.Generator, count: int
) -> dict[str, np.ndarray]:
    """Draw the parameters of ``count`` views of one recipe at once (:class:`PhotometricDraws`).

    Each view's parameters follow the same law as :func:`draw_photometric_params` (the same
    ranges, probabilities and a uniform random op order), but the draws are made per key for all
    views together, so the values differ from ``count`` calls of that function on the same
    generator.

    Args:
        recipe: the views' recipe.
        rng: the generator every draw comes from.
        count: how many views (``>= 0``).

    Returns:
        A dict with the keys of :data:`PARAM_KEYS`, each value with a leading axis of ``count``
        (``order`` is ``(count, 4)``), dtypes as :func:`draw_photometric_params` gives them.

    Raises:
        ConfigError: ``recipe`` is not a :class:`PhotometricRecipe` or ``count`` is negative.
    """
    if not isinstance(recipe, PhotometricRecipe):
        raise ConfigError(f"recipe must be a PhotometricRecipe, got {type(recipe).__name__}")
    count = check_int(count, "count", low=0, message="count must be an int >= 0, got {value!r}")
    return PhotometricDraws(recipes=[recipe] * count).draw(rng)


class PhotometricDraws:
    """Draws the parameters of a fixed list of views, one recipe each, in one go.

    A sample's views (dinov2: two global views of different recipes, then the local views) get
    their parameters from one block of uniform draws and one batch of permutations, instead of
    ~10 generator calls per view: the same law per view as :func:`draw_photometric_params`,
    different values from the same generator.

    Args:
        recipes: one recipe per view, in view order.

    Raises:
        ConfigError: an entry is not a :class:`PhotometricRecipe`.
    """

    def __init__(self, *, recipes: Sequence[PhotometricRecipe]) -> None:
        for recipe in recipes:
            if not isinstance(recipe, PhotometricRecipe):
                raise ConfigError(
                    f"recipes must be PhotometricRecipes, got {type(recipe).__name__}"
                )
        self.count = len(recipes)

        def column(value) -> np.ndarray:
            return np.array([value(recipe) for recipe in recipes], dtype=np.float64)

        self._low = {
            key: column(lambda r, key=key: max(0.0, 1.0 - getattr(r, key)))
            for key in ("brightness", "contrast", "saturation")
        }
        self._span = {
            key: column(lambda r, key=key: 1.0 + getattr(r, key)) - self._low[key]
            for key in ("brightness", "contrast", "saturation")
        }
        self._hue = column(lambda r: r.hue)
        self._sigma_low = column(lambda r: r.blur_sigma[0])
        self._sigma_span = column(lambda r: r.blur_sigma[1]) - self._sigma_low
        self._p = {
            key: column(lambda r, attr=attr: getattr(r, attr))
            for key, attr in (
                ("jitter", "jitter_p"),
                ("grayscale", "grayscale_p"),
                ("blur", "blur_p"),
                ("solarize", "solarize_p"),
            )
        }
        self._orders = np.tile(np.arange(4, dtype=np.int64), (self.count, 1))

    def draw(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Draw every view's parameters.

        Args:
            rng: the generator: one ``random((9, count))`` block, then one ``permuted`` of the
                jitter op orders.

        Returns:
            A dict with the keys of :data:`PARAM_KEYS`, each value with a leading axis of
            ``count`` (``order`` is ``(count, 4)``), dtypes as :func:`draw_photometric_params`
            gives them.
        """
        return self.values(*self.draw_uniforms(rng))

    def draw_uniforms(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`draw`'s generator calls alone, in its order (the generator ends in the same
        state): the float64 uniforms ``(9, count)`` and the int64 op orders ``(count, 4)``
        that :meth:`values` turns into the parameters."""
        return rng.random((9, self.count)), rng.permuted(self._orders, axis=1)

    def values(self, u: np.ndarray, order: np.ndarray) -> dict[str, np.ndarray]:
        """The parameters of :meth:`draw` from its draws, for one sample or many at once.

        The arithmetic is elementwise, so stacked samples (``u`` ``(B, 9, count)``, ``order``
        ``(B, count, 4)``) get exactly the values each sample gets on its own, with a leading
        batch axis.

        Args:
            u: the uniforms, ``(..., 9, count)`` float64.
            order: the op orders, ``(..., count, 4)`` int64 (passed through).

        Returns:
            :meth:`draw`'s dict, each value with the leading axes of ``u``.
        """
        low, span, p = self._low, self._span, self._p
        return {
            "jitter": u[..., 0, :] < p["jitter"],
            "order": order,
            "brightness": (low["brightness"] + span["brightness"] * u[..., 1, :]).astype(
                np.float32
            ),
            "contrast": (low["contrast"] + span["contrast"] * u[..., 2, :]).astype(np.float32),
            "saturation": (low["saturation"] + span["saturation"] * u[..., 3, :]).astype(
                np.float32
            ),
            "hue": ((2 * u[..., 4, :] - 1) * self._hue).astype(np.float32),
            "grayscale": u[..., 5, :] < p["grayscale"],
            "blur": u[..., 6, :] < p["blur"],
            "sigma": (self._sigma_low + self._sigma_span * u[..., 7, :]).astype(np.float32),
            "solarize": u[..., 8, :] < p["solarize"],
        }


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _factor(rng: np.random.Generator, strength: float) -> np.ndarray:
    """A jitter factor uniform in ``[max(0, 1 - strength), 1 + strength]`` (torchvision's range)."""
    return np.array(rng.uniform(max(0.0, 1.0 - strength), 1.0 + strength), dtype=np.float32)
