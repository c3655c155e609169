"""Image data sets for the dinov2 loaders: ImageNet, ImageNet-22k, class folders, packed files."""

from .adapters import DatasetWithEnumeratedTargets
from .extended import ExtendedVisionDataset, PairTransform, decode_image
from .image_folder import IMG_EXTENSIONS, ImageFolder
from .image_net import ImageNet, ImageNetSplit
from .image_net_22k import ImageNet22k, read_block_list
from .packed import PackedDataset

__all__ = [
    "IMG_EXTENSIONS",
    "DatasetWithEnumeratedTargets",
    "ExtendedVisionDataset",
    "ImageFolder",
    "ImageNet",
    "ImageNet22k",
    "ImageNetSplit",
    "PackedDataset",
    "PairTransform",
    "decode_image",
    "read_block_list",
]
