"""Shared helpers: numbered datasets on disk and real DataLoader runs over them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from shardstream import FileWriter, MsgpackReader
from shardstream.compat.datadings.torch_data import IterableDataset


def write_numbered(path: Path, n: int) -> Path:
    """Write ``n`` samples ``{"key": "<i:05d>", "i": i}`` with shardstream's writer."""
    with FileWriter(path, overwrite=True, disable=True) as writer:
        for i in range(n):
            writer.write({"key": f"{i:05d}", "i": i})
    return path


def numbered_dataset(
    path: Path, *, rank: int = 0, world_size: int = 1, **kwargs: Any
) -> IterableDataset:
    """An IterableDataset over ``path`` posing as ``rank`` of ``world_size`` (datadings' attributes).

    Workers read it in blocks of about 4 samples (``release_bytes=64``), so block boundaries,
    releases and resumption skips meet in every loader test.
    """
    dataset = IterableDataset(MsgpackReader(path), **kwargs)
    dataset.rank, dataset.world_size = rank, world_size
    dataset.release_bytes = 64
    return dataset


def make_loader(
    dataset: Any,
    *,
    num_workers: int,
    batch_size: int | None,
    drop_last: bool = False,
    persistent: bool = True,
) -> DataLoader:
    """A DataLoader with forked workers (persistent unless told otherwise)."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        drop_last=drop_last,
        num_workers=num_workers,
        persistent_workers=persistent and num_workers > 0,
        multiprocessing_context="fork" if num_workers else None,
    )


def batch_ids(batch: Any) -> list[int]:
    """The sample numbers in one collated batch (or one uncollated sample)."""
    value = batch["i"]
    return value.tolist() if hasattr(value, "tolist") and value.dim() else [int(value)]


def run_epochs(loader: DataLoader, epochs: int) -> list[list[list[int]]]:
    """Per epoch, the batches of sample numbers the loader yields."""
    return [[batch_ids(batch) for batch in loader] for _ in range(epochs)]


def first_error(loader: DataLoader) -> BaseException:
    """The exception the loader's first batch raises (from a worker), with its workers stopped.

    The traceback is dropped before the iterator, so the iterator is freed (and its workers
    shut down) at once: freed later by the garbage collector, torch waits 5 s per worker.
    """
    iterator = iter(loader)
    try:
        next(iterator)
    except Exception as error:
        error.__traceback__ = None
        del iterator
        return error
    raise AssertionError("the loader raised nothing")
