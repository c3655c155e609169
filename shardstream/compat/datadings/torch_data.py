"""datadings' PyTorch integration: map-style and iterable datasets over readers, resumable.

:class:`Dataset` serves ``reader.get(i)`` to a sampler; :class:`IterableDataset` streams the
reader in contiguous shards, one per (rank, loader worker), with datadings 3.4.7's shard formula
and epoch rotation (see :mod:`shardstream.compat.datadings.shards`). Both apply the same transforms: a
callable on the whole sample dict, or a dict ``{field: transform(value, params)}`` with
``params = rng(sample)`` (see :class:`~shardstream.compat.datadings.compose.Compose`).

Differences from datadings 3.4.7:

- :class:`IterableDataset` has ``state_dict()`` / ``load_state_dict()`` and
  :meth:`IterableDataset.state_after`, which turns the number of batches a training loop has
  consumed into the state to save (the loader's workers prefetch ahead of the loop, so their
  own progress is not what the loop received). It also has ``set_epoch``.
- Iterating in the main process (``num_workers=0``) works (some datadings versions crashed).
- A transform dict naming a field the sample lacks raises
  :class:`~shardstream.errors.MissingFieldError` (a ``KeyError``) naming the field and the
  sample's fields; invalid arguments raise :class:`~shardstream.errors.ConfigError`.
- :class:`Dataset` implements ``__getitems__`` so a ``DataLoader`` fetches each batch with one
  ``reader.getitems`` call.
- In a loader worker, :class:`IterableDataset` reads its shard in blocks of about
  ``release_bytes`` (8 MB) and closes the worker's reader between blocks, so the pages of a
  memory-mapped data file do not stay resident in the worker for the whole epoch (datadings
  closes the reader only at the end of the pass, as this class does in the main process).
- Readers need only ``get``/``iter``/``len``; any datadings or shardstream reader works.

What datadings does with sizes that do not divide: the shards still partition the reader, so
every sample is read exactly once per epoch across all ranks and workers, but shard lengths
differ by up to one sample, so ranks (and workers) may yield different numbers of samples and
batches per epoch. A loop with a collective per batch (DDP) can then wait forever on the rank
with fewer batches. datadings (and this class) only refuse the case where a last batch could
be empty (``0 < (n / num_shards) % batch_size < 1``, :class:`~shardstream.errors.UnevenShardsError`);
use :class:`~shardstream.order.samplers.GlobalOrderSampler` with :class:`Dataset` for equal
counts per rank.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.distributed import get_rank, get_world_size, is_available, is_initialized
from torch.utils.data import Dataset as _TorchDataset
from torch.utils.data import IterableDataset as _TorchIterableDataset
from torch.utils.data import get_worker_info

from ...errors import ConfigError, MissingFieldError, StateMismatchError
from ...order.samplers._common import check_bool, check_int
from ...order.state import check_state, state_counter
from ...read.open import open_dataset
from .compose import Compose, dict2tuple, no_rng
from .compressed_pil import CompressedToPIL
from .shards import batch_count, check_last_batch, round_robin_taken, shard_bounds, shard_index

__all__ = [
    "Compose",
    "CompressedToPIL",
    "Dataset",
    "IterableDataset",
    "dict2tuple",
    "no_rng",
]

_KIND = "IterableDataset"


def _identity(sample: Any) -> Any:
    return sample


class _FieldTransforms:
    """``sample[field] = transform(sample[field], params)`` for each entry, ``params = rng(sample)``."""

    def __init__(self, transforms: Mapping[str, Callable], rng: Callable[[Any], Mapping]) -> None:
        for field, transform in transforms.items():
            if not callable(transform):
                raise ConfigError(
                    f"transforms[{field!r}] must be callable as transform(value, params), "
                    f"got {transform!r}"
                )
        self.transforms = dict(transforms)
        self.rng = rng

    def __call__(self, sample: dict) -> dict:
        params = self.rng(sample)
        sample["__params__"] = params
        for field, transform in self.transforms.items():
            try:
                value = sample[field]
            except KeyError:
                raise MissingFieldError(
                    f"transforms has an entry for the field {field!r}, but sample "
                    f"{sample.get('key')!r} has only the fields {sorted(map(str, sample))}"
                ) from None
            sample[field] = transform(value, params)
        return sample


class _TransformedReader:
    """The reader and the transform shared by both dataset classes."""

    def __init__(self, reader: Any, transforms: Any = None, rng: Callable | None = None) -> None:
        if not (hasattr(reader, "get") and hasattr(reader, "__len__")):
            raise ConfigError(f"reader must be a Reader (with get and len), got {reader!r}")
        if rng is not None and not callable(rng):
            raise ConfigError(f"rng must be callable as rng(sample) -> dict, got {rng!r}")
        self.reader = reader
        self._rng = rng or no_rng
        self._transforms = transforms
        if transforms is None:
            self.transform: Callable[[Any], Any] = _identity
        elif isinstance(transforms, Mapping):
            self.transform = _FieldTransforms(transforms, self._rng)
        elif callable(transforms):
            self.transform = transforms
        else:
            raise ConfigError(
                "transforms must be None, a callable f(sample) -> sample or a dict "
                f"{{field: transform(value, params)}}, got {transforms!r}"
            )


class Dataset(_TransformedReader, _TorchDataset):
    """A map-style torch dataset: ``dataset[i]`` is the transformed ``reader.get(i)``.

    Pair it with a sampler, e.g. :class:`~shardstream.order.samplers.GlobalOrderSampler` for a
    resumable shuffled order that splits evenly across ranks.

    Example (the datadings documentation's)::

        transforms = {"a": Compose(add), "b": Compose(sub), "c": Compose((add, sub))}
        dataset = Dataset(ListReader(samples), transforms=transforms, rng=rng)
        for i in range(len(dataset)):
            print(dataset[i])

    ``reader`` may also be a dataset path (``"train.msgpack"``, a shard manifest), opened as
    :class:`~shardstream.loader.loader.Loader` opens one. The dataset then owns that reader: close it
    with :meth:`close` or ``with Dataset(path) as dataset:`` (each DataLoader worker holds its
    own copy, released when the worker exits). A reader passed in is never closed by the dataset.

    Args:
        reader: the reader (any shardstream or datadings reader), or a dataset path.
        transforms: ``None`` (samples as read); a callable ``f(sample) -> sample``; or a dict
            ``{field: t}`` where ``t(value, params)`` replaces ``sample[field]`` (e.g. a
            :class:`Compose`), with ``params = rng(sample)`` stored as ``sample["__params__"]``.
        rng: ``rng(sample) -> dict`` of parameters for the dict form; default :func:`no_rng`.

    Raises:
        ConfigError: ``reader``, ``transforms`` or ``rng`` is of the wrong kind.
        DatasetNotFoundError: ``reader`` is a path with no dataset there (and the other errors
            of :class:`~shardstream.read.MsgpackReader` for a damaged file).
    """

    #: in a loader worker, the reader's mapped pages are released after this many samples, so a
    #: worker's resident memory stays bounded over an epoch of random reads
    release_samples = 256

    def __init__(self, reader: Any, transforms: Any = None, rng: Callable | None = None) -> None:
        self._owns_reader = isinstance(reader, (str, os.PathLike))
        if self._owns_reader:
            reader = _open_path(reader)
        _TransformedReader.__init__(self, reader, transforms, rng)
        self._since_release = 0

    def close(self) -> None:
        """Close the reader when this dataset opened it from a path (idempotent); a reader
        that was passed in stays open: its owner closes it."""
        if self._owns_reader:
            self.reader.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, index: int) -> Any:
        """The transformed sample at ``index``.

        Raises:
            IndexError: ``index`` out of range.
            MissingFieldError: a transform dict names a field the sample lacks.
        """
        sample = self.reader.get(index)
        self._count_reads(1)
        return self.transform(sample)

    def _count_reads(self, count: int) -> None:
        self._since_release += count
        if self._since_release >= self.release_samples and get_worker_info() is not None:
            self._since_release = 0
            release = getattr(self.reader, "release_pages", None)
            if release is not None:
                release()

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        """The transformed samples at ``indices`` (one ``reader.getitems`` call when available).

        Raises:
            IndexError: an index out of range.
            MissingFieldError: a transform dict names a field a sample lacks.
        """
        getitems = getattr(self.reader, "getitems", None)
        if getitems is None:
            samples = [self.reader.get(i) for i in indices]
        else:
            samples = getitems(indices)
        self._count_reads(len(samples))
        transform = self.transform
        return [transform(s) for s in samples]


@dataclass(frozen=True)
class _Position:
    """Progress within one epoch: items consumed from each worker role's shard.

    ``num_workers`` is None (and ``consumed`` empty) when nothing of the epoch is consumed; such a
    position fits any number of workers. In the resumed epoch, loader worker ``w`` plays role
    ``(w + next_worker) % num_workers``, so the loader's round robin, which always starts at
    worker 0, starts at the role that was due next.
    """

    epoch: int
    num_workers: int | None = None
    next_worker: int = 0
    consumed: tuple[int, ...] = ()


class _LivePass:
    """Counts what the pass running in this process has yielded (mutable)."""

    def __init__(self, position: _Position) -> None:
        self.epoch = position.epoch
        self.num_workers = position.num_workers
        self.next_worker = position.next_worker
        self.consumed = list(position.consumed)
        self.finished = False

    def position(self) -> _Position:
        if self.finished:
            return _Position(self.epoch + 1)
        return _Position(self.epoch, self.num_workers, self.next_worker, tuple(self.consumed))


class IterableDataset(_TransformedReader, _TorchIterableDataset):
    """A torch iterable dataset that streams one contiguous shard per rank and loader worker.

    The reader is cut into ``world_size * num_workers`` shards (datadings' formula, see
    :mod:`shardstream.compat.datadings.shards`); in epoch ``e`` worker ``w`` of rank ``r`` reads shard
    ``((r + e) * num_workers + w) % (world_size * num_workers)``. Each iteration (started by its
    first ``next``) uses :attr:`epoch` and then increments it, as in datadings. Loader workers
    iterate *copies* of this object: with ``persistent_workers=True`` each worker's copy keeps
    counting epochs; without it, every epoch starts from this object again, so call
    :meth:`set_epoch` before each epoch (datadings would repeat epoch 0's shards).

    **Resuming.** A state describes what the *consumer* of the stream received: the epoch,
    the items consumed from each worker's shard, and which worker is due next. With
    ``num_workers=0`` (or when iterating the dataset directly) :meth:`state_dict` is exact at any
    time. With loader workers, the workers run ahead of the training loop, so compute the
    state from the number of batches the loop has consumed::

        ds = IterableDataset(reader, batch_size=256)
        if saved is not None:
            ds.load_state_dict(saved)
        loader = DataLoader(ds, batch_size=256, num_workers=4, persistent_workers=True)
        consumed = 0
        for epoch in range(epochs):
            for batch in loader:
                train_step(batch)
                consumed += 1
                if consumed % 1000 == 0:
                    save(ds.state_after(consumed, num_workers=4))

    After ``load_state_dict`` the next pass skips what was consumed (each worker skips its own
    part) and continues exactly where the saved run stopped, batch for batch, as long as the
    loader uses the same ``num_workers``, ``batch_size`` and ``drop_last`` (and the default
    ``in_order=True``). Under ``torch.distributed`` every rank saves and loads its own state.

    Args:
        reader: the reader; ``reader.iter(start, stop, copy=..., chunk_size=...)`` streams a shard.
        transforms: as for :class:`Dataset`.
        rng: as for :class:`Dataset`.
        batch_size: the loader's batch size; used for datadings' check that no worker's last
            batch can be empty, and as the default of :meth:`state_after`.
        epoch: the first epoch (>= 0).
        copy: passed to ``reader.iter`` (``False``: zero-copy views where the reader can).
        chunk_size: passed to ``reader.iter``.
        group: the ``torch.distributed`` process group whose rank and size to use (default:
            the global group); without an initialised group, rank 0 of 1.

    Attributes:
        rank, world_size: read from ``torch.distributed`` when the dataset is created.
        epoch: the epoch the next iteration reads.
        release_bytes: in a loader worker, a shard is read in blocks of about this many bytes
            (for readers with an ``offsets`` index, e.g. MsgpackReader), and the worker's reader
            is closed after each block, so the worker does not keep the pages of the
            memory-mapped data file it has read resident (closed readers reopen lazily).
            datadings closes the reader once, at the end of the pass, as this class does in the
            main process (where the reader may be shared).
        release_samples: the block length in samples for readers without ``offsets``.

    Raises:
        ConfigError: an argument is of the wrong kind or out of range.
    """

    release_bytes = 8 << 20
    release_samples = 4096

    def __init__(
        self,
        reader: Any,
        transforms: Any = None,
        rng: Callable | None = None,
        batch_size: int | None = None,
        epoch: int = 0,
        copy: bool = True,
        chunk_size: int = 16,
        group: Any = None,
    ) -> None:
        _TransformedReader.__init__(self, reader, transforms, rng)
        if not hasattr(reader, "iter"):
            raise ConfigError(f"reader must have iter(start, stop, ...), got {reader!r}")
        owner = "IterableDataset"
        if batch_size is not None:
            batch_size = check_int(batch_size, "batch_size", owner, low=1)
        self.batch_size = batch_size
        self.epoch = check_int(epoch, "epoch", owner, low=0)
        self.copy = check_bool(copy, "copy", owner)
        self.chunk_size = check_int(chunk_size, "chunk_size", owner, low=1)
        if is_available() and is_initialized():
            self.rank = get_rank(group)
            self.world_size = get_world_size(group)
        else:
            self.rank = 0
            self.world_size = 1
        self._resume: _Position | None = None
        self._origin = _Position(self.epoch)
        self._live: _LivePass | None = None
        self._token = 0

    # --- shards -----------------------------------------------------------------------------

    def _bounds(self, role: int, num_workers: int, epoch: int) -> tuple[int, int]:
        length = len(self.reader)
        num_shards = self.world_size * num_workers
        check_last_batch(length, num_shards, self.batch_size)
        index = shard_index(
            rank=self.rank,
            epoch=epoch,
            num_workers=num_workers,
            worker_id=role,
            world_size=self.world_size,
        )
        return shard_bounds(length, num_shards, index)

    def _shard_length(self, role: int, num_workers: int, epoch: int) -> int:
        start, stop = self._bounds(role, num_workers, epoch)
        return stop - start

    def shard(self) -> tuple[int, int]:
        """The ``[start, stop)`` range the next iteration reads in this process.

        In the main process that is the rank's whole shard (one worker); inside a loader worker,
        the worker's shard.

        Raises:
            UnevenShardsError: datadings' empty-last-batch check fails.
        """
        num_workers, worker_id = _worker()
        return self._bounds(worker_id, num_workers, self.epoch)

    def __len__(self) -> int:
        """Length of :meth:`shard` (as datadings: the whole shard, also mid-epoch)."""
        start, stop = self.shard()
        return stop - start

    # --- iteration --------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Any]:
        return self._iterate()

    def _iterate(self) -> Iterator[Any]:
        num_workers, worker_id = _worker()
        epoch = self.epoch
        position = self._resume if self._resume is not None else _Position(epoch)
        if position.epoch != epoch:
            position = _Position(epoch)
        if position.num_workers is None:
            position = _Position(epoch, num_workers, 0, (0,) * num_workers)
        elif position.num_workers != num_workers:
            raise StateMismatchError(
                f"IterableDataset state was saved with num_workers={position.num_workers} "
                f"(counting 0 as 1) but is iterated with {num_workers}; resume with the same "
                "number of DataLoader workers"
            )
        self._resume = None
        role = (worker_id + position.next_worker) % num_workers
        start, stop = self._bounds(role, num_workers, epoch)
        first = start + position.consumed[role]
        self.epoch = epoch + 1
        self._token += 1
        token = self._token
        live = self._live = _LivePass(position)
        if first < stop:
            reader, transform, consumed = self.reader, self.transform, live.consumed
            # a worker's reader is its own copy; in the main process it may be shared, so it is
            # only closed at the end of the pass there (as datadings does)
            blocks = self._blocks(first, stop) if get_worker_info() else [(first, stop)]
            with reader:
                for block_start, block_stop in blocks:
                    samples = reader.iter(
                        block_start, block_stop, copy=self.copy, chunk_size=self.chunk_size
                    )
                    for sample in samples:
                        sample = transform(sample)
                        if self._token == token:
                            consumed[role] += 1
                        yield sample
                    if block_stop < stop:
                        reader.close()  # unmaps the pages read so far; reopened lazily
        live.finished = True

    def _blocks(self, first: int, stop: int) -> Iterator[tuple[int, int]]:
        """Split ``[first, stop)`` into blocks of at most ``release_bytes`` (or samples)."""
        offsets = getattr(self.reader, "offsets", None)
        if not (isinstance(offsets, np.ndarray) and len(offsets) == len(self.reader) + 1):
            step = self.release_samples
            for start in range(first, stop, step):
                yield start, min(stop, start + step)
            return
        start = first
        while start < stop:
            limit = int(offsets[start]) + self.release_bytes
            end = int(np.searchsorted(offsets, np.uint64(limit), side="right")) - 1
            end = min(stop, max(start + 1, end))
            yield start, end
            start = end

    # --- state ------------------------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration read ``epoch`` from its start.

        A state loaded for this same epoch stays in force (so ``set_epoch(e)`` after loading a
        state of epoch ``e`` still resumes mid-epoch).

        Args:
            epoch: the epoch (>= 0).

        Raises:
            ConfigError: ``epoch`` is not an integer >= 0.
        """
        epoch = check_int(epoch, "epoch", "IterableDataset.set_epoch", low=0)
        if self._resume is not None and self._resume.epoch == epoch == self.epoch:
            return
        self.epoch = epoch
        self._resume = None
        self._live = None
        self._token += 1
        self._origin = _Position(epoch)

    def state_dict(self) -> dict[str, Any]:
        """The position of the stream this object yielded (or will yield next).

        While this object is iterated in this process (``num_workers=0``), the state counts the
        samples yielded so far; otherwise it is the loaded state or the start of :attr:`epoch`.
        For a loader with workers use :meth:`state_after`.

        Returns:
            A small JSON-serialisable dict: ``kind``, ``length``, ``rank``, ``world_size``,
            ``epoch``, ``num_workers`` (None when nothing of the epoch is consumed),
            ``next_worker`` and ``consumed`` (items consumed per worker shard).
        """
        return self._state(self._position())

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume at a saved position: the next iteration continues the saved epoch.

        Args:
            state: a dict from :meth:`state_dict` or :meth:`state_after` of an IterableDataset
                over a reader of the same length, with the same rank and world size.

        Raises:
            StateMismatchError: the state is of another kind, from another reader length, rank
                or world size, or holds out-of-range counts. The dataset is unchanged.
        """
        position = self._parse(state)
        self.epoch = position.epoch
        self._resume = position
        self._origin = position
        self._live = None
        self._token += 1

    def state_after(
        self,
        batches_consumed: int,
        *,
        num_workers: int,
        batch_size: int | None = None,
        drop_last: bool = False,
        start: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The state after a consumer took ``batches_consumed`` batches from a ``DataLoader``.

        Models torch's loader: each worker batches its own shard, and the loader takes one batch
        from each worker in turn, skipping workers that have run out; epochs follow one another
        as with ``persistent_workers=True`` (or ``num_workers=0``).

        Args:
            batches_consumed: batches the consumer took since ``start``, across epochs.
            num_workers: the loader's ``num_workers`` (0 counts as one worker).
            batch_size: the loader's batch size (1 for ``batch_size=None``); default: the
                dataset's ``batch_size``.
            drop_last: the loader's ``drop_last``.
            start: the state the loader started from; default: the state this object had when
                it was created, last loaded or last given an epoch (iterating does not change it).

        Returns:
            A state for :meth:`load_state_dict`.

        Raises:
            ConfigError: an argument is out of range, no batch size is known, or the reader is
                empty while ``batches_consumed > 0``.
            StateMismatchError: ``start`` is not a state of this dataset, or was saved with
                another number of workers.
        """
        owner = "IterableDataset.state_after"
        batches = check_int(batches_consumed, "batches_consumed", owner, low=0)
        workers = max(1, check_int(num_workers, "num_workers", owner, low=0))
        if batch_size is None:
            batch_size = self.batch_size
        if batch_size is None:
            raise ConfigError(
                f"{owner}: pass the loader's batch_size (1 for DataLoader(batch_size=None)); the "
                "dataset was built without one"
            )
        batch_size = check_int(batch_size, "batch_size", owner, low=1)
        drop_last = check_bool(drop_last, "drop_last", owner)
        position = self._origin if start is None else self._parse(start)
        if position.num_workers is None:
            position = _Position(position.epoch, workers, 0, (0,) * workers)
        elif position.num_workers != workers:
            raise StateMismatchError(
                f"{owner}: the start state was saved with num_workers={position.num_workers}, "
                f"not {workers}"
            )
        if batches and len(self.reader) == 0:
            raise ConfigError(f"{owner}: the reader is empty, so no batch can have been consumed")

        def epoch_batches(pos: _Position) -> tuple[list[int], list[int], list[int]]:
            roles = [(pos.next_worker + i) % workers for i in range(workers)]
            left = []
            for role in roles:
                left.append(self._shard_length(role, workers, pos.epoch) - pos.consumed[role])
            counts = [batch_count(n, batch_size, drop_last) for n in left]
            return roles, left, counts

        fresh = (0,) * workers
        roles, left, counts = epoch_batches(position)
        if batches >= sum(counts) and batches:
            batches -= sum(counts)
            position = _Position(position.epoch + 1, workers, 0, fresh)
            # whole epochs repeat with period world_size (the rotation is modulo the ranks)
            period = [
                sum(epoch_batches(_Position(position.epoch + e, workers, 0, fresh))[2])
                for e in range(self.world_size)
            ]
            if sum(period):
                cycles = batches // sum(period)
                batches -= cycles * sum(period)
                position = _Position(position.epoch + cycles * self.world_size, workers, 0, fresh)
            for count in period:
                if batches < count:
                    break
                batches -= count
                position = _Position(position.epoch + 1, workers, 0, fresh)
            roles, left, counts = epoch_batches(position)
        if batches == 0:
            return self._state(self._normalize(position))
        if batches >= sum(counts):
            raise ConfigError(
                f"{owner}: a loader with num_workers={num_workers}, batch_size={batch_size} and "
                f"drop_last={drop_last} makes no batch from this reader; "
                f"batches_consumed={batches_consumed} cannot have been consumed"
            )
        taken, next_index = round_robin_taken(counts, batches)
        consumed = list(position.consumed)
        for role, items, count in zip(roles, left, taken):
            consumed[role] += min(items, count * batch_size)
        moved = _Position(position.epoch, workers, roles[next_index], tuple(consumed))
        return self._state(self._normalize(moved))

    # --- state helpers ----------------------------------------------------------------------

    def _position(self) -> _Position:
        live = self._live
        if self._resume is not None and self._resume.epoch == self.epoch:
            return self._normalize(self._resume)
        if live is not None and live.epoch + 1 == self.epoch:
            return self._normalize(live.position())
        return _Position(self.epoch)

    def _normalize(self, position: _Position) -> _Position:
        if position.num_workers is None:
            return position
        if position.next_worker == 0 and not any(position.consumed):
            return _Position(position.epoch)  # an epoch's start, even an empty epoch's
        workers = position.num_workers
        done = all(
            consumed >= self._shard_length(role, workers, position.epoch)
            for role, consumed in enumerate(position.consumed)
        )
        if done:
            return _Position(position.epoch + 1)
        return position

    def _config(self) -> dict[str, Any]:
        return {"length": len(self.reader), "rank": self.rank, "world_size": self.world_size}

    def _state(self, position: _Position) -> dict[str, Any]:
        return {
            "kind": _KIND,
            **self._config(),
            "epoch": position.epoch,
            "num_workers": position.num_workers,
            "next_worker": position.next_worker,
            "consumed": list(position.consumed),
        }

    def _parse(self, state: Mapping[str, Any]) -> _Position:
        checked = check_state(
            state,
            kind=_KIND,
            config=self._config(),
            fields=("epoch", "num_workers", "next_worker", "consumed"),
        )
        epoch = state_counter(checked, "epoch", kind=_KIND, low=0, high=None)
        consumed = checked["consumed"]
        if not isinstance(consumed, (list, tuple)):
            raise StateMismatchError(
                f"{_KIND} state has consumed={consumed!r}; it must be a list of counts"
            )
        if not consumed:
            if checked["num_workers"] is not None:
                raise StateMismatchError(
                    f"{_KIND} state has num_workers={checked['num_workers']!r} but no consumed "
                    "counts; num_workers must be None when nothing is consumed"
                )
            state_counter(checked, "next_worker", kind=_KIND, low=0, high=0)
            return _Position(epoch)
        workers = state_counter(checked, "num_workers", kind=_KIND, low=1, high=None)
        if len(consumed) != workers:
            raise StateMismatchError(
                f"{_KIND} state has {len(consumed)} consumed counts for num_workers={workers}"
            )
        next_worker = state_counter(checked, "next_worker", kind=_KIND, low=0, high=workers - 1)
        counts = []
        for role, value in enumerate(consumed):
            high = self._shard_length(role, workers, epoch)
            counts.append(
                state_counter({"consumed": value}, "consumed", kind=_KIND, low=0, high=high)
            )
        return self._normalize(_Position(epoch, workers, next_worker, tuple(counts)))


def _worker() -> tuple[int, int]:
    """``(num_workers, worker_id)`` of this loader worker; ``(1, 0)`` in the main process."""
    info = get_worker_info()
    if info is None:
        return 1, 0
    return info.num_workers, info.id


def _open_path(path: str | os.PathLike) -> Any:
    """The reader for a dataset path, opened as every entry point opens one (:func:`open_dataset`)."""
    return open_dataset(path)
