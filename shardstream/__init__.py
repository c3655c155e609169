"""shardstream: packed, checksummed image datasets streamed into PyTorch training.

The public names of datadings, dinov2.data, helios, stable_pretraining's DINO and Deep Lake's loader
live in the modules where their behaviour lives; this module only re-exports them.
"""

from . import errors
from ._lazy import resolve_lazy
from .format import (
    ChecksumWarning,
    convert_legacy_index,
    hash_keys,
    hash_string,
    load_md5file,
    packb,
    unpackb,
    verify_data,
    verify_index,
)
from .load.chain import Loader
from .order import (
    TORCH_SAMPLERS,
    Augment,
    Cycler,
    GlobalOrderSampler,
    QuasiShuffler,
    Range,
    Repeater,
    SamplerType,
    Shuffler,
    sample_rng,
    sample_seed,
)
from .read import (
    DirectoryReader,
    ListReader,
    MsgpackReader,
    Reader,
    ShardedReader,
    ZipFileReader,
)
from .write import (
    ConvertReport,
    FileWriter,
    Item,
    RawWriter,
    ShardedWriter,
    Writer,
    convert,
    query_user,
)

__version__ = "0.1.0"

#: torch-based names of shardstream.load re-exported here (resolved on first use)
_LOAD_NAMES = (
    "COLLATE_FN_REGISTRY",
    "Compose",
    "CompressedToPIL",
    "DATASET_REGISTRY",
    "DataLoaderParams",
    "DataModule",
    "Dataset",
    "DatasetSplit",
    "DatasetWithEnumeratedTargets",
    "IterableDataset",
    "create_collate_fn",
    "create_dataloader",
    "create_dataset",
    "dict2tuple",
    "make_data_loader",
    "make_dataset",
    "no_rng",
)

#: other torch-based names: name -> module that defines it (resolved on first use)
_LAZY_NAMES = {
    "DataAugmentationDINO": "shardstream.vision.augmentations",
    "MaskingGenerator": "shardstream.vision.masking",
    "collate_data_and_cast": "shardstream.vision.collate",
    "DinoPreset": "shardstream.vision.dino",
    "SupervisedPreset": "shardstream.vision.supervised",
    "EvalPreset": "shardstream.vision.supervised",
    "SegmentationPreset": "shardstream.vision.dense",
    "DenseEvalPreset": "shardstream.vision.dense",
    "make_classification_train_preset": "shardstream.vision.supervised",
    "make_classification_eval_preset": "shardstream.vision.supervised",
    "GaussianBlur": "shardstream.vision.transforms",
    "MaybeToTensor": "shardstream.vision.transforms",
    "IMAGENET_DEFAULT_MEAN": "shardstream.vision.transforms",
    "IMAGENET_DEFAULT_STD": "shardstream.vision.transforms",
    "make_normalize_transform": "shardstream.vision.transforms",
    "make_classification_train_transform": "shardstream.vision.transforms",
    "make_classification_eval_transform": "shardstream.vision.transforms",
    "DINO": "shardstream.methods.dino",
    "DINOOutput": "shardstream.methods.dino",
    "DINOProjector": "shardstream.methods.dino",
    "DINOv1Loss": "shardstream.methods.dino",
    "TeacherStudentWrapper": "shardstream.methods.dino",
}

__all__ = [
    "Augment",
    "COLLATE_FN_REGISTRY",
    "ChecksumWarning",
    "Compose",
    "CompressedToPIL",
    "ConvertReport",
    "Cycler",
    "DATASET_REGISTRY",
    "DINO",
    "DINOOutput",
    "DINOProjector",
    "DINOv1Loss",
    "DataAugmentationDINO",
    "DataLoaderParams",
    "DataModule",
    "Dataset",
    "DatasetSplit",
    "DatasetWithEnumeratedTargets",
    "DenseEvalPreset",
    "DinoPreset",
    "DirectoryReader",
    "DistributedSampler",
    "EpochSampler",
    "EvalPreset",
    "FileWriter",
    "GaussianBlur",
    "GlobalOrderSampler",
    "IMAGENET_DEFAULT_MEAN",
    "IMAGENET_DEFAULT_STD",
    "InfiniteSampler",
    "Item",
    "IterableDataset",
    "ListReader",
    "Loader",
    "MaskingGenerator",
    "MaybeToTensor",
    "MsgpackReader",
    "QuasiShuffler",
    "Range",
    "RawWriter",
    "Reader",
    "Repeater",
    "ResumableDistributedSampler",
    "ResumableRandomSampler",
    "ResumableSampler",
    "ResumableSamplerType",
    "ResumableSequentialSampler",
    "SamplerType",
    "SegmentationPreset",
    "ShardedInfiniteSampler",
    "ShardedReader",
    "ShardedWriter",
    "Shuffler",
    "SupervisedPreset",
    "TeacherStudentWrapper",
    "Writer",
    "ZipFileReader",
    "collate_data_and_cast",
    "convert",
    "convert_legacy_index",
    "create_collate_fn",
    "create_dataloader",
    "create_dataset",
    "dict2tuple",
    "errors",
    "hash_keys",
    "hash_string",
    "load_md5file",
    "make_classification_eval_preset",
    "make_classification_eval_transform",
    "make_classification_train_preset",
    "make_classification_train_transform",
    "make_data_loader",
    "make_dataset",
    "make_normalize_transform",
    "make_sampler",
    "no_rng",
    "packb",
    "query_user",
    "sample_rng",
    "sample_seed",
    "unpackb",
    "verify_data",
    "verify_index",
]


def __getattr__(name: str):
    """Resolve torch-based names lazily (importing shardstream does not import torch)."""
    if name in TORCH_SAMPLERS:
        from . import order

        return getattr(order, name)
    if name in _LOAD_NAMES:
        from . import load

        return getattr(load, name)
    if name in _LAZY_NAMES:
        package, module = _LAZY_NAMES[name].rsplit(".", 1)
        return resolve_lazy(package, {name: module}, name, globals())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
