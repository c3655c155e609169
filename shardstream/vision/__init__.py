"""Vision stage core: read JPEG headers, plan crops, and decode each image once into resized crops.

- :mod:`~shardstream.vision.jpeg`: :func:`jpeg_info` walks a JPEG's markers for its size, colour
  layout and EXIF orientation without decoding.
- :mod:`~shardstream.vision.crops`: torchvision-equivalent crop boxes (random-resized-crop,
  resize + centre crop) and :func:`choose_scale`, the smallest DCT scale every crop allows.
- :mod:`~shardstream.vision.decode`: :func:`decode_crops` decodes once at that scale (simplejpeg,
  Pillow for other formats) and returns uint8 crops resized as torchvision's ``resized_crop``.
- :mod:`~shardstream.vision.resize`: :func:`resize_crops` resizes many whole-pixel crops of a
  decoded image at once, bit-identically to Pillow's bicubic / bilinear filters (a C extension).
- :mod:`~shardstream.vision.dense`: presets moving masks, saliency maps, boxes and points with
  their image (``SegmentationPreset``, ``DenseEvalPreset``; not imported here: they need OpenCV).
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
from .resize import EXACT_RESIZE, resize_crops

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
    "EXACT_RESIZE",
    "resize_crops",
]
