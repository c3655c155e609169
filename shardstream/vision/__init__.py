"""Vision stage core: read JPEG headers, plan crops, and decode each image once into resized crops.

- :mod:`~shardstream.vision.jpeg`: :func:`jpeg_info` walks a JPEG's markers for its size, colour
  layout and EXIF orientation without decoding.
- :mod:`~shardstream.vision.crops`: torchvision-equivalent crop boxes (random-resized-crop,
  resize + centre crop) and :func:`choose_scale`, the smallest DCT scale every crop allows.
- :mod:`~shardstream.vision.decode`: :func:`decode_crops` decodes once at that scale (simplejpeg,
  Pillow for other formats) and returns uint8 crops resized as torchvision's ``resized_crop``.
"""

from __future__ import annotations

from .crops import (
    SCALE_DENOMINATORS,
    CropBox,
    center_crop_params,
    choose_scale,
    expand_sizes,
    normalize_size,
    random_resized_crop_params,
    resize_shorter_side,
)
from .decode import INTERPOLATIONS, decode_crops, decode_image, image_size, orient
from .jpeg import JpegInfo, is_jpeg, jpeg_info

__all__ = [
    "SCALE_DENOMINATORS",
    "CropBox",
    "center_crop_params",
    "choose_scale",
    "expand_sizes",
    "normalize_size",
    "random_resized_crop_params",
    "resize_shorter_side",
    "INTERPOLATIONS",
    "decode_crops",
    "decode_image",
    "image_size",
    "orient",
    "JpegInfo",
    "is_jpeg",
    "jpeg_info",
]
