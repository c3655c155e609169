"""The chainable loader: Deep Lake's ``DeepLakeDataLoader`` API over shardstream's readers.

One chain says what to load, in what order, how to transform and batch it, and for which
framework::

    loader = (
        reader.dataloader(seed=0)
        .query("select * where label != 5")
        .transform({"image": augment, "label": None})
        .batch(64, drop_last=True)
        .shuffle(buffer_size=512)
        .pytorch(num_workers=2, decode_method={"image": "pil"})
    )
    for batch in loader:
        ...

Every step returns a new :class:`Loader` (the original is unchanged). ``batch``, ``shuffle``,
``offset``, ``transform`` and the mode (``pytorch`` / ``numpy`` / ``tensorflow``) may be set once
each (Deep Lake's ``ValueError`` messages otherwise); ``query`` and ``sample_by`` narrow the view
any number of times. Batches are made by the engine's :class:`~shardstream.load.engine.pool.WorkerPool`
and come back in order; their content depends only on the seed (never on ``num_workers`` or
``num_threads``), and ``state_dict()`` / ``load_state_dict()`` resume mid-epoch exactly.

Choices where Deep Lake leaves the behaviour open (see :mod:`shardstream.load.plan` for the order):

- Without ``.batch()`` the loader yields single samples (not batches of one), as a torch
  ``DataLoader`` with ``batch_size=None`` does; ``batch_size`` still reports 1 and ``len()``
  counts samples.
- Without a mode method the loader iterates as ``.numpy()`` with its defaults (as
  ``.pytorch()`` with its defaults when a preset is set).
- ``iter(loader)`` continues the epoch at the cursor: after a completed epoch that is the start of
  the next epoch; after a loop left early (or ``load_state_dict``) it is where the consumer
  stopped. ``offset(off)`` sets the first epoch's starting cursor.
- ``len(loader)`` counts the batches of a whole epoch on this rank, also mid-epoch.
- ``query`` after an earlier ``query`` / ``sample_by`` runs on the whole dataset and keeps the
  view's entries it selects (in view order, repeats kept); its ``LIMIT`` / ``ORDER BY`` therefore
  act on the whole dataset.
- ``sample_by`` draws once, when it is called, from the loader's seed: the view stays fixed over
  epochs.
"""

from __future__ import annotations

import collections
import functools
import math
import os
import secrets
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import (
    ChainError,
    ConfigError,
    ConfigTypeError,
    CorruptSampleError,
    MissingDependencyError,
    StateMismatchError,
    WeightsError,
)
from ..fastpaths import check_device
from ..order.samplers.seeds import SEED_LIMIT
from ..order.state import check_state, state_counter
from ..read.open import open_dataset
from ..read.reader import Reader
from ..read.remote.prefetch import start_prefetch
from .plan import EpochPlan, shuffle_window
from .sample_work import ARRAY, BYTES, IMAGE, OBJECT, SampleWork, field_kind

__all__ = ["Loader", "DECODE_METHODS"]

#: decode methods each field kind allows (Deep Lake's table, without its htype-specific ``data``)
DECODE_METHODS: dict[str, frozenset[str]] = {
    IMAGE: frozenset({"numpy", "tobytes", "pil"}),
    BYTES: frozenset({"numpy", "tobytes"}),
    ARRAY: frozenset({"numpy", "tobytes"}),
    OBJECT: frozenset({"numpy"}),
}
_MODES = ("pytorch", "numpy", "tensorflow")
#: samples per engine task when the loader is unbatched
_UNBATCHED_CHUNK = 16


@dataclass(frozen=True)
class _Mode:
    name: str = "numpy"
    num_workers: int = 0
    collate_fn: Callable | None = None
    tensors: tuple[str, ...] | None = None
    num_threads: int | None = None
    prefetch_factor: int = 2
    return_index: bool = False
    decode_method: Mapping[str, str] | None = None
    persistent_workers: bool = False
    timeout: float | None = None
    rank: int = 0
    world_size: int = 1


@dataclass(frozen=True)
class _Chain:
    reader: Reader
    seed: int
    seed_given: bool
    ignore_errors: bool
    verbose: bool
    verify: bool
    shared: dict = field(compare=False)  # facts of the dataset computed once (field kinds, sizes)
    view: np.ndarray | None = None
    sample_by_calls: int = 0
    transform: Callable | Mapping[str, Callable | None] | None = None
    transform_set: bool = False
    preset: Any = None
    device: Any = None
    batch_size: int | None = None
    drop_last: bool = False
    shuffle: bool | None = None
    buffer_size: float = 2048
    offset: int | None = None
    mode: _Mode | None = None


class Loader:
    """Deep Lake's ``DeepLakeDataLoader`` over a shardstream reader (``shardstream.Loader``).

    Args:
        source: a :class:`~shardstream.read.Reader`, or the path of a data file or a manifest.
        ignore_errors: skip samples whose reading, decoding or transform raises (counted in
            ``stats()["skipped"]``) instead of raising the engine's ``SampleError``.
        verbose: show a tqdm progress bar with samples/s and the input-stall share.
        seed: seed of the shuffle order, of ``sample_by`` and of every sample's random stream,
            in ``[0, 2**32)``; ``None`` draws one from the OS (kept in :meth:`state_dict`).
        verify: check every sample's bytes against the set's per-sample checksum file
            (``X.xxh3``) in the worker, before unpacking (the hash runs on the mapped bytes,
            no copy). A damaged sample raises the engine's ``SampleError`` whose cause is a
            :class:`~shardstream.errors.SampleChecksumError` naming the file, index and key,
            or with ``ignore_errors`` is skipped and counted in ``stats()["skipped"]``.
        storage_options, cache_dir, cache_limit, prefetch_shards: for a URL ``source``
            (``s3://``, ``https://``, ...): the filesystem's options, the node-local shard cache
            and its byte limit, and how many shards are fetched ahead in the epoch's order (see
            :mod:`shardstream.read.remote`).

    Raises:
        ConfigError: ``seed`` out of range, ``source`` is neither a reader nor a path, or
            ``verify`` is set and the set (or a shard) has no checksum file.
        DatasetNotFoundError, MissingIndexError, ...: ``source`` is a path that does not open.
    """

    def __init__(
        self,
        source: Reader | str | os.PathLike,
        *,
        ignore_errors: bool = False,
        verbose: bool = False,
        seed: int | None = None,
        verify: bool = False,
        storage_options: dict | None = None,
        cache_dir: str | os.PathLike | None = None,
        cache_limit: int | None = None,
        prefetch_shards: int = 4,
    ) -> None:
        reader = open_dataset(
            source,
            caller="Loader",
            storage_options=storage_options,
            cache_dir=cache_dir,
            cache_limit=cache_limit,
            prefetch_shards=prefetch_shards,
        )
        if verify:
            _check_verifiable(reader)
        seed_given = seed is not None
        if seed is None:
            seed = secrets.randbits(32)
        elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ConfigError(f"Loader: seed must be an integer or None, got {seed!r}")
        elif not 0 <= seed < SEED_LIMIT:
            raise ConfigError(f"Loader: seed must be in [0, 2**32), got {seed}")
        chain = _Chain(
            reader=reader,
            seed=int(seed),
            seed_given=seed_given,
            ignore_errors=bool(ignore_errors),
            verbose=bool(verbose),
            verify=bool(verify),
            shared={},
        )
        self._start(chain)

    # --- builder steps ----------------------------------------------------------------------

    def batch(self, batch_size: int, drop_last: bool = False) -> Loader:
        """A loader yielding batches of ``batch_size`` samples.

        Args:
            batch_size: samples per batch (>= 1).
            drop_last: drop the epoch's last batch when it is short.

        Raises:
            ChainError: ``"batch size is already set"``.
            ConfigError: ``batch_size`` is not a positive integer.
        """
        if self._chain.batch_size is not None:
            raise ChainError("batch size is already set")
        batch_size = _positive_int(batch_size, "batch_size")
        return self._with(batch_size=batch_size, drop_last=bool(drop_last))

    def shuffle(self, shuffle: bool = True, buffer_size: int = 2048) -> Loader:
        """A loader whose epochs are shuffled within a buffer of ``buffer_size`` MiB.

        The buffer holds ``W = max(1, buffer_size MiB // mean packed sample size)`` samples;
        when ``W`` covers the view the epoch is a full permutation, otherwise runs of ``W``
        consecutive samples are shuffled and permuted within (see :mod:`shardstream.load.plan`).
        Each epoch's order is drawn from ``(seed, epoch)``.

        Args:
            shuffle: whether to shuffle (``False`` still counts as setting it).
            buffer_size: the buffer size in MiB (> 0).

        Raises:
            ChainError: ``"shuffle is already set"``.
            ConfigError: ``buffer_size`` is not a positive number.
        """
        if self._chain.shuffle is not None:
            raise ChainError("shuffle is already set")
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, (int, float, np.number)):
            raise ConfigError(f"shuffle: buffer_size must be a number of MB, got {buffer_size!r}")
        if not buffer_size > 0:
            raise ConfigError(f"shuffle: buffer_size must be > 0 MB, got {buffer_size}")
        loader = self._with(shuffle=bool(shuffle), buffer_size=float(buffer_size))
        if shuffle and self._chain.offset is not None:
            _warn_unseeded(self._chain)
        return loader

    def offset(self, off: int = 0) -> Loader:
        """A loader whose first epoch starts at position ``off`` of the epoch order.

        Args:
            off: positions of the first epoch to skip (>= 0; at most the view's length).

        Raises:
            ChainError: ``"offset is already set"``.
            ConfigError: ``off`` is not a non-negative integer.

        Warns:
            UserWarning: shuffling is on and no seed was given, so the order (and what the
                offset skips) differs between initialisations.
        """
        if self._chain.offset is not None:
            raise ChainError("offset is already set")
        off = _non_negative_int(off, "off")
        if self._chain.shuffle:
            _warn_unseeded(self._chain)
        return self._with(offset=off)

    def transform(
        self, transform: Callable | Mapping[str, Callable | None], **kwargs: Any
    ) -> Loader:
        """A loader that transforms every sample (in the workers).

        Args:
            transform: a callable receiving the sample dict (``fn(sample)``, or
                ``fn(sample, rng=generator)`` when it has a parameter named ``rng``) and
                returning the sample; or a dict ``{field: fn or None}``: each listed field
                becomes ``fn(value)`` (or stays as it is for ``None``), only the listed fields
                are kept (list ``"index"`` to keep the index), and the listed fields are the
                ones loaded.
            **kwargs: bound to a callable transform with ``functools.partial`` (ignored for a
                dict).

        Raises:
            ChainError: ``"transform is already set"``, or a dict after ``tensors`` were given
                to the mode method.
            ConfigTypeError: ``transform`` is neither callable nor a dict of callables/None.
        """
        chain = self._chain
        if chain.transform_set:
            raise ChainError("transform is already set")
        if isinstance(transform, Mapping):
            if chain.mode is not None and chain.mode.tensors is not None:
                raise ChainError(
                    f"Tensors have already been specified in the .{chain.mode.name} method."
                )
            for name, fn in transform.items():
                if fn is not None and not callable(fn):
                    raise ConfigTypeError(
                        f"transform: the value for {name!r} must be callable or None, got "
                        f"{type(fn).__name__}"
                    )
            self._check_fields([k for k in transform if k != "index"], "transform")
            transform = dict(transform)
        elif callable(transform):
            if kwargs:
                transform = functools.partial(transform, **kwargs)
        else:
            raise ConfigTypeError(
                f"transform must be a callable or a dict, got {type(transform).__name__}"
            )
        return self._with(transform=transform, transform_set=True)

    def query(self, query_string: str) -> Loader:
        """A loader over the samples an SQL query selects (DuckDB over the metadata table).

        Args:
            query_string: e.g. ``"select * where label != 5"`` (see
                :func:`shardstream.load.query.query_indices`).

        Raises:
            QueryError: DuckDB rejects the query or it returns no usable ``index`` column.
            MissingDependencyError: duckdb is not installed.
        """
        from .query import query_indices

        chain = self._chain
        selected = query_indices(chain.reader, query_string)
        if chain.view is not None:
            selected = chain.view[np.isin(chain.view, selected)]
        return self._with(view=selected)

    def sample_by(
        self,
        weights: str | Sequence[float] | np.ndarray,
        replace: bool | None = True,
        size: int | None = None,
    ) -> Loader:
        """A loader over a weighted draw of the current view's samples.

        Args:
            weights: one weight per sample of the view, or an SQL expression over the metadata
                table (a column name, ``CASE ...``, or Deep Lake's ``max_weight(cond: w, ...)``).
            replace: draw with replacement (repeats allowed).
            size: how many samples to draw; default the view's length.

        Raises:
            WeightsError: ``"weights should be 1 dimensional array."`` for an array of another
                rank; unusable weights (negative, wrong count, all zero, ...).
            QueryError: DuckDB rejects the expression.
        """
        from .query import sample_by_indices

        chain = self._chain
        if isinstance(weights, np.ndarray) and weights.ndim != 1:
            raise WeightsError("weights should be 1 dimensional array.")
        # a stream apart from every epoch's: sample_by call k draws from "epoch" 2**32 - 1 - k
        draw = {"seed": chain.seed, "epoch": SEED_LIMIT - 1 - chain.sample_by_calls}
        replace = True if replace is None else bool(replace)
        if chain.view is None:
            picked = sample_by_indices(chain.reader, weights, replace, size, **draw)
        else:
            if isinstance(weights, str):
                weights = _weights_of(chain.reader, weights)[chain.view]
            picked = chain.view[sample_by_indices(chain.view, weights, replace, size, **draw)]
        return self._with(view=picked, sample_by_calls=chain.sample_by_calls + 1)

    def pytorch(
        self,
        num_workers: int = 0,
        collate_fn: Callable | None = None,
        tensors: Sequence[str] | None = None,
        num_threads: int | None = None,
        prefetch_factor: int = 2,
        distributed: bool = False,
        return_index: bool = True,
        decode_method: Mapping[str, str] | None = None,
        persistent_workers: bool = False,
        timeout: float | None = None,
    ) -> Loader:
        """A loader yielding torch tensors.

        Numpy leaves of the default collation become tensors (uint16 as int32, uint32/uint64 as
        int64); a ``collate_fn`` runs in the workers on the list of samples and its output is
        returned as it is.

        Args:
            num_workers: worker processes (0: work in this process).
            collate_fn: merges a list of samples into a batch.
            tensors: the fields to load (default all).
            num_threads: threads per worker for fetching and decoding (``None``: the engine's
                default).
            prefetch_factor: batches in flight per worker.
            distributed: split each epoch across the ranks of the ``torch.distributed`` group
                (strided, equal shares; see :mod:`shardstream.load.plan`).
            return_index: add ``"index"``, the sample's dataset index (int64).
            decode_method: ``{field: "numpy" | "tobytes" | "pil"}``.
            persistent_workers: keep the workers between epochs.
            timeout: seconds to wait for each batch (``None``: forever). A batch that takes
                longer, e.g. because a transform hangs, raises
                :class:`~shardstream.errors.LoaderTimeoutError` naming its samples, after the
                worker processes are stopped. With ``num_workers=0`` a hung transform's thread
                cannot be stopped: it is left running in the background.

        Raises:
            ChainError: a mode was already chosen, ``"index"`` in ``tensors``, or ``tensors``
                after a dict transform.
            ConfigError: an unknown field or decode method, bad numbers (``timeout`` neither
                ``None`` nor a positive finite number), or ``distributed`` without an
                initialised process group.
            MissingDependencyError: torch is not installed.
        """
        try:
            import torch
        except ImportError as e:
            raise MissingDependencyError("pytorch() needs torch: pip install torch") from e
        rank, world_size = 0, 1
        if distributed:
            dist = torch.distributed
            if not (dist.is_available() and dist.is_initialized()):
                raise ConfigError(
                    "pytorch(distributed=True) needs an initialised torch.distributed process "
                    "group: call torch.distributed.init_process_group first"
                )
            rank, world_size = dist.get_rank(), dist.get_world_size()
        return self._set_mode(
            "pytorch",
            num_workers=num_workers,
            collate_fn=collate_fn,
            tensors=tensors,
            num_threads=num_threads,
            prefetch_factor=prefetch_factor,
            return_index=bool(return_index),
            decode_method=decode_method,
            persistent_workers=persistent_workers,
            timeout=timeout,
            rank=rank,
            world_size=world_size,
        )

    def numpy(
        self,
        num_workers: int = 0,
        tensors: Sequence[str] | None = None,
        num_threads: int | None = None,
        prefetch_factor: int = 2,
        decode_method: Mapping[str, str] | None = None,
        persistent_workers: bool = False,
        timeout: float | None = None,
    ) -> Loader:
        """A loader yielding numpy batches (no index; arguments as :meth:`pytorch`).

        Raises:
            ChainError, ConfigError: as for :meth:`pytorch`.
        """
        return self._set_mode(
            "numpy",
            num_workers=num_workers,
            tensors=tensors,
            num_threads=num_threads,
            prefetch_factor=prefetch_factor,
            decode_method=decode_method,
            persistent_workers=persistent_workers,
            timeout=timeout,
        )

    def tensorflow(
        self,
        num_workers: int = 0,
        collate_fn: Callable | None = None,
        tensors: Sequence[str] | None = None,
        num_threads: int | None = None,
        prefetch_factor: int = 2,
        return_index: bool = True,
        decode_method: Mapping[str, str] | None = None,
        persistent_workers: bool = False,
        timeout: float | None = None,
    ) -> Loader:
        """A loader yielding ``tf.Tensor`` batches (arguments as :meth:`pytorch`).

        Raises:
            MissingDependencyError: tensorflow is not installed (an ``ImportError`` naming
                ``pip install tensorflow``).
            ChainError, ConfigError: as for :meth:`pytorch`.
        """
        try:
            import tensorflow  # noqa: F401
        except ImportError as e:
            raise MissingDependencyError(
                "tensorflow() needs tensorflow, which is not installed: pip install tensorflow"
            ) from e
        return self._set_mode(
            "tensorflow",
            num_workers=num_workers,
            collate_fn=collate_fn,
            tensors=tensors,
            num_threads=num_threads,
            prefetch_factor=prefetch_factor,
            return_index=bool(return_index),
            decode_method=decode_method,
            persistent_workers=persistent_workers,
            timeout=timeout,
        )

    def preset(self, preset: Any, *, device: Any = None) -> Loader:
        """A loader running a preset: ``preset.worker(sample, rng)`` per sample in the workers
        (``sample`` holds the raw bytes of ``preset.fields``, plus ``"index"`` when
        ``return_index`` is on), default collation to torch tensors, transfer to ``device``
        (pinned when it is a CUDA device), then ``preset.device(batch)`` in this process.

        Counts as setting the transform.

        Args:
            preset: an object with ``fields``, ``worker(sample, rng)`` and ``device(batch)``;
                when it also has ``for_device(device)``, the preset that returns is used (so
                it can put work where the batches go: e.g. colour in the workers on a CPU),
                and when it has ``collate(samples)``, that merges the worker outputs of a
                batch (in the workers) instead of the default collation.
            device: where batches go before ``preset.device`` (``None``: stay on the CPU).

        Raises:
            ChainError: ``"transform is already set"``, or ``tensors`` were given to the mode.
            ConfigError: the mode is numpy/tensorflow or set a decode method, or the preset
                names an unknown field.
            ConfigTypeError: ``preset`` lacks ``fields``, ``worker`` or ``device``.
            DeviceUnavailableError: ``device`` is a CUDA (or MPS) device this machine does not
                have: refused here, not at the first batch.
        """
        chain = self._chain
        if chain.transform_set:
            raise ChainError("transform is already set")
        for name in ("fields", "worker", "device"):
            if not hasattr(preset, name):
                raise ConfigTypeError(f"preset: {type(preset).__name__} has no {name!r}")
        if chain.mode is not None:
            _check_mode_for_preset(chain.mode)
        self._check_fields(list(preset.fields), "preset")
        check_device(device, "Loader.preset")
        if hasattr(preset, "for_device"):  # a preset may split its work by device
            preset = preset.for_device(device)
        return self._with(preset=preset, device=device, transform_set=True)

    # --- iteration --------------------------------------------------------------------------

    def __iter__(self) -> Loader:
        """Start (or continue) the epoch at the cursor; the loader is its own iterator."""
        self._stop_run()
        self._run = self._epoch_batches()
        return self

    def __next__(self) -> Any:
        """The next batch (or sample, when unbatched) of the current run."""
        if self._run is None:
            self._run = self._epoch_batches()
        try:
            return next(self._run)
        except StopIteration:
            self._run = None
            raise

    def __len__(self) -> int:
        """Batches of a whole epoch on this rank: ``ceil(n / (batch_size * world_size))``, or
        ``floor`` with ``drop_last``."""
        return self._plan().batch_count(0)

    def state_dict(self) -> dict[str, Any]:
        """The loader's position: ``{"kind", "sample_count", "digest", "seed", "epoch",
        "cursor"}``.

        ``cursor`` counts the epoch positions consumed by all ranks (batches already returned;
        never the ones the engine prefetched). ``digest`` is the data set's recorded content
        digest (see :func:`~shardstream.load.digest.content_digest`; ``None`` when it records
        none), so a run is not resumed on another data set of the same length.

        Returns:
            A small JSON-serialisable dict for :meth:`load_state_dict`.
        """
        return {
            "kind": "Loader",
            "sample_count": len(self._plan()),
            "digest": self._digest(),
            "seed": self._chain.seed,
            "epoch": self._epoch,
            "cursor": self._cursor,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue at a saved position: the next iteration yields exactly the batches an
        uninterrupted run would have yielded after the save.

        Args:
            state: a dict from :meth:`state_dict` of a loader over a view of the same length
                (any ``num_workers``, ``num_threads`` or batch size).

        Raises:
            StateMismatchError: the state is of another kind, misses or adds keys, was taken
                over a view of another length or over a data set with another content digest
                (the message names both), or holds an out-of-range seed, epoch or cursor. A
                state without ``digest`` (saved by an older version) is not checked for it.
        """
        plan = self._plan()
        has_digest = isinstance(state, Mapping) and "digest" in state
        checked = check_state(
            state,
            kind="Loader",
            config={"sample_count": len(plan)},
            fields=("seed", "epoch", "cursor", *(("digest",) if has_digest else ())),
        )
        if has_digest:
            self._check_digest(checked["digest"])
        seed = state_counter(checked, "seed", kind="Loader", low=0, high=SEED_LIMIT - 1)
        epoch = state_counter(checked, "epoch", kind="Loader", low=0, high=SEED_LIMIT - 1)
        cursor = state_counter(checked, "cursor", kind="Loader", low=0, high=len(plan))
        self._stop_run()
        if seed != self._chain.seed:
            self._close_pool()
            self._work = None
            self._chain = replace(self._chain, seed=seed, seed_given=True)
            self._plan_cache = None
        self._epoch, self._cursor = epoch, cursor

    def _digest(self) -> str | None:
        shared = self._chain.shared
        if "digest" not in shared:
            from .digest import content_digest

            shared["digest"] = content_digest(self._chain.reader)
        return shared["digest"]

    def _check_digest(self, saved: Any) -> None:
        if saved is not None and not isinstance(saved, str):
            raise StateMismatchError(
                f"Loader state holds digest={saved!r}; pass a dict from Loader.state_dict()"
            )
        mine = self._digest()
        if saved is not None and mine is not None and saved != mine:
            raise StateMismatchError(
                f"Loader state was saved over a data set with content digest {saved}, but "
                f"{self._chain.reader!r} has content digest {mine}: another data set (of the "
                "same length) is at that place; resume with the data set the state was saved on"
            )

    def stats(self) -> dict[str, Any]:
        """Throughput of the current (or last) run.

        Returns:
            A :class:`~shardstream.load.engine.stats.LoaderStats`: a dict of the engine's stats
            (samples/s, bytes/s, input-stall share, seconds per stage, skipped samples, ...; all 0
            before the first batch) plus the loader's ``epoch``, ``cursor`` and ``returned``
            (batches, or samples when unbatched, returned so far). ``print(loader.stats())``
            shows them as one line; ``.stages()`` gives the seconds per stage.
        """
        from .engine.stats import LoaderStats

        stats = LoaderStats()
        if self._pool is not None:
            stats.update(self._pool.stats())
        elif self._last_stats:
            stats.update(self._last_stats)
        stats.setdefault("skipped", 0)
        stats.update(epoch=self._epoch, cursor=self._cursor, returned=self._batches)
        return stats

    def close(self) -> None:
        """Stop the workers and release the resources (idempotent; iterating again restarts)."""
        self._stop_run()
        self._close_pool()

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # --- PyTorch-compatible properties -------------------------------------------------------

    @property
    def batch_size(self) -> int:
        """Samples per batch (1 when ``.batch()`` was not called)."""
        return self._chain.batch_size or 1

    @property
    def drop_last(self) -> bool:
        """Whether a short last batch is dropped."""
        return self._chain.drop_last

    @property
    def num_workers(self) -> int:
        """Worker processes of the chosen mode (0 before a mode is chosen)."""
        return self._chain.mode.num_workers if self._chain.mode else 0

    @property
    def timeout(self) -> float | None:
        """Seconds to wait for each batch (``None``: no limit, also before a mode is chosen)."""
        return self._chain.mode.timeout if self._chain.mode else None

    @property
    def seed(self) -> int:
        """The run's seed (drawn from the OS when none was given)."""
        return self._chain.seed

    @property
    def epoch(self) -> int:
        """The epoch the next batch comes from."""
        return self._epoch

    @property
    def reader(self) -> Reader:
        """The dataset the loader reads."""
        return self._chain.reader

    def __repr__(self) -> str:
        chain = self._chain
        mode = chain.mode.name if chain.mode else None
        return (
            f"Loader({chain.reader!r}, samples={len(self._plan())}, batch_size={chain.batch_size}, "
            f"shuffle={chain.shuffle}, mode={mode}, seed={chain.seed})"
        )

    # --- internals ----------------------------------------------------------------------------

    def _start(self, chain: _Chain) -> None:
        self._chain = chain
        self._epoch = 0
        self._cursor = chain.offset or 0
        self._run: Iterator[Any] | None = None
        self._pool: Any = None
        self._work: SampleWork | None = None
        self._plan_cache: EpochPlan | None = None
        self._batches = 0
        self._last_stats: dict[str, Any] = {}

    def _with(self, **changes: Any) -> Loader:
        loader = Loader.__new__(Loader)
        loader._start(replace(self._chain, **changes))
        return loader

    def _set_mode(self, name: str, **settings: Any) -> Loader:
        chain = self._chain
        if chain.mode is not None:
            if chain.mode.name == name:
                raise ChainError(f"already called .{name}()")
            raise ChainError(f"Can't call .{name}() after .{chain.mode.name}()")
        tensors = settings.get("tensors")
        if tensors is not None:
            if isinstance(tensors, str):
                tensors = [tensors]
            tensors = tuple(tensors)
            if "index" in tensors:
                raise ChainError("index is not a tensor, to get index, pass return_index=True")
            if isinstance(chain.transform, Mapping):
                raise ChainError(
                    "Tensors have already been specified by passing a dictionary to "
                    ".transform() method"
                )
            if chain.preset is not None:
                raise ChainError("Tensors have already been specified by .preset()")
            self._check_fields(list(tensors), "tensors")
            settings["tensors"] = tensors
        settings["num_workers"] = _non_negative_int(settings.get("num_workers", 0), "num_workers")
        settings["prefetch_factor"] = _positive_int(
            settings.get("prefetch_factor", 2), "prefetch_factor"
        )
        if settings.get("num_threads") is not None:
            settings["num_threads"] = _positive_int(settings["num_threads"], "num_threads")
        settings["persistent_workers"] = bool(settings.get("persistent_workers", False))
        settings["timeout"] = _timeout(settings.get("timeout"))
        collate_fn = settings.get("collate_fn")
        if collate_fn is not None and not callable(collate_fn):
            raise ConfigTypeError(f"collate_fn must be callable, got {type(collate_fn).__name__}")
        mode = _Mode(name=name, **settings)
        if chain.preset is not None:
            _check_mode_for_preset(mode)
        decode_method = settings.get("decode_method")
        loaded = self._loaded_fields(tensors)
        if decode_method is not None:
            self._check_decode(decode_method, loaded)
            mode = replace(mode, decode_method=dict(decode_method))
        elif chain.preset is None:
            images = [name for name in loaded if self._kinds().get(name) == IMAGE]
            if images:
                warnings.warn(
                    f"decode_method is not set, so the images in {images} are decoded to numpy "
                    f"arrays; pass decode_method={{{images[0]!r}: 'numpy'}} (or 'tobytes' for "
                    "the encoded bytes, 'pil' for PIL images) to choose",
                    UserWarning,
                    stacklevel=3,
                )
        return self._with(mode=mode)

    def _mode(self) -> _Mode:
        """The chosen mode; without one, numpy's defaults (pytorch's for a preset)."""
        chain = self._chain
        if chain.mode is not None:
            return chain.mode
        if chain.preset is not None:
            return _Mode(name="pytorch", return_index=True)
        return _Mode()

    def _kinds(self) -> dict[str, str]:
        shared = self._chain.shared
        if "kinds" not in shared:
            reader = self._chain.reader
            first = reader.get(0) if len(reader) else {}
            if not isinstance(first, Mapping):  # e.g. a msgpack array: no fields to load
                raise CorruptSampleError(
                    getattr(reader, "path", None),
                    f"sample 0 is a {type(first).__name__}, not a map of fields",
                )
            shared["kinds"] = {k: field_kind(v) for k, v in first.items() if isinstance(k, str)}
        return shared["kinds"]

    def _check_fields(self, names: Sequence[str], where: str) -> None:
        kinds = self._kinds()
        unknown = [name for name in names if name not in kinds]
        if unknown:
            raise ConfigError(
                f"{where}: {unknown} not among the fields of the samples ({list(kinds)})"
            )

    def _loaded_fields(self, tensors: Sequence[str] | None) -> list[str]:
        chain = self._chain
        if chain.preset is not None:
            return list(chain.preset.fields)
        if isinstance(chain.transform, Mapping):
            return [k for k in chain.transform if k != "index"]
        if tensors is not None:
            return list(tensors)
        return list(self._kinds())

    def _check_decode(self, decode_method: Mapping[str, str], loaded: Sequence[str]) -> None:
        if self._chain.preset is not None:
            raise ConfigError(
                "decode_method cannot be used with .preset(): a preset gets raw bytes"
            )
        if not isinstance(decode_method, Mapping):
            raise ConfigTypeError(
                f"decode_method must be a dict {{field: method}}, got {type(decode_method).__name__}"
            )
        kinds = self._kinds()
        for name, method in decode_method.items():
            if name not in loaded:
                raise ConfigError(f"tensor {name} specified in decode_method not found in tensors.")
            allowed = DECODE_METHODS[kinds[name]]
            if method not in allowed:
                shown = "{" + ", ".join(repr(m) for m in sorted(allowed)) + "}"
                raise ConfigError(
                    f"decode_method {method} not supported for tensor {name}. Supported methods "
                    f"for this tensor are {shown}"
                )

    def _plan(self) -> EpochPlan:
        if self._plan_cache is None:
            chain = self._chain
            mode = self._mode()
            window = 1
            if chain.shuffle:
                window = shuffle_window(chain.buffer_size, self._mean_sample_bytes())
            self._plan_cache = EpochPlan(
                view=chain.view,
                dataset_length=len(chain.reader),
                seed=chain.seed,
                shuffle=bool(chain.shuffle),
                window=window,
                batch_size=chain.batch_size,
                drop_last=chain.drop_last,
                rank=mode.rank,
                world_size=mode.world_size,
            )
        return self._plan_cache

    def _mean_sample_bytes(self) -> float:
        chain = self._chain
        shared = chain.shared
        if "sizes" not in shared:
            shared["sizes"] = _sample_sizes(chain.reader)
        sizes = shared["sizes"]
        if sizes is None or not len(sizes):
            return 0.0
        picked = sizes if chain.view is None else sizes[chain.view]
        return float(picked.mean()) if len(picked) else 0.0

    def _build_work(self) -> SampleWork:
        chain = self._chain
        mode = self._mode()
        return_index = mode.return_index
        fields = mode.tensors
        if chain.preset is not None:
            fields = tuple(chain.preset.fields)
        elif isinstance(chain.transform, Mapping):
            fields = tuple(k for k in chain.transform if k != "index")
            return_index = return_index or "index" in chain.transform
        return SampleWork(
            reader=chain.reader,
            seed=chain.seed,
            fields=fields,
            decode=mode.decode_method,
            kinds=self._kinds(),
            return_index=return_index,
            transform=None if chain.preset is not None else chain.transform,
            preset=chain.preset,
            collate_fn=mode.collate_fn,
            convert="pytorch" if chain.preset is not None else mode.name,
            batched=chain.batch_size is not None,
            ignore_errors=chain.ignore_errors,
            verify=chain.verify,
            zero_copy=mode.num_workers > 0,
        )

    def _get_pool(self) -> Any:
        if self._pool is None or self._pool.closed:
            from .engine.pool import WorkerPool

            if self._work is None:
                self._work = self._build_work()
            mode = self._mode()
            self._pool = WorkerPool(
                work=self._work,
                num_workers=mode.num_workers,
                num_threads=mode.num_threads,
                prefetch_factor=mode.prefetch_factor,
                persistent_workers=mode.persistent_workers,
                pin_memory=_is_cuda(self._chain.device),
                timeout=mode.timeout,
            )
        return self._pool

    def _epoch_batches(self) -> Iterator[Any]:
        from .engine.tasks import BatchTask

        plan = self._plan()
        epoch, cursor = self._epoch, self._cursor
        if cursor > len(plan):
            raise ConfigError(f"offset/cursor {cursor} is past the end of the {len(plan)} samples")
        planned = plan.batches(epoch, cursor, _UNBATCHED_CHUNK)
        pending: collections.deque = collections.deque()  # (sequence, PlannedBatch) sent out

        def tasks() -> Iterator[Any]:
            for sequence, batch in enumerate(planned):
                pending.append((sequence, batch))
                yield BatchTask(
                    sequence=sequence, epoch=epoch, indices=batch.indices, positions=batch.positions
                )

        def skip_to(sequence: int | None) -> Any:
            # the engine yields no batch whose samples were all skipped: pass over them
            while pending and (sequence is None or pending[0][0] < sequence):
                _, skipped = pending.popleft()
                self._advance(epoch, skipped.cursor, skipped.last)
            return pending.popleft()[1] if sequence is not None else None

        total = plan.batch_count(cursor)
        if total == 0:
            self._epoch, self._cursor = epoch + 1, 0
            return
        chain = self._chain
        bar = _progress_bar(total, epoch) if chain.verbose else None
        prefetcher = start_prefetch(  # remote sets: fetch shards in this rank's order of use
            chain.reader, plan.order(epoch)[plan.rank_positions(cursor) % len(plan)]
        )
        pool = self._get_pool()
        batched = chain.batch_size is not None
        try:
            for task, (positions, batch) in pool.run(tasks()):
                done = skip_to(task.sequence)
                if batched:
                    self._advance(epoch, done.cursor, done.last)
                    self._batches += 1
                    yield self._deliver(batch)
                else:
                    for j, sample in enumerate(batch):
                        cursor_j = plan.cursor_after(int(positions[j]))
                        last = done.last and j == len(batch) - 1 and cursor_j == done.cursor
                        self._advance(epoch, cursor_j, last)
                        self._batches += 1
                        yield self._deliver(sample)
                    self._advance(epoch, done.cursor, done.last)
                if bar is not None:
                    _update_bar(bar, pool.stats())
            skip_to(None)
        finally:
            if prefetcher is not None:
                prefetcher.stop()
            if bar is not None:
                bar.close()
            self._last_stats = dict(pool.stats())
            if pool.closed and self._pool is pool:  # a worker died or timed out: start afresh
                self._pool = None

    def _advance(self, epoch: int, cursor: int, last: bool) -> None:
        if last:
            self._epoch, self._cursor = epoch + 1, 0
        elif self._epoch == epoch:
            self._cursor = cursor

    def _deliver(self, batch: Any) -> Any:
        preset = self._chain.preset
        if preset is None:
            return batch
        device = self._chain.device
        if device is not None:
            batch = _to_device(batch, device)
        out = preset.device(batch)
        if isinstance(batch, dict) and "index" in batch and isinstance(out, dict):
            out.setdefault("index", batch["index"])  # keep the dataset indices with the batch
        return out

    def _stop_run(self) -> None:
        run, self._run = self._run, None
        if run is not None:
            run.close()

    def _close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            self._last_stats = dict(pool.stats())
            pool.close()


def _check_verifiable(reader: Reader) -> None:
    """Refuse ``verify=True`` for a reader without per-sample checksums (naming what lacks them).

    Raises:
        ConfigError: the reader, or one of its shards, has no checksum file.
    """
    if getattr(reader, "has_checksums", False):
        return
    lacking = reader
    for shard in getattr(reader, "shards", None) or ():
        if not getattr(shard, "has_checksums", False):
            lacking = shard
            break
    where = getattr(lacking, "path", None) or repr(lacking)
    raise ConfigError(
        f"Loader: verify=True needs per-sample checksums, but {where} has none (no .xxh3 "
        f"file); add them with `shardstream verify --add-checksums {where}`"
    )


def _sample_sizes(reader: Reader) -> np.ndarray | None:
    """Packed byte size of every sample, from the offsets where the reader has them."""
    offsets = getattr(reader, "offsets", None)
    if isinstance(offsets, np.ndarray):
        return np.diff(offsets.astype(np.int64))
    shards = getattr(reader, "shards", None)
    if shards:
        parts = [_sample_sizes(shard) for shard in shards]
        if all(p is not None for p in parts):
            return np.concatenate(parts)
    n = len(reader)
    if not n:
        return None
    probe = np.linspace(0, n - 1, min(n, 32)).astype(np.int64)
    sizes = []
    for i in probe.tolist():
        raw = reader.get(i, raw=True)
        sizes.append(len(raw) if isinstance(raw, (bytes, bytearray, memoryview)) else 0)
    return np.full(n, float(np.mean(sizes)))


def _weights_of(reader: Reader, expression: str) -> np.ndarray:
    from .query import expression_weights  # DuckDB is imported on use

    return expression_weights(reader, expression)


def _check_mode_for_preset(mode: _Mode) -> None:
    if mode.name != "pytorch":
        raise ConfigError(
            f".preset() needs .pytorch() (its device step takes torch tensors), not .{mode.name}()"
        )
    if mode.tensors is not None:
        raise ChainError(f"Tensors have already been specified in the .{mode.name} method.")
    if mode.decode_method is not None:
        raise ConfigError("decode_method cannot be used with .preset(): a preset gets raw bytes")


def _warn_unseeded(chain: _Chain) -> None:
    if not chain.seed_given:
        warnings.warn(
            "offset is set on a shuffled loader without a seed: the order differs between "
            "initialisations, so the offset skips different samples each time. To resume at a "
            "predictable position, pass a seed (Loader(..., seed=N) or "
            "reader.dataloader(seed=N)) or restore a state_dict.",
            UserWarning,
            stacklevel=3,
        )


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _non_negative_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _timeout(value: Any) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(value)
        or not value > 0
    ):
        raise ConfigError(f"timeout={value!r} must be a positive number of seconds or None")
    return float(value)


def _is_cuda(device: Any) -> bool:
    if device is None:
        return False
    return str(device).startswith("cuda")


def _to_device(tree: Any, device: Any) -> Any:
    import torch

    if isinstance(tree, torch.Tensor):
        return tree.to(device, non_blocking=True)
    if isinstance(tree, Mapping):
        return {k: _to_device(v, device) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        values = [_to_device(v, device) for v in tree]
        return values if isinstance(tree, list) else type(tree)(values)
    return tree


def _progress_bar(total: int, epoch: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=f"epoch {epoch}", unit="batch")


def _update_bar(bar: Any, stats: Mapping[str, Any]) -> None:
    bar.update(1)
    rate = stats.get("samples_per_s", 0.0)
    stall = stats.get("stall_pct", 0.0)
    bar.set_postfix_str(f"{rate:,.0f} img/s, stall {stall:.0f}%", refresh=False)
