"""shardstream: packed, checksummed image datasets streamed into PyTorch training.

The public names of datadings, dinov2.data, helios, stable_pretraining's DINO and Deep Lake's loader
live in the modules where their behaviour lives; :data:`EXPORTS` below is the one table that
re-exports them here. Each is imported on first use, so ``import shardstream`` does not import
torch; a name whose module needs a missing optional dependency raises
:class:`~shardstream.errors.MissingDependencyError`.
"""

from __future__ import annotations

from typing import Any

from . import errors as errors
from . import loader as _loader  # noqa: F401 (gives Reader.dataloader() its loader; see read.reader)
from ._lazy import resolve_lazy

__version__ = "0.1.0"

#: public name -> the module (under shardstream) that defines it
EXPORTS: dict[str, str] = {
    # the format
    "ChecksumWarning": "format.integrity",
    "convert_legacy_index": "format.legacy",
    "hash_keys": "format.keyhash",
    "hash_string": "format.keyhash",
    "load_md5file": "format.integrity",
    "packb": "format.codec",
    "unpackb": "format.codec",
    "verify_data": "format.integrity",
    "verify_index": "format.integrity",
    # readers
    "DirectoryReader": "read.directory",
    "ListReader": "read.list",
    "MsgpackReader": "read.msgpack",
    "Reader": "read.reader",
    "ShardedReader": "read.sharded",
    "ZipFileReader": "read.zipfile",
    "open_remote": "read.remote.reader",
    "ShardCache": "read.remote.cache",
    # writers and conversion
    "convert": "write.conversion",
    "ConvertReport": "write.conversion",
    "FileWriter": "write.writer",
    "Item": "write.conversion",
    "query_user": "write.prompt",
    "RawWriter": "write.writer",
    "ShardedWriter": "write.sharded",
    "RemoteShardedWriter": "write.remote",
    "Writer": "write.writer",
    # iteration order and samplers
    "Augment": "order.augment_base",
    "Cycler": "order.repeat",
    "DistributedSampler": "order.samplers.distributed",
    "GlobalOrderSampler": "order.samplers.global_order",
    "QuasiShuffler": "order.quasi",
    "Range": "order.range",
    "Repeater": "order.repeat",
    "sample_rng": "order.samplers.seeds",
    "sample_seed": "order.samplers.seeds",
    "Shuffler": "order.shuffle",
    # Deep Lake's chainable loader
    "Loader": "loader.loader",
    # presets and augmentation
    "collate_data_and_cast": "vision.collate",
    "DataAugmentationDINO": "vision.augmentations",
    "DenseEvalPreset": "vision.dense",
    "DinoPreset": "vision.dino",
    "EvalPreset": "vision.supervised",
    "make_classification_eval_preset": "vision.supervised",
    "make_classification_train_preset": "vision.supervised",
    "MaskingGenerator": "vision.masking",
    "SegmentationPreset": "vision.dense",
    "SupervisedPreset": "vision.supervised",
    # datadings' torch integration
    "Compose": "compat.datadings.compose",
    "CompressedToPIL": "compat.datadings.compressed_pil",
    "Dataset": "compat.datadings.torch_data",
    "dict2tuple": "compat.datadings.compose",
    "IterableDataset": "compat.datadings.iterable",
    "no_rng": "compat.datadings.compose",
    # dinov2.data
    "DatasetWithEnumeratedTargets": "compat.dinov2.datasets.adapters",
    "EpochSampler": "compat.dinov2.samplers",
    "GaussianBlur": "compat.dinov2.transforms",
    "IMAGENET_DEFAULT_MEAN": "compat.dinov2.transforms",
    "IMAGENET_DEFAULT_STD": "compat.dinov2.transforms",
    "InfiniteSampler": "compat.dinov2.samplers",
    "make_classification_eval_transform": "compat.dinov2.transforms",
    "make_classification_train_transform": "compat.dinov2.transforms",
    "make_data_loader": "compat.dinov2.loaders",
    "make_dataset": "compat.dinov2.loaders",
    "make_normalize_transform": "compat.dinov2.transforms",
    "make_sampler": "compat.dinov2.sampler_factory",
    "MaybeToTensor": "compat.dinov2.transforms",
    "SamplerType": "compat.dinov2.sampler_types",
    "ShardedInfiniteSampler": "compat.dinov2.samplers",
    # helios
    "COLLATE_FN_REGISTRY": "compat.helios.factories",
    "create_collate_fn": "compat.helios.factories",
    "create_dataloader": "compat.helios.dataloader",
    "create_dataset": "compat.helios.factories",
    "DataLoaderParams": "compat.helios.dataloader",
    "DataModule": "compat.helios.datamodule",
    "DATASET_REGISTRY": "compat.helios.factories",
    "DatasetSplit": "compat.helios.dataloader",
    "ResumableDistributedSampler": "compat.helios.resumable",
    "ResumableRandomSampler": "compat.helios.resumable",
    "ResumableSampler": "compat.helios.resumable",
    "ResumableSamplerType": "compat.helios.resumable",
    "ResumableSequentialSampler": "compat.helios.resumable",
    # stable_pretraining's DINO
    "DINO": "methods.dino.model",
    "DINOOutput": "methods.dino.model",
    "DINOProjector": "methods.dino.projector",
    "DINOv1Loss": "methods.dino.loss",
    "TeacherStudentWrapper": "methods.dino.wrapper",
}

__all__ = sorted([*EXPORTS, "errors"])


def __getattr__(name: str) -> Any:
    """Import a public name from its home module on first use.

    Raises:
        AttributeError: no such name.
        MissingDependencyError: the name's module needs torch and torch is not installed.
    """
    return resolve_lazy(__name__, EXPORTS, name, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
