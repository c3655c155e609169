"""The framework steps of a loader chain: ``pytorch()``, ``numpy()`` and ``tensorflow()``.

Each chooses what the batches are made of and how the engine runs (workers, threads, prefetch,
timeout, distributed split); :func:`~shardstream.loader.chain.build_mode` validates the options.
:class:`~shardstream.loader.loader.Loader` inherits these steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ..errors import ConfigError, MissingDependencyError

__all__ = ["FrameworkSteps"]

_L = TypeVar("_L", bound="FrameworkSteps")


class FrameworkSteps:
    """The mode steps of Deep Lake's loader; the chain class supplies :meth:`_with_mode`."""

    def _with_mode(self: _L, name: str, **settings: Any) -> _L:
        """A copy of the chain with its framework step set (validated by ``build_mode``)."""
        raise NotImplementedError

    def pytorch(
        self: _L,
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
    ) -> _L:
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
                (strided, equal shares; see :mod:`shardstream.loader.plan`).
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
            import torch  # delayed: torch is optional (numpy() and tensorflow() run without it)
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
        return self._with_mode(
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
        self: _L,
        num_workers: int = 0,
        tensors: Sequence[str] | None = None,
        num_threads: int | None = None,
        prefetch_factor: int = 2,
        decode_method: Mapping[str, str] | None = None,
        persistent_workers: bool = False,
        timeout: float | None = None,
    ) -> _L:
        """A loader yielding numpy batches (no index; arguments as :meth:`pytorch`).

        Raises:
            ChainError, ConfigError: as for :meth:`pytorch`.
        """
        return self._with_mode(
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
        self: _L,
        num_workers: int = 0,
        collate_fn: Callable | None = None,
        tensors: Sequence[str] | None = None,
        num_threads: int | None = None,
        prefetch_factor: int = 2,
        return_index: bool = True,
        decode_method: Mapping[str, str] | None = None,
        persistent_workers: bool = False,
        timeout: float | None = None,
    ) -> _L:
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
        return self._with_mode(
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
