"""dinov2's samplers (``EpochSampler``, ``InfiniteSampler``, ``ShardedInfiniteSampler``).

Each yields the same index sequence as dinov2's sampler of the same name for the same arguments
(seed, rank, world size), quirks included; the quirks are listed in the class docstrings. What
differs: arguments are validated with typed exceptions instead of ``assert`` (and arguments
under which dinov2 would loop forever without yielding are refused), indices are yielded as
Python ints, the shuffles are computed in bulk (see ``_torch_streams``), and every sampler has
``state_dict()`` / ``load_state_dict()``.

``start`` and ``step`` default to the global rank and world size of the initialised
``torch.distributed`` group (0 and 1 without one); a rank takes every ``step``-th element of an
index sequence, beginning at position ``start``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from ...errors import ConfigError, StateMismatchError
from ...order.samplers._common import (
    CHUNK,
    EpochSelection,
    StreamProgress,
    check_bool,
    check_int,
    check_torch_seed,
    resolve_start_and_step,
)
from ...order.state import check_state, state_counter
from ._torch_streams import dinov2_permutation_pass, inside_out_shuffle, skip_permutation_passes

__all__ = ["EpochSampler", "InfiniteSampler", "ShardedInfiniteSampler"]


class EpochSampler(EpochSelection, StreamProgress, Sampler[int]):
    """A finite epoch of ``size`` indices, shuffled per epoch with numpy (dinov2's ``EPOCH``).

    The index sequence is ``range(sample_count)`` tiled ``ceil(size / sample_count)`` times; with
    ``shuffle`` it is ``numpy.random.default_rng(s).choice(tiled, size, replace=False)``,
    otherwise its first ``size`` elements; this rank yields positions ``start, start + step, ...``.

    Quirks kept from dinov2:
        * The numpy seed is ``seed * epoch`` (``epoch`` when ``seed == 0``): epoch 0 has the
          same order for every seed, and (seed a, epoch b) equals (seed b, epoch a).
        * With ``size > sample_count`` indices repeat within an epoch (tiling).
        * Ranks get ``ceil((size - start) / step)`` indices, so their lengths can differ by one
          when ``step`` does not divide ``size``: a rank then runs one more batch than another,
          which can stall a collective (use :class:`GlobalOrderSampler` or
          :class:`DistributedSampler` for equal counts).
        * The epoch is only changed by :meth:`set_epoch`.

    Args:
        size: indices per epoch (>= 1).
        sample_count: data set length (>= 1).
        shuffle: shuffle each epoch.
        seed: non-negative seed (numpy refuses negative seeds).
        start: this rank's first position; default: the global rank.
        step: stride between this rank's positions; default: the world size.

    Raises:
        ConfigError: an argument is not an integer/bool or out of range, or ``start >= step``.
    """

    def __init__(
        self,
        *,
        size: int,
        sample_count: int,
        shuffle: bool = False,
        seed: int = 0,
        start: int | None = None,
        step: int | None = None,
    ) -> None:
        owner = "EpochSampler"
        self._size = check_int(size, "size", owner, low=1)
        self._sample_count = check_int(sample_count, "sample_count", owner, low=1)
        self._shuffle = check_bool(shuffle, "shuffle", owner)
        self._seed = check_int(seed, "seed", owner, low=0)
        self._start, self._step = resolve_start_and_step(start, step, owner)
        self._epoch = 0

    def __iter__(self) -> Iterator[int]:
        first, token = self._begin()
        yield from self._emit(self._epoch_indices()[self._start :: self._step], first, token)

    def __len__(self) -> int:
        return (self._size - self._start + self._step - 1) // self._step

    @property
    def epoch(self) -> int:
        """The epoch whose order the sampler yields."""
        return self._epoch

    def state_dict(self) -> dict[str, Any]:
        """The sampler's arguments, epoch and position (indices this rank has yielded).

        Returns:
            A small JSON-serialisable dict for :meth:`load_state_dict`.
        """
        return {**self._config(), "epoch": self._epoch, "position": self._progress()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state: the next iterator continues right after the saved position.

        The state does not record the rank, so any rank's state of a lock-step run fits.

        Args:
            state: a dict from :meth:`state_dict` of an EpochSampler with the same size,
                sample_count, shuffle, seed and step.

        Raises:
            StateMismatchError: the state is of another kind, was taken with other arguments,
                or holds an out-of-range epoch or position. The sampler is unchanged.
        """
        config = self._config()
        checked = check_state(state, kind=config.pop("kind"), config=config, fields=_COUNTERS)
        epoch = state_counter(checked, "epoch", kind="EpochSampler", low=0, high=None)
        longest = -(-self._size // self._step)
        position = state_counter(checked, "position", kind="EpochSampler", low=0, high=longest)
        self._epoch = epoch
        self._resume_at(position)

    def _config(self) -> dict[str, Any]:
        return {
            "kind": "EpochSampler",
            "size": self._size,
            "sample_count": self._sample_count,
            "shuffle": self._shuffle,
            "seed": self._seed,
            "step": self._step,
        }

    def _epoch_indices(self) -> np.ndarray:
        count = (self._size + self._sample_count - 1) // self._sample_count
        tiled = np.tile(np.arange(self._sample_count), count)
        if not self._shuffle:
            return tiled[: self._size]
        seed = self._seed * self._epoch if self._seed != 0 else self._epoch
        return np.random.default_rng(seed).choice(tiled, self._size, replace=False)


_COUNTERS = ("epoch", "position")


class InfiniteSampler(StreamProgress, Sampler[int]):
    """An endless stream of permutations shared by all ranks (dinov2's ``INFINITE``).

    Without ``shuffle`` this rank repeats ``range(start, sample_count, step)`` forever. With it,
    one ``torch.Generator`` seeded once with ``seed`` produces a fresh permutation of
    ``range(sample_count)`` per pass (dinov2's forward Fisher-Yates, one ``torch.randint`` per
    element, which equals ``torch.randperm`` plus one extra draw); every rank builds the same
    permutations and yields its strided slice of each, so rank streams are disjoint per pass
    and cover the data set. ``advance`` skips the first items of this rank's stream.

    The sampler has no ``len`` (dinov2's ``make_data_loader`` relies on that ``TypeError``).

    Args:
        sample_count: data set length (>= 1).
        shuffle: shuffle each pass.
        seed: torch seed (torch uses its low 32 bits).
        start: this rank's first position; default: the global rank.
        step: stride between this rank's positions; default: the world size.
        advance: items of this rank's stream to skip.

    Raises:
        ConfigError: an argument is not an integer/bool or out of range, ``start >= step``, or
            ``start >= sample_count`` (that rank would get nothing: dinov2 loops forever).
    """

    def __init__(
        self,
        *,
        sample_count: int,
        shuffle: bool = False,
        seed: int = 0,
        start: int | None = None,
        step: int | None = None,
        advance: int = 0,
    ) -> None:
        owner = "InfiniteSampler"
        self._sample_count = check_int(sample_count, "sample_count", owner, low=1)
        self._shuffle = check_bool(shuffle, "shuffle", owner)
        self._seed = check_torch_seed(seed, "seed", owner)
        self._start, self._step = resolve_start_and_step(start, step, owner)
        _check_rank_has_samples(self._sample_count, self._start, owner)
        self._advance = check_int(advance, "advance", owner, low=0)

    def __iter__(self) -> Iterator[int]:
        first, token = self._begin()
        per_pass = len(range(self._start, self._sample_count, self._step))
        passes, offset = divmod(first, per_pass)
        if not self._shuffle:
            values = np.arange(self._start, self._sample_count, self._step)
            while True:
                yield from self._emit(values, offset, token)
                offset = 0
        generator = torch.Generator().manual_seed(self._seed)
        skip_permutation_passes(self._sample_count, generator, passes)
        while True:
            permutation = dinov2_permutation_pass(self._sample_count, generator)
            yield from self._emit(permutation[self._start :: self._step], offset, token)
            offset = 0

    def _default_start(self) -> int:
        return self._advance

    def _stream_length(self) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        """The sampler's arguments, ``advance`` and position in this rank's stream.

        ``position`` counts from the start of the stream (skipped ``advance`` items included).

        Returns:
            A small JSON-serialisable dict for :meth:`load_state_dict`.
        """
        return {**self._config(), "advance": self._advance, "position": self._progress()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state: the next iterator continues right after the saved position.

        Later iterators start at the saved ``advance``, as they would have in the saved run.

        Args:
            state: a dict from :meth:`state_dict` of an InfiniteSampler with the same
                sample_count, shuffle, seed and step (the rank is not recorded).

        Raises:
            StateMismatchError: the state is of another kind, was taken with other arguments,
                or holds a negative counter. The sampler is unchanged.
        """
        config = self._config()
        kind = config.pop("kind")
        checked = check_state(state, kind=kind, config=config, fields=("advance", "position"))
        advance = state_counter(checked, "advance", kind=kind, low=0, high=None)
        position = state_counter(checked, "position", kind=kind, low=0, high=None)
        self._advance = advance
        self._resume_at(position)

    def _config(self) -> dict[str, Any]:
        return {
            "kind": "InfiniteSampler",
            "sample_count": self._sample_count,
            "shuffle": self._shuffle,
            "seed": self._seed,
            "step": self._step,
        }


class ShardedInfiniteSampler(Sampler[int]):
    """Endless per-rank reshuffles of one shared permutation (dinov2's ``SHARDED_INFINITE``).

    With ``shuffle``, a generator seeded with ``seed`` draws one base permutation
    ``torch.randperm(sample_count)`` shared by all ranks. Each pass then re-seeds it with
    ``seed + start + (pass << 24)`` and shuffles this rank's first ``count = sample_count //
    step`` strided elements of the base permutation: with dinov2's old inside-out shuffle
    (``SHARDED_INFINITE``), or with ``torch.randperm(count)`` when
    ``use_new_shuffle_tensor_slice`` (``SHARDED_INFINITE_NEW``). Without ``shuffle`` this rank
    repeats ``range(start, sample_count, step)`` forever (nothing dropped).

    Quirks kept from dinov2:
        * The per-pass seeds depend on ``start`` (the rank): the order a rank sees is tied to
          the world size, so it cannot be resumed under another one.
        * Shuffled passes drop the last ``sample_count - step * count`` positions of the base
          permutation on every pass and warn ``"# of dropped samples: N"`` for each pass
          generated (including passes skipped by ``advance``).
        * ``advance`` is first reduced in units of ``sample_count``: ``k = advance //
          sample_count`` whole passes are skipped by adding ``k`` to the pass counter and
          subtracting ``k * sample_count`` from the stored ``advance``, though a pass only
          holds ``count`` items per rank; the remaining ``advance`` items are then skipped.
          Both changes stay on the sampler, so each new iterator skips the reduced
          ``advance`` again and continues with the pass counter where the last one stopped.
        * The pass counter is incremented when the item after a pass's last item is requested.
        * torch keeps the low 32 bits of a seed, so the per-pass shuffles repeat every 256
          passes (``256 << 24 == 2**32``).

    The sampler has no ``len``.

    Args:
        sample_count: data set length (>= 1).
        shuffle: shuffle.
        seed: torch seed.
        start: this rank's first position; default: the global rank.
        step: stride between this rank's positions; default: the world size.
        advance: items to skip (reduced as described above).
        use_new_shuffle_tensor_slice: use ``randperm`` for the per-pass shuffle.

    Raises:
        ConfigError: an argument is not an integer/bool or out of range, ``start >= step``, or
            this rank would get no samples (dinov2 loops forever then): ``sample_count < step``
            with ``shuffle``, ``start >= sample_count`` without.
    """

    def __init__(
        self,
        *,
        sample_count: int,
        shuffle: bool = False,
        seed: int = 0,
        start: int | None = None,
        step: int | None = None,
        advance: int = 0,
        use_new_shuffle_tensor_slice: bool = False,
    ) -> None:
        owner = "ShardedInfiniteSampler"
        self._sample_count = check_int(sample_count, "sample_count", owner, low=1)
        self._shuffle = check_bool(shuffle, "shuffle", owner)
        self._seed = check_torch_seed(seed, "seed", owner)
        self._start, self._step = resolve_start_and_step(start, step, owner)
        self._advance = check_int(advance, "advance", owner, low=0)
        self._use_new = check_bool(
            use_new_shuffle_tensor_slice, "use_new_shuffle_tensor_slice", owner
        )
        if self._shuffle and self._sample_count < self._step:
            raise ConfigError(
                f"{owner}: sample_count={self._sample_count} is smaller than step={self._step}; "
                "every shuffled pass would be empty"
            )
        _check_rank_has_samples(self._sample_count, self._start, owner)
        check_torch_seed(self._seed + self._start, "seed + start", owner)
        self._iter_count = 0
        self._offset: int | None = None  # the newest iterator's position in its pass/cycle
        self._pending = False
        self._token = 0

    def __iter__(self) -> Iterator[int]:
        self._token += 1
        token = self._token
        if self._pending:
            self._pending = False
            offset = self._offset
        else:
            passes = self._advance // self._sample_count
            if passes > 0:
                self._advance -= passes * self._sample_count
                self._iter_count += passes
            offset = self._advance
            if self._shuffle:
                passes, offset = divmod(offset, self._count())
                self._warn_dropped(passes)
                self._iter_count += passes
        self._offset = offset
        if self._shuffle:
            yield from self._shuffled(offset, token)
        else:
            yield from self._plain(offset, token)

    def state_dict(self) -> dict[str, Any]:
        """The sampler's arguments, its stored ``advance`` and pass counter, and the position.

        ``offset`` is the newest iterator's position within its pass (shuffled) or in its
        endless repetition of ``range(start, sample_count, step)`` (not shuffled), or ``None``
        when no iterator has started: the next one then applies ``advance`` like a fresh dinov2
        iterator. Ranks of a lock-step run hold the same state.

        Returns:
            A small JSON-serialisable dict for :meth:`load_state_dict`.
        """
        return {
            **self._config(),
            "advance": self._advance,
            "iter_count": self._iter_count,
            "offset": self._offset,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state: the next iterator continues right after the saved position.

        Args:
            state: a dict from :meth:`state_dict` of a ShardedInfiniteSampler with the same
                sample_count, shuffle, seed, step and slice variant (the rank is not recorded,
                though the shuffled order depends on it).

        Raises:
            StateMismatchError: the state is of another kind, was taken with other arguments,
                or holds an out-of-range counter. The sampler is unchanged.
        """
        config = self._config()
        kind = config.pop("kind")
        checked = check_state(
            state, kind=kind, config=config, fields=("advance", "iter_count", "offset")
        )
        advance = state_counter(checked, "advance", kind=kind, low=0, high=None)
        iter_count = state_counter(checked, "iter_count", kind=kind, low=0, high=None)
        offset = None
        if checked["offset"] is not None:
            limit = self._count() if self._shuffle else None
            offset = state_counter(checked, "offset", kind=kind, low=0, high=limit)
        last = self._seed + self._start + (iter_count << 24)
        if last > 2**64 - 1:
            raise StateMismatchError(f"{kind} state has iter_count={iter_count}, too large")
        self._advance = advance
        self._iter_count = iter_count
        self._offset = offset
        self._pending = offset is not None
        self._token += 1  # an older iterator no longer moves the counters

    def _shuffled(self, offset: int, token: int) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self._seed)
        dtype = torch.int32 if self._sample_count <= 2**31 else torch.int64
        base = torch.randperm(self._sample_count, dtype=dtype, generator=generator)
        count = self._count()
        iter_count = self._iter_count
        while True:
            values = self._shuffle_slice(base, iter_count)
            for lo in range(offset, count, CHUNK):
                for value in values[lo : lo + CHUNK].tolist():
                    if self._token == token:
                        self._offset += 1
                    yield value
            iter_count += 1
            offset = 0
            if self._token == token:
                self._iter_count = iter_count
                self._offset = 0

    def _plain(self, offset: int, token: int) -> Iterator[int]:
        values = np.arange(self._start, self._sample_count, self._step)
        offset %= len(values)
        while True:
            for lo in range(offset, len(values), CHUNK):
                for value in values[lo : lo + CHUNK].tolist():
                    if self._token == token:
                        self._offset += 1
                    yield value
            offset = 0

    def _shuffle_slice(self, base: torch.Tensor, iter_count: int) -> np.ndarray:
        self._warn_dropped(1)
        seed = self._seed + self._start + (iter_count << 24)
        count = self._count()
        if self._use_new:
            generator = torch.Generator().manual_seed(seed)
            indices = torch.randperm(count, dtype=torch.int64, generator=generator)
            return base[self._start :: self._step][indices].numpy()
        return inside_out_shuffle(base.numpy()[self._start :: self._step][:count], seed)

    def _warn_dropped(self, passes: int) -> None:
        dropped = self._sample_count - self._step * self._count()
        if dropped:
            for _ in range(passes):
                warnings.warn(f"# of dropped samples: {dropped}")

    def _count(self) -> int:
        return self._sample_count // self._step

    def _config(self) -> dict[str, Any]:
        return {
            "kind": "ShardedInfiniteSampler",
            "sample_count": self._sample_count,
            "shuffle": self._shuffle,
            "seed": self._seed,
            "step": self._step,
            "use_new_shuffle_tensor_slice": self._use_new,
        }


def _check_rank_has_samples(sample_count: int, start: int, owner: str) -> None:
    if start >= sample_count:
        raise ConfigError(
            f"{owner}: start={start} (the rank) is not below sample_count={sample_count}; this "
            "rank would get no samples and its endless stream would never yield"
        )
