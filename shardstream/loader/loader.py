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
any number of times. Batches are made by the engine's :class:`~shardstream.engine.pool.WorkerPool`
and come back in order; their content depends only on the seed (never on ``num_workers`` or
``num_threads``), and ``state_dict()`` / ``load_state_dict()`` resume mid-epoch exactly.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..checks import OnError, non_negative_int, positive_int
from ..errors import ChainError, ConfigTypeError, WeightsError
from ..fastpaths import check_device
from ..order.samplers.seeds import SEED_LIMIT
from ..read.reader import Reader
from .chain import (
    Chain,
    build_mode,
    check_fields,
    check_mode_for_preset,
    check_shuffle,
    start_chain,
    warn_unseeded,
)
from .modes import FrameworkSteps
from .preset import DeviceAware, Preset, check_preset
from .query import expression_weights, query_indices, sample_by_indices
from .run import EpochRun

__all__ = ["Loader"]


class Loader(FrameworkSteps):
    """Deep Lake's ``DeepLakeDataLoader`` over a shardstream reader (``shardstream.Loader``).

    Args:
        source: a :class:`~shardstream.read.Reader`, or the path of a data file or a manifest.
        on_error: ``"raise"`` (the default) the engine's ``SampleError`` for a sample whose
            reading, decoding or transform raises, or ``"skip"`` it (counted in
            ``stats()["skipped"]``).
        ignore_errors: Deep Lake's spelling of the policy, an alias: ``True`` is
            ``on_error="skip"``, ``False`` ``on_error="raise"``.
        verbose: show a tqdm progress bar with samples/s and the input-stall share.
        seed: seed of the shuffle order, of ``sample_by`` and of every sample's random stream,
            in ``[0, 2**32)``; ``None`` draws one from the OS (kept in :meth:`state_dict`).
        verify: check every sample's bytes against the set's per-sample checksum file
            (``X.xxh3``) in the worker, before unpacking (the hash runs on the mapped bytes,
            no copy). A damaged sample raises the engine's ``SampleError`` whose cause is a
            :class:`~shardstream.errors.SampleChecksumError` naming the file, index and key,
            or with ``on_error="skip"`` is skipped and counted in ``stats()["skipped"]``.
        storage_options, cache_dir, cache_limit, prefetch_shards: for a URL ``source``
            (``s3://``, ``https://``, ...): the filesystem's options, the node-local shard cache
            and its byte limit, and how many shards are fetched ahead in the epoch's order (see
            :mod:`shardstream.read.remote`).

    Raises:
        ConfigError: ``seed`` out of range, ``source`` is neither a reader nor a path,
            ``verify`` is set and the set (or a shard) has no checksum file, ``on_error`` is
            not ``"raise"`` or ``"skip"``, ``ignore_errors`` is not a bool, or both are given.
        DatasetNotFoundError, MissingIndexError, ...: ``source`` is a path that does not open.
    """

    _chain: Chain
    _run: EpochRun

    def __init__(
        self,
        source: Reader | str | os.PathLike,
        *,
        on_error: OnError | None = None,
        ignore_errors: bool | None = None,
        verbose: bool = False,
        seed: int | None = None,
        verify: bool = False,
        storage_options: dict | None = None,
        cache_dir: str | os.PathLike | None = None,
        cache_limit: int | None = None,
        prefetch_shards: int = 4,
    ) -> None:
        chain = start_chain(
            source,
            on_error=on_error,
            ignore_errors=ignore_errors,
            verbose=verbose,
            seed=seed,
            verify=verify,
            storage_options=storage_options,
            cache_dir=cache_dir,
            cache_limit=cache_limit,
            prefetch_shards=prefetch_shards,
        )
        self._start(chain)

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
        batch_size = positive_int(batch_size, "batch_size")
        return self._with(batch_size=batch_size, drop_last=bool(drop_last))

    def shuffle(
        self,
        shuffle: bool = True,
        buffer_size: int = 2048,
        *,
        order: str = "window",
        shards_per_block: int = 4,
    ) -> Loader:
        """A loader whose epochs are shuffled within a buffer of ``buffer_size`` MiB.

        The buffer holds ``W = max(1, buffer_size MiB // mean packed sample size)`` samples;
        when ``W`` covers the view the epoch is a full permutation, otherwise runs of ``W``
        consecutive samples are shuffled and permuted within (see :mod:`shardstream.loader.plan`).
        Each epoch's order is drawn from ``(seed, epoch)``.

        ``order="blocks"`` draws the shard-block shuffle instead (:mod:`shardstream.order.
        shard_blocks`): shards permuted, then the samples of each block of ``shards_per_block``
        shards permuted together, so each rank's next stretch needs a few shards; the choice for
        a remote set whose cache is smaller than the set (``buffer_size`` is then unused).

        Args:
            shuffle: whether to shuffle (``False`` still counts as setting it).
            buffer_size: the buffer size in MiB (> 0).
            order: ``"window"`` (the buffer shuffle above) or ``"blocks"``.
            shards_per_block: shards per block of ``order="blocks"`` (>= 1).

        Raises:
            ChainError: ``"shuffle is already set"``.
            ConfigError: ``buffer_size`` is not a positive number, ``order`` unknown or
                ``shards_per_block`` not a positive integer.
        """
        settings = check_shuffle(buffer_size, order, shards_per_block)
        if self._chain.shuffle is not None:
            raise ChainError("shuffle is already set")
        loader = self._with(shuffle=bool(shuffle), **settings)
        if shuffle and self._chain.offset is not None:
            warn_unseeded(self._chain)
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
        off = non_negative_int(off, "off")
        if self._chain.shuffle:
            warn_unseeded(self._chain)
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
            check_fields(self._chain, [k for k in transform if k != "index"], "transform")
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
                :func:`shardstream.loader.query.query_indices`).

        Raises:
            QueryError: DuckDB rejects the query or it returns no usable ``index`` column.
            MissingDependencyError: duckdb is not installed.
        """

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

    def preset(self, preset: Preset, *, device: Any = None) -> Loader:
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
        preset = check_preset(preset)
        if chain.mode is not None:
            check_mode_for_preset(chain.mode)
        check_fields(self._chain, list(preset.fields), "preset")
        check_device(device, "Loader.preset")
        if isinstance(preset, DeviceAware):  # a preset may split its work by device
            preset = check_preset(preset.for_device(device))
        return self._with(preset=preset, device=device, transform_set=True)

    # --- iteration (see :class:`~shardstream.loader.run.EpochRun`) ---------------------------

    def __iter__(self) -> Loader:
        """Start (or continue) the epoch at the cursor; the loader is its own iterator."""
        self._run.start()
        return self

    def __next__(self) -> Any:
        """The next batch (or sample, when unbatched) of the current run."""
        return self._run.next()

    def __len__(self) -> int:
        """Batches of a whole epoch on this rank: ``ceil(n / (batch_size * world_size))``, or
        ``floor`` with ``drop_last``."""
        return self._run.plan().batch_count(0)

    def state_dict(self) -> dict[str, Any]:
        """The loader's position (see :meth:`EpochRun.state_dict
        <shardstream.loader.run.EpochRun.state_dict>`): a small JSON-serialisable dict."""
        return self._run.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue at a saved position: the next iteration yields exactly the batches an
        uninterrupted run would have yielded after the save.

        Raises:
            StateMismatchError: the state does not fit this loader (see :meth:`EpochRun.
                load_state_dict <shardstream.loader.run.EpochRun.load_state_dict>`).
        """
        self._run.load_state_dict(state)
        self._chain = self._run.chain

    def stats(self) -> dict[str, Any]:
        """Throughput of the current (or last) run (a :class:`~shardstream.engine.stats.
        LoaderStats`; see :meth:`EpochRun.stats <shardstream.loader.run.EpochRun.stats>`)."""
        return self._run.stats()

    def close(self) -> None:
        """Stop the workers and release the resources (idempotent; iterating again restarts)."""
        self._run.close()

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
        return self._run.epoch

    @property
    def reader(self) -> Reader:
        """The dataset the loader reads."""
        return self._chain.reader

    def __repr__(self) -> str:
        chain = self._chain
        mode = chain.mode.name if chain.mode else None
        return (
            f"Loader({chain.reader!r}, samples={len(self._run.plan())}, batch_size={chain.batch_size}, "
            f"shuffle={chain.shuffle}, mode={mode}, seed={chain.seed})"
        )

    # --- internals ----------------------------------------------------------------------------

    def _start(self, chain: Chain) -> None:
        self._chain = chain
        self._run = EpochRun(chain)

    def _with(self, **changes: Any) -> Loader:
        loader = Loader.__new__(Loader)
        loader._start(replace(self._chain, **changes))
        return loader

    def _with_mode(self, name: str, **settings: Any) -> Loader:
        return self._with(mode=build_mode(self._chain, name, **settings))


def _weights_of(reader: Reader, expression: str) -> np.ndarray:
    return expression_weights(reader, expression)
