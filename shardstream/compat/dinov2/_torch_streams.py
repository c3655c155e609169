"""dinov2's shuffles, computed fast but draw for draw identical to its per-element loops.

dinov2 builds its permutations with one ``torch.randint(low, high, (1,))`` call per element, a
few microseconds each (seconds per ImageNet pass). Two facts make a bulk computation exact:

* torch's CPU generator is a standard MT19937 seeded like ``init_genrand(seed mod 2**32)``, and
  a ``randint`` whose range is below ``2**28`` draws one 32-bit word ``w`` and returns
  ``low + w % range`` (larger ranges draw two words). numpy's ``MT19937``, seeded through the
  legacy ``RandomState`` path, yields the same words, so all draws of a pass come from one
  ``random_raw`` call and the swaps run over a plain list.
* torch's ``randperm(n)`` (``n < (2**32 - 1) // 20``) draws ``w % (n - i)`` for ``i < n - 1``
  and swaps exactly like dinov2's forward Fisher-Yates, which makes one extra draw (``i = n - 1``,
  range 1). One pass is therefore ``randperm(n)`` followed by one single-word draw.

Both facts are read from torch's sources; :func:`fast_paths_verified` re-checks them against the
per-element loops once per process, and every function falls back to the per-element loop when
the check fails or a size is outside the ranges above.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

__all__ = [
    "ONE_WORD_RANGE",
    "RANDPERM_SMALL_N",
    "dinov2_permutation_pass",
    "fast_paths_verified",
    "inside_out_shuffle",
    "skip_permutation_passes",
]

ONE_WORD_RANGE = 1 << 28
"""``torch.randint`` draws a single 32-bit word for ranges below this."""

RANDPERM_SMALL_N = (2**32 - 1) // 20
"""``torch.randperm`` uses its ``random() % (n - i)`` swap loop below this size."""

_SKIP_CHUNK = 1 << 22


def dinov2_permutation_pass(n: int, generator: torch.Generator) -> np.ndarray:
    """One permutation of ``range(n)`` exactly as dinov2's ``_generate_randperm_indices``.

    Args:
        n: permutation size (>= 1).
        generator: the torch generator; it is advanced exactly as dinov2's loop advances it.

    Returns:
        The permutation as an int64 numpy array.
    """
    if n < min(RANDPERM_SMALL_N, ONE_WORD_RANGE) and fast_paths_verified():
        perm = torch.randperm(n, generator=generator).numpy()
        torch.randint(0, 2, (1,), generator=generator)  # dinov2's draw for i = n - 1
        return perm
    return _per_element_permutation(n, generator)


def skip_permutation_passes(n: int, generator: torch.Generator, passes: int) -> None:
    """Advance ``generator`` past ``passes`` calls of :func:`dinov2_permutation_pass`."""
    if passes <= 0:
        return
    if n < ONE_WORD_RANGE and fast_paths_verified():
        remaining = n * passes
        while remaining:
            size = min(remaining, _SKIP_CHUNK)
            torch.randint(0, 2, (size,), generator=generator)
            remaining -= size
        return
    for _ in range(passes):
        _per_element_permutation(n, generator)


def inside_out_shuffle(values: np.ndarray, seed: int) -> np.ndarray:
    """dinov2's ``_shuffle_tensor_slice`` applied to an already strided slice ``values``.

    The generator is seeded with ``seed``; for ``i >= 1`` it draws ``j = randint(0, i + 1)``,
    and the inside-out step ``result[i] = result[j]; result[j] = values[i]`` is the same as
    swapping positions ``i`` and ``j`` of a copy of ``values``.

    Args:
        values: the slice ``perm[start::step][:count]`` (any integer dtype).
        seed: the torch seed of this pass (dinov2's ``_make_seed``).

    Returns:
        The shuffled slice as an int64 numpy array.
    """
    count = len(values)
    if count < ONE_WORD_RANGE and fast_paths_verified():
        words = _mt19937_words(seed, count - 1)
        draws = (words % np.arange(2, count + 1, dtype=np.uint64)).tolist()
        result = values.astype(np.int64).tolist()
        for i, j in enumerate(draws, start=1):
            result[i], result[j] = result[j], result[i]
        return np.asarray(result, dtype=np.int64)
    return _per_element_inside_out(values, seed)


@functools.lru_cache(maxsize=1)
def fast_paths_verified() -> bool:
    """Whether this torch build draws as the module docstring says (checked once, ~1 ms)."""
    for n in (1, 2, 5, 33):
        slow, fast = torch.Generator().manual_seed(17), torch.Generator().manual_seed(17)
        for _ in range(2):
            reference = _per_element_permutation(n, slow)
            perm = torch.randperm(n, generator=fast).numpy()
            torch.randint(0, 2, (1,), generator=fast)
            if not np.array_equal(reference, perm):
                return False
        skipped = torch.Generator().manual_seed(17)
        torch.randint(0, 2, (2 * n,), generator=skipped)
        if not torch.equal(
            torch.randint(0, 1000, (3,), generator=slow),
            torch.randint(0, 1000, (3,), generator=skipped),
        ):
            return False
    for seed in (0, 12345, 2**32 + 7, -3):
        values = np.arange(40)
        reference = _per_element_inside_out(values, seed)
        words = _mt19937_words(seed, 39)
        draws = (words % np.arange(2, 41, dtype=np.uint64)).tolist()
        result = values.tolist()
        for i, j in enumerate(draws, start=1):
            result[i], result[j] = result[j], result[i]
        if reference.tolist() != result:
            return False
    return True


def _mt19937_words(seed: int, count: int) -> np.ndarray:
    """The first ``count`` 32-bit outputs of torch's CPU generator after ``manual_seed(seed)``."""
    _, key, pos, *_ = np.random.RandomState(seed & 0xFFFFFFFF).get_state()
    bit_generator = np.random.MT19937()
    bit_generator.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": pos}}
    return bit_generator.random_raw(max(count, 0))


def _per_element_permutation(n: int, generator: torch.Generator) -> np.ndarray:
    """dinov2's forward Fisher-Yates, one ``torch.randint`` per element (the exact fallback)."""
    perm = list(range(n))
    for i in range(n):
        j = int(torch.randint(i, n, size=(1,), generator=generator).item())
        perm[i], perm[j] = perm[j], perm[i]
    return np.asarray(perm, dtype=np.int64)


def _per_element_inside_out(values: np.ndarray, seed: int) -> np.ndarray:
    """dinov2's inside-out loop, one ``torch.randint`` per element (the exact fallback)."""
    generator = torch.Generator().manual_seed(seed)
    result = values.astype(np.int64).tolist()
    for i in range(1, len(result)):
        j = int(torch.randint(0, i + 1, size=(1,), generator=generator).item())
        result[i], result[j] = result[j], result[i]
    return np.asarray(result, dtype=np.int64)
