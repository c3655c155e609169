"""iBOT block masks: dinov2's ``MaskingGenerator`` and the per-sample masks of the loader's fast path.

:class:`MaskingGenerator` places random rectangles on an ``(H, W)`` patch grid until a target number
of patches is masked, with exactly dinov2's algorithm and draws: fed the same Python ``random``
state, it returns bit-identical masks.

Where randomness comes from (the ``rng`` argument of every function here):

- ``None`` (default): Python's global :mod:`random` module, as dinov2 draws.
- a :class:`random.Random`: used in place of the global module, with the very same calls.
- a :class:`numpy.random.Generator` (the loader's per-sample generator): one draw,
  ``rng.integers(2**63)``, seeds a private :class:`random.Random`, which then makes the same calls
  as above. So a numpy generator gives dinov2's distribution exactly and advances by one draw per
  call, whatever the call masks. :func:`sample_masks` replays those very draws in C where the
  optional extension ``shardstream.vision._masking`` is built (the same masks, ~10x faster).

:func:`sample_masks` is the fast path's per-sample scheme (each global crop masked independently,
drawn in the worker); :func:`masks_upperbound` is its counterpart of dinov2's ``upperbound``.
dinov2's batch-level scheme lives in :mod:`shardstream.vision.collate`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from typing import Any, TypeGuard

import numpy as np

from ..checks import check_int
from ..errors import ConfigError, ConfigTypeError
from ..fastpaths import warn_slow_path

__all__ = ["MaskSampler", "MaskingGenerator", "RandomSource", "masks_upperbound", "sample_masks"]

try:  # the same draws in C (setup.py builds it where there is a compiler)
    from . import _masking
except ImportError:  # pragma: no cover - exercised where the extension is not built
    _masking = None  # type: ignore[assignment]  # mypy cannot type an optional module

RandomSource = np.random.Generator | random.Random | None
"""What an ``rng`` argument accepts: a numpy generator, a ``random.Random``, or ``None`` (the
global :mod:`random` module)."""

ATTEMPTS_PER_BLOCK = 10
"""How many rectangles one block placement tries before giving up (dinov2's constant)."""

MAX_MASK_BYTES = 2**30
"""The most bytes (``n_masks * height * width``) one :func:`sample_masks` call may return."""


class MaskingGenerator:
    """Random block masks on a patch grid, as dinov2's ``MaskingGenerator`` (BEiT-style blocks).

    Calling the generator with a target ``n`` masks blocks one after another: each block has an
    area drawn uniformly in ``[min_num_patches, budget]`` (``budget`` = what is left of ``n``, at
    most ``max_num_patches``) and a log-uniform aspect ratio in ``[min_aspect, max_aspect]``;
    a block is accepted when it lies inside the grid and adds between 1 and ``budget`` new
    patches (up to 10 tries per block). Masking stops at ``n`` or when a block adds nothing, so
    the result never exceeds ``n`` but may fall short.

    Args:
        input_size: the grid, ``(height, width)`` in patches; an int ``n`` means ``(n, n)``.
        num_masking_patches: the default target, used only by ``__repr__`` and as the default of
            ``max_num_patches`` (calls take their target as an argument, as in dinov2).
        min_num_patches: the smallest block area drawn.
        max_num_patches: the largest number of patches one block may add; defaults to
            ``num_masking_patches``. May be a float (dinov2 passes ``0.5 * 14 * 14 = 98.0``).
        min_aspect: the smallest block aspect ratio (height / width).
        max_aspect: the largest; ``None`` or 0 means ``1 / min_aspect``.

    Raises:
        ConfigError: an argument is not a number of its kind or outside its range (the message
            names it); a ``ConfigTypeError`` when it is of the wrong type.

    Attributes:
        height, width: the grid size.
        num_patches: ``height * width``.
        num_masking_patches, min_num_patches, max_num_patches: as resolved from the arguments.
        log_aspect_ratio: ``(ln min_aspect, ln max_aspect)``.
    """

    def __init__(
        self,
        input_size: int | Sequence[int],
        num_masking_patches: float | None = None,
        min_num_patches: float = 4,
        max_num_patches: float | None = None,
        min_aspect: float = 0.3,
        max_aspect: float | None = None,
    ):
        self.height, self.width = _grid(input_size)
        self.num_patches = self.height * self.width
        self.num_masking_patches = _count(num_masking_patches, "num_masking_patches", none=True)
        self.min_num_patches = _count(min_num_patches, "min_num_patches")
        if max_num_patches is None:
            self.max_num_patches = self.num_masking_patches
        else:
            self.max_num_patches = _count(max_num_patches, "max_num_patches")
        min_aspect = _aspect(min_aspect, "min_aspect")
        if max_aspect is None or (_is_real(max_aspect) and max_aspect == 0):
            max_aspect = 1 / min_aspect
        max_aspect = _aspect(max_aspect, "max_aspect")
        self.log_aspect_ratio = (math.log(min_aspect), math.log(max_aspect))

    def __repr__(self) -> str:
        """``Generator(H, W -> [min ~ max], max = num_masking_patches, logmin ~ logmax)``."""
        return (
            f"Generator({self.height}, {self.width} -> [{_int_text(self.min_num_patches)} ~ "
            f"{_int_text(self.max_num_patches)}], max = {_int_text(self.num_masking_patches)}, "
            f"{self.log_aspect_ratio[0]:.3f} ~ {self.log_aspect_ratio[1]:.3f})"
        )

    def get_shape(self) -> tuple[int, int]:
        """The grid size.

        Returns:
            ``(height, width)`` in patches.
        """
        return self.height, self.width

    def __call__(self, num_masking_patches: float = 0, *, rng: RandomSource = None) -> np.ndarray:
        """A fresh mask with at most ``num_masking_patches`` masked patches.

        Args:
            num_masking_patches: the target number of masked patches; 0 returns an all-False mask
                without drawing anything.
            rng: where randomness comes from (see the module docstring); ``None`` draws from the
                global :mod:`random` module as dinov2 does.

        Returns:
            A bool array of shape ``(height, width)``, True where a patch is masked.

        Raises:
            ConfigError: ``num_masking_patches`` is negative or not a number, or ``rng`` is of an
                unsupported type.
            ConfigTypeError: a positive target was asked of a generator built with neither
                ``num_masking_patches`` nor ``max_num_patches`` (dinov2 raises ``TypeError``).
        """
        target = _count(num_masking_patches, "num_masking_patches")
        mask = np.zeros((self.height, self.width), dtype=bool)
        if target > 0:
            self._fill(mask, target, _random_source(rng))
        return mask

    def _fill(self, mask: np.ndarray, target: float, draws: Any) -> None:
        if self.max_num_patches is None:
            raise ConfigTypeError(
                "MaskingGenerator: cannot mask a positive number of patches without "
                "max_num_patches; pass num_masking_patches or max_num_patches to the constructor"
            )
        count = 0
        while count < target:
            added = self._place_block(mask, min(target - count, self.max_num_patches), draws)
            if added == 0:
                return
            count += added

    def _place_block(self, mask: np.ndarray, budget: float, draws: Any) -> int:
        """Mask one rectangle adding 1..budget new patches; the number added (0 after 10 tries)."""
        height, width = self.height, self.width
        log_low, log_high = self.log_aspect_ratio
        for _ in range(ATTEMPTS_PER_BLOCK):
            area = draws.uniform(self.min_num_patches, budget)
            aspect = math.exp(draws.uniform(log_low, log_high))
            h = round(math.sqrt(area * aspect))
            w = round(math.sqrt(area / aspect))
            if w < width and h < height:
                top = draws.randint(0, height - h)
                left = draws.randint(0, width - w)
                block = mask[top : top + h, left : left + w]
                added = h * w - int(np.count_nonzero(block))
                if 0 < added <= budget:
                    block[...] = True
                    return added
        return 0


def sample_masks(
    mask_generator: MaskingGenerator,
    n_masks: int,
    mask_ratio_tuple: tuple[float, float],
    mask_probability: float,
    rng: RandomSource = None,
    *,
    n_tokens: int | None = None,
) -> np.ndarray:
    """The iBOT masks of one sample's global crops, drawn independently per crop (the fast path).

    For each of the ``n_masks`` crops: with probability ``mask_probability`` (one
    ``random() < mask_probability`` draw) it is masked with target ``int(n_tokens * r)``,
    ``r = uniform(*mask_ratio_tuple)``; otherwise its mask is all False. Draw order: crop 0's
    coin, its ratio and blocks, then crop 1's, and so on.

    Relation to dinov2's batch scheme (:func:`~shardstream.vision.collate.stratified_masks`): there,
    exactly ``int(B * mask_probability)`` of the ``B`` global crops of a batch are masked, their
    ratios stratified over ``linspace(lo, hi, n + 1)`` bins, then shuffled over the crops. Per
    crop, both schemes give the same marginal law when ``B * mask_probability`` is an integer
    (masked with probability ``mask_probability``; ratio uniform on ``[lo, hi]``, a mixture of
    uniform bins of equal width). They differ only across crops: here the number of masked crops
    per batch is binomial rather than fixed, and ratios are independent rather than stratified.

    Args:
        mask_generator: the generator (its grid sets the mask shape).
        n_masks: how many masks (global crops), ``>= 0``.
        mask_ratio_tuple: ``(lo, hi)``, ``0 <= lo <= hi <= 1``: the range of mask ratios.
        mask_probability: the probability that a crop is masked, in ``[0, 1]``.
        rng: where randomness comes from (see the module docstring).
        n_tokens: the number of patch tokens the ratio refers to; defaults to the grid's
            ``height * width``.

    Returns:
        A bool array of shape ``(n_masks, height, width)``.

    Raises:
        ConfigError: an argument is out of range or of the wrong type (the message names it),
            or the masks would take more than :data:`MAX_MASK_BYTES`.
    """
    sampler = MaskSampler(
        mask_generator=mask_generator,
        n_masks=n_masks,
        mask_ratio_tuple=mask_ratio_tuple,
        mask_probability=mask_probability,
        n_tokens=n_tokens,
    )
    return sampler.draw(rng)[0]


class MaskSampler:
    """:func:`sample_masks` with its settings checked once, for a loader's per-sample calls.

    Args:
        mask_generator: the generator (its grid sets the mask shape).
        n_masks: how many masks (global crops) per sample, ``>= 0``.
        mask_ratio_tuple: ``(lo, hi)``, ``0 <= lo <= hi <= 1``: the range of mask ratios.
        mask_probability: the probability that a crop is masked, in ``[0, 1]``.
        n_tokens: the number of patch tokens the ratio refers to; defaults to the grid's
            ``height * width``.

    Raises:
        ConfigError: an argument is out of range or of the wrong type (the message names it),
            or the masks would take more than :data:`MAX_MASK_BYTES`.
    """

    def __init__(
        self,
        *,
        mask_generator: MaskingGenerator,
        n_masks: int,
        mask_ratio_tuple: tuple[float, float],
        mask_probability: float,
        n_tokens: int | None = None,
    ) -> None:
        if not isinstance(mask_generator, MaskingGenerator):
            raise ConfigTypeError(
                f"mask_generator must be a MaskingGenerator, got {type(mask_generator).__name__}"
            )
        self.mask_generator = mask_generator
        self.n_masks = _index(n_masks, "n_masks")
        self.low, self.high = check_mask_ratio_tuple(mask_ratio_tuple)
        self.mask_probability = check_mask_probability(mask_probability)
        self.n_tokens = _tokens(n_tokens, mask_generator)
        self.shape = (self.n_masks, *mask_generator.get_shape())
        if max(self.n_masks, 1) * self.shape[1] * self.shape[2] > MAX_MASK_BYTES:
            raise ConfigError(
                f"{self.n_masks} masks of {self.shape[1]} x {self.shape[2]} patches would take "
                f"more than MAX_MASK_BYTES = {MAX_MASK_BYTES} bytes"
            )
        self._native = _native_draws(mask_generator, self.n_tokens)

    def draw(self, rng: RandomSource = None) -> tuple[np.ndarray, int]:
        """Draw one sample's masks, as :func:`sample_masks` does.

        Args:
            rng: where randomness comes from (see the module docstring).

        Returns:
            ``(masks, upperbound)``: bool masks of shape ``(n_masks, height, width)``, and
            :func:`masks_upperbound` of them.

        Raises:
            ConfigError: ``rng`` is of an unsupported type.
            ConfigTypeError: a crop is to be masked but the generator has no
                ``max_num_patches``.
        """
        masks = np.zeros(self.shape, dtype=bool)
        generator, low, high, n_tokens = self.mask_generator, self.low, self.high, self.n_tokens
        if self._native and isinstance(rng, np.random.Generator):
            # the same draws in C: random.Random(seed) replayed by shardstream.vision._masking
            low_aspect, high_aspect = generator.log_aspect_ratio
            masked = _masking.sample_masks(
                masks, self.n_masks, generator.height, generator.width, int(rng.integers(2**63)),
                self.mask_probability, low, high, n_tokens, float(generator.min_num_patches),
                float(generator.max_num_patches), low_aspect, high_aspect,
            )  # fmt: skip
            return masks, masked * int(n_tokens * high)
        draws = _random_source(rng)
        for i in range(self.n_masks):
            if draws.random() < self.mask_probability:
                target = int(n_tokens * draws.uniform(low, high))
                if target > 0:
                    generator._fill(masks[i], target, draws)
        return masks, masks_upperbound(masks, (low, high), n_tokens)


def masks_upperbound(
    masks: np.ndarray, mask_ratio_tuple: tuple[float, float], n_tokens: int | None = None
) -> int:
    """dinov2's ``upperbound`` for masks drawn by :func:`sample_masks`.

    Each crop with at least one masked patch counts ``int(n_tokens * hi)``, the largest target it
    can have drawn: what dinov2 counts for a crop whose ratio bin is all of ``[lo, hi]`` (its
    scheme with a single masked crop). The result is never below the number of masked patches,
    which is what dinov2's training step needs from it (a buffer size).

    Args:
        masks: bool masks, any shape ``(..., height, width)``; one mask per ``(height, width)``.
        mask_ratio_tuple: the ``(lo, hi)`` the masks were drawn with.
        n_tokens: as given to :func:`sample_masks`; defaults to ``height * width``.

    Returns:
        The bound, a Python int.

    Raises:
        ConfigError: ``masks`` has fewer than 2 dimensions, or an argument is out of range.
    """
    masks = np.asarray(masks)
    if masks.ndim < 2:
        raise ConfigError(f"masks must have shape (..., height, width), got shape {masks.shape}")
    _, high = check_mask_ratio_tuple(mask_ratio_tuple)
    if n_tokens is None:
        n_tokens = masks.shape[-1] * masks.shape[-2]
    n_tokens = _index(n_tokens, "n_tokens", low=1)
    masked = int(np.count_nonzero(masks.reshape(-1, masks.shape[-2] * masks.shape[-1]).any(-1)))
    return masked * int(n_tokens * high)


def check_mask_ratio_tuple(value: object) -> tuple[float, float]:
    """``mask_ratio_tuple`` as ``(lo, hi)`` floats.

    Args:
        value: the argument as given.

    Returns:
        ``(lo, hi)``.

    Raises:
        ConfigError: not a pair of numbers with ``0 <= lo <= hi <= 1``.
    """
    try:
        if not isinstance(value, Iterable):
            raise TypeError
        low, high = value
        if not (_is_real(low) and _is_real(high)):
            raise TypeError
    except (TypeError, ValueError):
        raise ConfigError(
            f"mask_ratio_tuple must be a pair (lo, hi) of numbers, got {value!r}"
        ) from None
    if not 0 <= low <= high <= 1:
        raise ConfigError(f"mask_ratio_tuple must satisfy 0 <= lo <= hi <= 1, got {value!r}")
    return float(low), float(high)


def check_mask_probability(value: object) -> float:
    """``mask_probability`` as a float in ``[0, 1]``.

    Args:
        value: the argument as given.

    Returns:
        The probability.

    Raises:
        ConfigError: not a number in ``[0, 1]``.
    """
    if not _is_real(value) or not 0 <= value <= 1:
        raise ConfigError(f"mask_probability must be a number in [0, 1], got {value!r}")
    return float(value)


# --- helpers ---------------------------------------------------------------------------------


def _native_draws(mask_generator: MaskingGenerator, n_tokens: int) -> bool:
    """Whether ``_masking`` can replay these draws: it is built, and every number is a Python
    int or float that a C double holds exactly (a NumPy float32 count would make NumPy's own
    arithmetic, which the C code does not copy)."""
    if _masking is None:
        warn_slow_path("_masking")
        return False
    numbers = (mask_generator.min_num_patches, mask_generator.max_num_patches, n_tokens)
    return all(type(value) in (int, float) and abs(value) < 2**53 for value in numbers) and (
        n_tokens < 2**31 and mask_generator.height * mask_generator.width < 2**31
    )


def _random_source(rng: object) -> Any:
    """An object with dinov2's draw methods (``random``, ``uniform``, ``randint``, ``shuffle``)."""
    if rng is None:
        return random
    if isinstance(rng, random.Random):
        return rng
    if isinstance(rng, np.random.Generator):
        return random.Random(int(rng.integers(2**63)))
    raise ConfigTypeError(
        f"rng must be a numpy.random.Generator, a random.Random or None, got {type(rng).__name__}"
    )


def _tokens(n_tokens: object, mask_generator: MaskingGenerator) -> int:
    if n_tokens is None:
        height, width = mask_generator.get_shape()
        return height * width
    return _index(n_tokens, "n_tokens", low=1)


def _is_real(value: object) -> TypeGuard[int | float | np.integer | np.floating]:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, (bool, np.bool_))
        and not math.isnan(value)
    )


def _index(value: object, name: str, low: int = 0) -> int:
    return check_int(value, name, low=low)


def _count(value: object, name: str, none: bool = False) -> Any:
    """A patch count (int or float, finite, >= 0), kept as given as dinov2 does."""
    if value is None and none:
        return None
    if not _is_real(value) or not math.isfinite(value) or value < 0:
        kind = "None or " if none else ""
        raise ConfigError(f"{name} must be {kind}a finite number >= 0, got {value!r}")
    return value


def _aspect(value: object, name: str) -> float:
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _grid(input_size: object) -> tuple[int, int]:
    if isinstance(input_size, (int, np.integer)) and not isinstance(input_size, (bool, np.bool_)):
        input_size = (input_size, input_size)
    if not isinstance(input_size, Sequence) or len(input_size) != 2:
        raise ConfigError(
            f"input_size must be an int or a (height, width) pair, got {input_size!r}"
        )
    height = _index(input_size[0], "input_size height", low=1)
    width = _index(input_size[1], "input_size width", low=1)
    return height, width


def _int_text(value: float | None) -> str:
    """A count as dinov2's ``%d`` prints it (``None`` as ``None``, where dinov2 would fail)."""
    return "None" if value is None else str(int(value))
