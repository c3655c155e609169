"""dinov2's data loading API: ``make_dataset``, ``make_data_loader``, ``SamplerType``.

Same names, arguments, defaults and behaviour as ``dinov2.data`` (``loaders.py``), built on
shardstream's samplers (:func:`~shardstream.order.samplers.make_sampler`) and data sets
(:mod:`shardstream.compat.dinov2.datasets`), without torchvision.

A dataset string is ``Name:key=value:key=value...``:

* ``ImageNet:split=TRAIN:root=<folder>:extra=<folder>`` (``split`` by member name: ``TRAIN``,
  ``VAL`` or ``TEST``);
* ``ImageNet22k:root=<folder>:extra=<folder>``;
* ``ImageFolder:root=<folder>`` (one sub-folder per class, as torchvision's ``ImageFolder``);
* ``Packed:path=<file or glob>`` (a packed data set file, or shards matched by a glob; also a
  ``*.manifest`` or a URL such as ``Packed:path=s3://bucket/train.manifest``, whose
  credentials and endpoint come from the environment, e.g. ``AWS_ENDPOINT_URL``).

Values cannot contain ``:``, except a URL's ``://`` (and an fsspec chain's ``::``). Errors are raised where dinov2 raises them, as typed exceptions
deriving from the same builtins: a token without exactly one ``=`` or an unknown name raises
:class:`~shardstream.errors.DatasetStringError` (``ValueError``), a key no data set takes
:class:`~shardstream.errors.DatasetStringKeyError` (``AssertionError``), an unknown split
:class:`~shardstream.errors.DatasetSplitError` (``KeyError``), a key the named data set does
not take (e.g. ``split`` for ``ImageNet22k``) or a missing required key
:class:`~shardstream.errors.DatasetArgumentError` (``TypeError``). Unlike dinov2, a key given
twice is refused (dinov2 keeps the last value).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch.utils.data import DataLoader, Dataset

from ...checks import check_int
from ...errors import (
    ConfigError,
    DatasetArgumentError,
    DatasetStringError,
    DatasetStringKeyError,
)
from .datasets import (
    DatasetWithEnumeratedTargets,
    ImageFolder,
    ImageNet,
    ImageNet22k,
    ImageNetSplit,
    PackedDataset,
)
from .sampler_factory import make_sampler
from .sampler_types import SamplerType

__all__ = [
    "DATASET_KINDS",
    "DatasetKind",
    "DatasetWithEnumeratedTargets",
    "SamplerType",
    "make_data_loader",
    "make_dataset",
    "parse_dataset_str",
]

logger = logging.getLogger("shardstream.compat.dinov2.loaders")


@dataclass(frozen=True)
class DatasetKind:
    """A data set a dataset string can name, and the keys it takes.

    Attributes:
        dataset_class: the class ``make_dataset`` builds.
        required: keys the string must give.
        optional: further keys it may give.
    """

    dataset_class: type
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


DATASET_KINDS: dict[str, DatasetKind] = {
    "ImageNet": DatasetKind(ImageNet, required=("split", "root", "extra")),
    "ImageNet22k": DatasetKind(ImageNet22k, required=("root", "extra")),
    "ImageFolder": DatasetKind(ImageFolder, required=("root",)),
    "Packed": DatasetKind(PackedDataset, required=("path",)),
}
"""Data set names of dataset strings (dinov2's two, then shardstream's)."""

DATASET_KEYS: tuple[str, ...] = ("root", "extra", "split", "path")
"""Every key a dataset string may use (dinov2's three, plus ``path``)."""


def parse_dataset_str(dataset_str: str) -> tuple[type, dict[str, Any]]:
    """Split a dataset string into the data set class and its keyword arguments.

    Args:
        dataset_str: e.g. ``"ImageNet:split=TRAIN:root=/data/in1k:extra=/data/in1k-extra"``.

    Returns:
        ``(class, kwargs)``; ``split`` is converted to an :class:`ImageNetSplit`.

    Raises:
        DatasetStringError: a token is not ``key=value`` with exactly one ``=``, a key is given
            twice, or the name is unknown (a ``ValueError``).
        DatasetStringKeyError: a key other than root, extra, split, path (an
            ``AssertionError``).
        DatasetArgumentError: the named data set does not take a given key or needs a missing
            one (a ``TypeError``).
        DatasetSplitError: ``split`` is not ``TRAIN``, ``VAL`` or ``TEST`` (a ``KeyError``).
    """
    if not isinstance(dataset_str, str):
        raise DatasetStringError(f"dataset_str must be a str, got {dataset_str!r}")
    name, *tokens = _split_tokens(dataset_str)
    kwargs: dict[str, Any] = {}
    for token in tokens:
        parts = token.split("=")
        if len(parts) != 2:
            raise DatasetStringError(
                f'dataset string "{dataset_str}": token "{token}" must be key=value with '
                f"exactly one '=' (values cannot contain ':' or '=')"
            )
        key, value = parts
        if key not in DATASET_KEYS:
            raise DatasetStringKeyError(
                f'dataset string "{dataset_str}": unknown key "{key}" in token "{token}"; '
                f"use {', '.join(DATASET_KEYS)}"
            )
        if key in kwargs:
            raise DatasetStringError(
                f'dataset string "{dataset_str}": key "{key}" is given twice (token "{token}")'
            )
        kwargs[key] = value
    kind = DATASET_KINDS.get(name)
    if kind is None:
        raise DatasetStringError(
            f'Unsupported dataset "{name}" in dataset string "{dataset_str}"; use one of '
            f"{', '.join(DATASET_KINDS)}"
        )
    _check_keys(dataset_str, name, kind, kwargs)
    if kind.dataset_class is ImageNet:
        kwargs["split"] = ImageNetSplit.from_name(kwargs["split"])
    return kind.dataset_class, kwargs


#: The head of a URL value: fsspec chain links, scheme, host and port (``https://h:8080``).
_URL_HEAD = re.compile(r"(?:[A-Za-z][\w+.\-]*::)*[A-Za-z][\w+.\-]*://[^/:]*(?::\d+(?=[/:]|$))?")


def _split_tokens(dataset_str: str) -> list[str]:
    """``dataset_str`` split at its ``:`` separators; the colons of a URL value
    (``path=s3://bucket/set.manifest``, ``path=https://host:8080/x``) stay in the value."""
    protected = _URL_HEAD.sub(lambda m: m.group().replace(":", "\0"), dataset_str)
    tokens, start = [], 0
    for index, char in enumerate(protected):
        if char == ":":
            tokens.append(dataset_str[start:index])
            start = index + 1
    tokens.append(dataset_str[start:])
    return tokens


def make_dataset(
    *,
    dataset_str: str,
    transform: Callable[[Any], Any] | None = None,
    target_transform: Callable[[Any], Any] | None = None,
) -> Dataset:
    """Create the data set a dataset string describes.

    Logs the string and the number of samples; a data set without ``transform`` /
    ``target_transform`` attributes gets them set (as dinov2 does).

    Args:
        dataset_str: a dataset string (see the module docstring), e.g.
            ``"ImageNet:split=TRAIN:root=/data/in1k:extra=/data/in1k-extra"``.
        transform: a function of the image.
        target_transform: a function of the target.

    Returns:
        The data set.

    Raises:
        DatasetStringError, DatasetStringKeyError, DatasetArgumentError, DatasetSplitError:
            the string is invalid (see :func:`parse_dataset_str`).
        DatasetNotFoundError: files the data set needs are missing.
    """
    logger.info('using dataset: "%s"', dataset_str)
    dataset_class, kwargs = parse_dataset_str(dataset_str)
    dataset = dataset_class(transform=transform, target_transform=target_transform, **kwargs)
    logger.info("# of dataset samples: %s", f"{len(dataset):,d}")
    if not hasattr(dataset, "transform"):
        dataset.transform = transform
    if not hasattr(dataset, "target_transform"):
        dataset.target_transform = target_transform
    return dataset


def make_data_loader(
    *,
    dataset: Dataset,
    batch_size: int,
    num_workers: int,
    shuffle: bool = True,
    seed: int = 0,
    sampler_type: SamplerType | None = SamplerType.INFINITE,
    sampler_size: int = -1,
    sampler_advance: int = 0,
    drop_last: bool = True,
    persistent_workers: bool = False,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> DataLoader:
    """Create a torch ``DataLoader`` with dinov2's sampler for ``sampler_type``.

    The sampler is :func:`~shardstream.order.samplers.make_sampler`'s (rank and world size
    from the initialised ``torch.distributed`` group): ``INFINITE`` → ``InfiniteSampler``,
    ``SHARDED_INFINITE`` / ``SHARDED_INFINITE_NEW`` → ``ShardedInfiniteSampler`` (old / new
    slice shuffle), ``EPOCH`` → ``EpochSampler`` with ``sampler_size`` samples per epoch
    (``len(dataset)`` when ``<= 0``), ``DISTRIBUTED`` → ``DistributedSampler`` (torch's, with
    ``drop_last=False``; it needs an initialised process group, as in dinov2), ``None`` → no sampler (the loader reads in order; ``shuffle`` is
    ignored). The loader uses ``pin_memory=True``.

    Every sampler has ``state_dict()`` / ``load_state_dict()`` (``loader.sampler``): a state
    counts the indices the sampler has handed to the loader. With ``num_workers == 0`` that is
    exactly the batches consumed times ``batch_size``; with workers the loader fetches
    ``num_workers * prefetch_factor`` batches ahead, so the state is that many batches ahead
    of the consumer. With ``drop_last`` and a finite sampler, a state taken right after an
    epoch's last full batch still holds the epoch's dropped tail: the resumed loader's first
    pass yields no batch, and the next pass starts the following epoch.

    Args:
        dataset: the data set (its length sizes the sampler).
        batch_size: samples per batch (>= 1).
        num_workers: loader worker processes (0: load in this process).
        shuffle: shuffle samples.
        seed: the sampler's seed.
        sampler_type: which sampler (see above).
        sampler_size: samples per epoch for ``EPOCH``; ``-1`` for the whole data set.
        sampler_advance: samples to skip (infinite samplers only).
        drop_last: drop the last incomplete batch.
        persistent_workers: keep the workers alive between epochs (needs ``num_workers > 0``).
        collate_fn: merges a list of samples into a batch (torch's default when ``None``).

    Returns:
        The data loader.

    Raises:
        ConfigError: ``batch_size`` or ``num_workers`` is out of range, ``persistent_workers``
            without workers, or an option the sampler refuses (``sampler_size > 0`` for an
            infinite or distributed sampler, ``sampler_advance > 0`` for ``DISTRIBUTED``).
        UnsupportedOptionError: ``sampler_advance > 0`` with ``EPOCH`` (dinov2 raises
            ``NotImplementedError``).
        NoProcessGroupError: ``DISTRIBUTED`` without an initialised process group (a
            ``ValueError``: torch's ``DistributedSampler`` raises it in dinov2).
    """
    batch_size = _check_count(batch_size, "batch_size", low=1)
    num_workers = _check_count(num_workers, "num_workers", low=0)
    if persistent_workers and num_workers == 0:
        raise ConfigError("make_data_loader: persistent_workers=True needs num_workers > 0")
    sampler = make_sampler(
        # torch's Dataset declares no __len__ (map-style ones have it; len() raises otherwise)
        dataset=dataset,  # type: ignore[arg-type]
        type=sampler_type,
        shuffle=shuffle,
        seed=seed,
        size=sampler_size,
        advance=sampler_advance,
    )
    logger.info("using PyTorch data loader")
    data_loader = DataLoader(
        dataset,
        sampler=sampler,
        batch_size=batch_size,
        num_workers=num_workers,
        pin_memory=True,
        drop_last=drop_last,
        persistent_workers=persistent_workers,
        collate_fn=collate_fn,
    )
    try:
        logger.info("# of batches: %s", f"{len(data_loader):,d}")
    except TypeError:  # the sampler has no length
        logger.info("infinite data loader")
    return data_loader


def _check_keys(dataset_str: str, name: str, kind: DatasetKind, kwargs: dict[str, Any]) -> None:
    accepted = (*kind.required, *kind.optional)
    unexpected = [key for key in kwargs if key not in accepted]
    if unexpected:
        raise DatasetArgumentError(
            f'dataset string "{dataset_str}": {name} does not take the key "{unexpected[0]}"; '
            f"it takes {', '.join(accepted)}"
        )
    missing = [key for key in kind.required if key not in kwargs]
    if missing:
        raise DatasetArgumentError(
            f'dataset string "{dataset_str}": {name} needs the key'
            f"{'s' if len(missing) > 1 else ''} {', '.join(missing)} (e.g. {name}:"
            + ":".join(f"{key}=..." for key in kind.required)
            + ")"
        )


def _check_count(value: object, name: str, *, low: int) -> int:
    return check_int(value, name, "make_data_loader", low=low)
