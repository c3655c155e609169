"""helios' data loader creation: ``create_dataloader``, its parameters and the dataset splits.

``create_dataloader`` picks one of helios' resumable samplers (unless given one), seeds Python's
``random`` and the default NumPy generator in every worker, and returns the torch
``DataLoader`` together with the sampler, so that a trainer can call ``set_epoch`` and set
``start_iter`` (batches already consumed) to resume an epoch.

The arguments and defaults are helios 2.0's (the current release; see
:mod:`shardstream.compat.helios`): ``pin_memory`` defaults to ``False``, there is no ``debug_mode``
(helios 1.x; pass ``num_workers=0`` to load in the main process, and ``debug_mode=...`` is a
``TypeError`` here as there), and ``prefetch_factor``, ``persistent_workers``,
``pin_memory_device``, ``timeout`` and ``multiprocessing_context`` are passed to the
``DataLoader``. :meth:`DataLoaderParams.from_dict` ignores a ``debug_mode`` key, as helios 2.0
ignores every key that is not a field.

Kept from helios, quirks included:

- With ``is_distributed`` the :class:`ResumableDistributedSampler` is built **without**
  ``batch_size`` (helios does not pass it), so its ``start_iter`` counts samples of this rank,
  not batches: ``start_iter = k`` skips ``k`` indices, not ``k * batch_size``. To count
  batches, build ``ResumableDistributedSampler(dataset, ..., batch_size=batch_size)`` and pass
  it as ``sampler``.
- ``random_seed`` seeds the sampler's shuffle (``seed + epoch``), not the workers: a worker's
  seed comes from torch's global generator through ``torch.initial_seed()`` (see
  :func:`seed_worker`).
- ``shuffle`` only chooses the sampler; the ``DataLoader`` never gets it.

Differences from helios:

- An empty data set raises :class:`~shardstream.errors.ConfigError` and one without a length
  :class:`~shardstream.errors.ConfigTypeError` (helios: ``assert len(dataset)``).
- A sampler that is not resumable raises :class:`~shardstream.errors.ConfigTypeError`, which is
  a ``TypeError`` as in helios, with helios' message.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from ...errors import ConfigError, ConfigTypeError
from .resumable import (
    ResumableDistributedSampler,
    ResumableRandomSampler,
    ResumableSampler,
    ResumableSamplerType,
    ResumableSequentialSampler,
)
from .rng import get_default_seed, seed_rngs

__all__ = [
    "DataLoaderParams",
    "Dataset",
    "DatasetSplit",
    "create_dataloader",
    "seed_worker",
]


class DatasetSplit(enum.Enum):
    """The data set splits: ``TRAIN = 0``, ``VALID = 1``, ``TEST = 2``."""

    TRAIN = 0
    VALID = 1
    TEST = 2

    @staticmethod
    def from_str(label: str) -> DatasetSplit:
        """The split named ``label``: exactly ``"train"``, ``"valid"`` or ``"test"``.

        The match is case-sensitive, and the validation split is ``"valid"`` (not ``"val"``).

        Args:
            label: the split's name.

        Returns:
            The split.

        Raises:
            ConfigError: ``label`` is none of the three names (a ``ValueError``, as in helios).
        """
        split = _SPLITS_BY_NAME.get(label) if isinstance(label, str) else None
        if split is None:
            raise ConfigError(
                "invalid dataset split. Expected one of 'train', 'test', or 'valid', "
                f"but received '{label}'"
            )
        return split


_SPLITS_BY_NAME = {
    "train": DatasetSplit.TRAIN,
    "valid": DatasetSplit.VALID,
    "test": DatasetSplit.TEST,
}


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` of helios' loaders: seed ``random`` and the default NumPy generator.

    Both get ``torch.initial_seed() % 2**32``; in a worker, torch's initial seed is the loader's
    base seed (drawn from torch's global generator when the iterator starts) plus the worker
    id, so a run is reproducible when torch's global generator is seeded. torch's own
    generators are left as torch seeded them.

    Args:
        worker_id: the worker's number (unused: it is already part of torch's seed).
    """
    seed_rngs(torch.initial_seed() % 2**32, skip_torch=True)


def create_dataloader(
    dataset: TorchDataset,
    random_seed: int = get_default_seed(),
    batch_size: int = 1,
    shuffle: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
    drop_last: bool = False,
    is_distributed: bool = False,
    sampler: ResumableSamplerType | None = None,
    collate_fn: Callable | None = None,
    prefetch_factor: int | None = None,
    persistent_workers: bool = False,
    pin_memory_device: str = "",
    timeout: float = 0,
    multiprocessing_context: Any | None = None,
) -> tuple[DataLoader, ResumableSamplerType]:
    """Create the data loader of ``dataset`` and its resumable sampler.

    Without a ``sampler``: :class:`ResumableDistributedSampler` when ``is_distributed`` (rank
    and world size from the initialised process group; ``shuffle``, ``drop_last`` and
    ``random_seed`` passed on, ``batch_size`` not), else :class:`ResumableRandomSampler` when
    ``shuffle`` (``seed=random_seed``), else :class:`ResumableSequentialSampler`.

    Args:
        dataset: a map-style data set with at least one sample.
        random_seed: the sampler's seed (default: 6691, helios' default seed).
        batch_size: samples per batch.
        shuffle: shuffle each epoch (chooses the sampler; the loader itself never shuffles).
        num_workers: worker processes; 0 loads in the main process.
        pin_memory: copy batches into page-locked memory (default ``False``, as in helios 2.0;
            torch ignores it, with a warning, where there is no accelerator).
        drop_last: drop the last, incomplete batch (and, distributed, the tail that does not
            divide among the ranks).
        is_distributed: use the distributed sampler.
        sampler: a sampler to use instead; it must derive from :class:`ResumableSampler` or
            :class:`ResumableDistributedSampler`.
        collate_fn: merges samples into a batch (default: torch's ``default_collate``).
        prefetch_factor: batches loaded ahead per worker (only with workers).
        persistent_workers: keep the workers alive between epochs (only with workers).
        pin_memory_device: the device to pin memory for.
        timeout: seconds to wait for a batch from the workers (0: forever).
        multiprocessing_context: how workers start (``"fork"``, ``"spawn"``, ...).

    Returns:
        ``(data_loader, sampler)``.

    Raises:
        ConfigError: ``dataset`` is empty, or the sampler refuses an argument.
        ConfigTypeError: ``dataset`` has no length, or ``sampler`` is not resumable (also a
            ``TypeError``).
        NoProcessGroupError: ``is_distributed`` without a ``sampler`` and no initialised
            process group (a ``ValueError``, as helios' torch-derived sampler raises).
    """
    try:
        size = len(dataset)  # type: ignore[arg-type]
    except TypeError:
        raise ConfigTypeError(
            f"create_dataloader: dataset must be a map-style data set with a length, got "
            f"{type(dataset).__name__}"
        ) from None
    if size == 0:
        raise ConfigError(
            f"create_dataloader: dataset {type(dataset).__name__} is empty; a loader needs at "
            "least one sample"
        )
    if sampler is None:
        if is_distributed:
            sampler = ResumableDistributedSampler(
                dataset,  # type: ignore[arg-type]
                shuffle=shuffle,
                drop_last=drop_last,
                seed=random_seed,
            )
        elif shuffle:
            sampler = ResumableRandomSampler(
                dataset,  # type: ignore[arg-type]
                seed=random_seed,
                batch_size=batch_size,
            )
        else:
            sampler = ResumableSequentialSampler(dataset, batch_size=batch_size)  # type: ignore[arg-type]
    elif not isinstance(sampler, (ResumableSampler, ResumableDistributedSampler)):
        raise ConfigTypeError(
            "error: expected sampler to derive from one of ResumableSampler or "
            f"ResumableDistributedSampler, but received {type(sampler)}"
        )
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=drop_last,
        sampler=sampler,
        worker_init_fn=seed_worker,
        collate_fn=collate_fn,
        prefetch_factor=prefetch_factor,
        persistent_workers=persistent_workers,
        pin_memory_device=pin_memory_device,
        timeout=timeout,
        multiprocessing_context=multiprocessing_context,
    )
    return loader, sampler


@dataclasses.dataclass
class DataLoaderParams:
    """The arguments of :func:`create_dataloader` other than the data set.

    Args:
        random_seed: the sampler's seed.
        batch_size: samples per batch.
        shuffle: shuffle each epoch.
        num_workers: worker processes.
        pin_memory: use page-locked memory (default ``False``, as in helios 2.0).
        drop_last: drop the last, incomplete batch.
        is_distributed: use the distributed sampler; ``None`` lets a :class:`DataModule` set it
            from its own ``is_distributed``.
        sampler: a resumable sampler to use instead of the default one.
        collate_fn: merges samples into a batch.
        prefetch_factor: batches loaded ahead per worker.
        persistent_workers: keep the workers alive between epochs.
        pin_memory_device: the device to pin memory for.
        timeout: seconds to wait for a batch from the workers.
        multiprocessing_context: how workers start.
    """

    random_seed: int = get_default_seed()
    batch_size: int = 1
    shuffle: bool = False
    num_workers: int = 0
    pin_memory: bool = False
    drop_last: bool = False
    is_distributed: bool | None = None
    sampler: ResumableSamplerType | None = None
    collate_fn: Callable | None = None
    prefetch_factor: int | None = None
    persistent_workers: bool = False
    pin_memory_device: str = ""
    timeout: float = 0
    multiprocessing_context: Any | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every field by name (values are not copied).

        Returns:
            A new dict of the fields.
        """
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, table: Mapping[str, Any]) -> DataLoaderParams:
        """Parameters from a table (e.g. a config file): defaults, overridden by its fields.

        ``sampler`` is ignored (a sampler cannot come from a config table), and so is any key
        that is not a field name.

        Args:
            table: field names to values.

        Returns:
            The new parameters.
        """
        params = cls()
        for field in dataclasses.fields(params):
            if field.name in table and field.name != "sampler":
                setattr(params, field.name, table[field.name])
        return params


@dataclasses.dataclass
class Dataset:
    """A data set together with the parameters of its data loader.

    Args:
        dataset: the (torch) data set.
        params: its loader's parameters.
    """

    dataset: TorchDataset
    params: DataLoaderParams

    def dict(self) -> dict[str, Any]:
        """The keyword arguments of :func:`create_dataloader` for this data set.

        Returns:
            ``params.to_dict()`` plus ``"dataset"``.
        """
        table = self.params.to_dict()
        table["dataset"] = self.dataset
        return table
