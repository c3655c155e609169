"""The shard-block shuffle: an epoch order for remote sets whose cache is smaller than the set.

**Algorithm** ("shard-block shuffle", in the family of MosaicML Streaming's block shuffles; WebDataset
approximates it with shard shuffling plus a sample buffer): from ``(seed, epoch)``

1. permute the shards;
2. cut the permuted shards into blocks of ``k`` consecutive shards (``shards_per_block``);
3. permute the samples of each block uniformly; the epoch is the blocks one after another.

The order depends on ``(seed, epoch, shard sizes, k)`` only, never on the world size or the
workers (ranks stride over it as over any epoch order, so a run resumes exactly from a cursor on
any world size). Any stretch of ``m`` consecutive positions touches the shards of at most
``ceil(m / smallest block) + 1`` blocks, so with ``k`` shards per block a rank's next stretch
needs about ``k`` shards at a time (``2k`` at a block boundary): a cache of ``2k`` shards plus
the prefetch suffices, each shard is downloaded once per epoch.

**Quality** (:func:`shuffle_quality`): a uniform permutation has Spearman correlation 0 between
position and index and a mean displacement of ``n / 3`` (normalised: 1.0). The shard-block
shuffle's normalised mean displacement is close to 1 (blocks land anywhere), while within a
block samples mix only with the ``k - 1`` other shards' samples: the statistic that matters is
the block size. ``benchmarks/bench_remote.py`` reports both for each loader it compares. When the
cache holds the whole set, the full permutation (the Loader's default) is the better choice.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .samplers.seeds import epoch_seed

__all__ = ["shard_block_order", "shuffle_quality"]


def shard_block_order(
    shard_starts: np.ndarray, *, seed: int, epoch: int, shards_per_block: int
) -> np.ndarray:
    """The shard-block shuffle of one epoch (see the module docstring).

    Args:
        shard_starts: global index of each shard's first sample, plus the total at the end
            (``ShardedReader.starts``).
        seed: the run's seed, in ``[0, 2**32)``.
        epoch: the epoch, in ``[0, 2**32)``.
        shards_per_block: shards whose samples are mixed together (``k >= 1``).

    Returns:
        An int64 permutation of ``range(total)``.

    Raises:
        ConfigError: ``shards_per_block < 1`` or ``shard_starts`` not non-decreasing from 0.
    """
    if isinstance(shards_per_block, bool) or not isinstance(shards_per_block, (int, np.integer)):
        raise ConfigError(f"shards_per_block must be an integer, got {shards_per_block!r}")
    if shards_per_block < 1:
        raise ConfigError(f"shards_per_block must be >= 1, got {shards_per_block}")
    starts = np.asarray(shard_starts, dtype=np.int64)
    if starts.ndim != 1 or not len(starts) or starts[0] != 0 or np.any(np.diff(starts) < 0):
        raise ConfigError("shard_starts must start at 0 and never decrease")
    rng = np.random.Generator(np.random.PCG64(epoch_seed(seed, epoch)))
    shards = len(starts) - 1
    permuted = rng.permutation(shards)
    parts = []
    for first in range(0, shards, shards_per_block):
        block = permuted[first : first + shards_per_block]
        members = np.concatenate(
            [np.arange(starts[s], starts[s + 1], dtype=np.int64) for s in block]
        )
        parts.append(rng.permutation(members))
    if not parts:
        return np.empty(0, dtype=np.int64)
    return np.concatenate(parts).astype(np.int64, copy=False)


def shuffle_quality(order: np.ndarray) -> dict[str, float]:
    """How far an epoch order is from sequential, next to a uniform permutation.

    Args:
        order: a permutation of ``range(n)`` (dataset index at each position).

    Returns:
        ``{"spearman": rank correlation of position and index (uniform: ~0, sequential: 1),
        "displacement": mean |position - index| / (n / 3) (uniform: ~1, sequential: 0)}``.
    """
    order = np.asarray(order, dtype=np.float64)
    n = len(order)
    if n < 2:
        return {"spearman": 1.0, "displacement": 0.0}
    position = np.arange(n, dtype=np.float64)
    spearman = float(np.corrcoef(position, order)[0, 1])  # a permutation is its own ranks
    displacement = float(np.abs(position - order).mean() / (n / 3))
    return {"spearman": spearman, "displacement": displacement}
