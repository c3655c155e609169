"""Load: torch Dataset adapters, dinov2's loaders and datasets, helios' registries and DataModule.

Everything here needs torch, so every name is imported on first use: ``import shardstream`` and
``import shardstream.load`` stay free of torch.
"""

from __future__ import annotations

from .._lazy import lazy_module_hooks

#: public name -> submodule of shardstream.load that defines it
LAZY_NAMES: dict[str, str] = {
    # Deep Lake's chainable loader (needs no torch itself)
    "Loader": "chain",
    # datadings' torch integration
    "Compose": "torch_data",
    "CompressedToPIL": "torch_data",
    "Dataset": "torch_data",
    "IterableDataset": "torch_data",
    "dict2tuple": "torch_data",
    "no_rng": "torch_data",
    # dinov2
    "make_dataset": "dinov2",
    "make_data_loader": "dinov2",
    "parse_dataset_str": "dinov2",
    "DatasetWithEnumeratedTargets": "datasets",
    "ExtendedVisionDataset": "datasets",
    "ImageFolder": "datasets",
    "ImageNet": "datasets",
    "ImageNet22k": "datasets",
    "ImageNetSplit": "datasets",
    "PackedDataset": "datasets",
    # helios (its Dataset dataclass stays at shardstream.load.helios.Dataset)
    "COLLATE_FN_REGISTRY": "helios",
    "DATASET_REGISTRY": "helios",
    "SAMPLER_REGISTRY": "helios",
    "TRANSFORM_REGISTRY": "helios",
    "DataLoaderParams": "helios",
    "DataModule": "helios",
    "DatasetSplit": "helios",
    "ToImageTensor": "helios",
    "create_collate_fn": "helios",
    "create_dataloader": "helios",
    "create_dataset": "helios",
    "create_sampler": "helios",
    "create_transform": "helios",
}

__all__ = sorted(LAZY_NAMES)


__getattr__, __dir__ = lazy_module_hooks(__name__, LAZY_NAMES, globals())
