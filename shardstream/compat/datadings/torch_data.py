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
from collections.abc import Callable, Sequence
from typing import Any

from torch.utils.data import Dataset as _TorchDataset
from torch.utils.data import get_worker_info

from ...read.open import open_dataset
from .compose import Compose, dict2tuple, no_rng
from .compressed_pil import CompressedToPIL
from .iterable import IterableDataset
from .transformed import _TransformedReader

__all__ = [
    "Compose",
    "CompressedToPIL",
    "Dataset",
    "IterableDataset",
    "dict2tuple",
    "no_rng",
]


class Dataset(_TransformedReader, _TorchDataset):
    """A map-style torch dataset: ``dataset[i]`` is the transformed ``reader.get(i)``.

    Pair it with a sampler, e.g. :class:`~shardstream.order.samplers.GlobalOrderSampler` for a
    resumable shuffled order that splits evenly across ranks.

    Example (the datadings documentation's)::

        transforms = {"a": Compose(add), "b": Compose(sub), "c": Compose((add, sub))}
        dataset = Dataset(ListReader(samples), transforms=transforms, rng=rng)
        for i in range(len(dataset)):
            print(dataset[i])

    ``reader`` may also be a dataset path (``"train.msgpack"``, a shard manifest, or a URL of
    either such as ``"s3://bucket/train.manifest"``), opened as
    :class:`~shardstream.loader.loader.Loader` opens one. The dataset then owns that reader: close it
    with :meth:`close` or ``with Dataset(path) as dataset:`` (each DataLoader worker holds its
    own copy, released when the worker exits). A reader passed in is never closed by the dataset.

    Args:
        reader: the reader (any shardstream or datadings reader), or a dataset path.
        transforms: ``None`` (samples as read); a callable ``f(sample) -> sample``; or a dict
            ``{field: t}`` where ``t(value, params)`` replaces ``sample[field]`` (e.g. a
            :class:`Compose`), with ``params = rng(sample)`` stored as ``sample["__params__"]``.
        rng: ``rng(sample) -> dict`` of parameters for the dict form; default :func:`no_rng`.
        storage_options: fsspec options of a URL ``reader`` (credentials, endpoint).

    Raises:
        ConfigError: ``reader``, ``transforms`` or ``rng`` is of the wrong kind.
        DatasetNotFoundError: ``reader`` is a path with no dataset there (and the other errors
            of :class:`~shardstream.read.MsgpackReader` for a damaged file).
    """

    #: in a loader worker, the reader's mapped pages are released after this many samples, so a
    #: worker's resident memory stays bounded over an epoch of random reads
    release_samples = 256

    def __init__(
        self,
        reader: Any,
        transforms: Any = None,
        rng: Callable | None = None,
        *,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self._owns_reader = isinstance(reader, (str, os.PathLike))
        if self._owns_reader:
            reader = open_dataset(reader, storage_options=storage_options)
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
