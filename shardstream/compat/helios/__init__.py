"""helios' data API on shardstream: registries, ``create_dataloader`` and ``DataModule``.

The names of ``helios.data`` (and its ``datamodule``, ``samplers`` and ``transforms`` modules)
with helios' arguments, defaults and behaviour, as of helios 2.0 (``helios-ml`` 2.0.0, the
current release) throughout: ``create_dataloader`` / ``DataLoaderParams`` default
``pin_memory=False`` and have no ``debug_mode``, ``DataModule`` registers data sets with
``_add_train_phase`` / ``_add_valid_dataset`` / ``_add_test_dataset`` (no ``_create_dataset``),
and ``rng.get_default_numpy_rng()`` returns the ``numpy.random.Generator`` itself. The seed's
``helios.data.datamodule`` page documents helios 1.x, which differs in exactly those points.
The samplers are those of :mod:`shardstream.compat.helios.resumable`, and :mod:`.rng` holds
helios' seeding helpers. Every difference from helios is listed in the docstring of the module
that holds the name.
"""

from __future__ import annotations

from . import rng
from .dataloader import DataLoaderParams, Dataset, DatasetSplit, create_dataloader, seed_worker
from .datamodule import DataModule
from .factories import COLLATE_FN_REGISTRY, DATASET_REGISTRY, create_collate_fn, create_dataset
from .registry import Registry
from .rng import get_default_seed, seed_rngs
from .samplers import (
    SAMPLER_REGISTRY,
    ResumableDistributedSampler,
    ResumableRandomSampler,
    ResumableSampler,
    ResumableSamplerType,
    ResumableSequentialSampler,
    create_sampler,
)
from .transforms import TRANSFORM_REGISTRY, ToImageTensor, create_transform

__all__ = [
    "COLLATE_FN_REGISTRY",
    "DATASET_REGISTRY",
    "DataLoaderParams",
    "DataModule",
    "Dataset",
    "DatasetSplit",
    "Registry",
    "ResumableDistributedSampler",
    "ResumableRandomSampler",
    "ResumableSampler",
    "ResumableSamplerType",
    "ResumableSequentialSampler",
    "SAMPLER_REGISTRY",
    "TRANSFORM_REGISTRY",
    "ToImageTensor",
    "create_collate_fn",
    "create_dataloader",
    "create_dataset",
    "create_sampler",
    "create_transform",
    "get_default_seed",
    "rng",
    "seed_rngs",
    "seed_worker",
]
