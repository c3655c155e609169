"""What the loader presets share: reading a sample's fields, and checking their common settings.

Both :class:`~shardstream.vision.dino.DinoPreset` and the supervised presets read an encoded
image and an optional integer label from a sample, name the sample's key in their errors, and
take the same image/label field, pixel limit and mean/std settings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError, LabelError, MissingFieldError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "check_channels",
    "check_fields_and_limit",
    "int_label",
    "sample_field",
    "sample_key",
]

DEFAULT_MAX_PIXELS = 89_478_485
"""Images with more stored pixels are refused: Pillow's decompression-bomb warning limit."""


def sample_key(sample: Mapping[str, Any]) -> str | None:
    """The sample's ``"key"`` when it has a string one (for error messages), else None."""
    key = sample.get("key")
    return key if isinstance(key, str) else None


def sample_field(sample: Mapping[str, Any], name: str) -> Any:
    """``sample[name]``.

    Raises:
        MissingFieldError: the sample (or batch) has no such field; the message names the key.
    """
    try:
        return sample[name]
    except KeyError:
        key = sample_key(sample)
        where = f"sample {key!r}" if key is not None else "the batch or sample"
        raise MissingFieldError(
            f"{where} has no field {name!r} (fields: {sorted(sample)})"
        ) from None


def int_label(sample: Mapping[str, Any], name: str) -> np.int64:
    """The sample's label field as int64.

    Raises:
        MissingFieldError: the sample has no such field.
        LabelError: the value is not an integer.
    """
    label = sample_field(sample, name)
    try:
        return np.int64(label)
    except (TypeError, ValueError, OverflowError):
        raise LabelError(
            f"sample {sample_key(sample)!r}: label field {name!r} must be an int, got {label!r}"
        ) from None


def check_channels(name: str, value: Any) -> tuple[float, float, float]:
    """A per-channel mean or std as 3 finite floats (a std also positive).

    Raises:
        ConfigError: not 3 finite numbers, or a std that is not positive.
    """
    try:
        values = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be 3 numbers (RGB), got {value!r}") from None
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"{name} must be 3 finite numbers (RGB), got {value!r}")
    if name == "std" and min(values) <= 0:
        raise ConfigError(f"std must be positive, got {value!r}")
    return values


def check_fields_and_limit(image_field: Any, label_field: Any, max_pixels: Any) -> None:
    """Check a preset's field names and pixel limit.

    Raises:
        ConfigError: a field name is not a str (the label field may be None), or ``max_pixels``
            is not a positive int or None.
    """
    if not isinstance(image_field, str):
        raise ConfigError(f"image_field must be a str, got {image_field!r}")
    if label_field is not None and not isinstance(label_field, str):
        raise ConfigError(f"label_field must be a str or None, got {label_field!r}")
    if max_pixels is not None and (
        isinstance(max_pixels, bool)
        or not isinstance(max_pixels, (int, np.integer))
        or max_pixels < 1
    ):
        raise ConfigError(f"max_pixels must be a positive int or None, got {max_pixels!r}")
