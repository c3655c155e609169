"""helios' transform registry, ``create_transform`` and ``ToImageTensor``.

``ToImageTensor`` gives the values of helios' torchvision pipeline ``v2.ToImage()`` then
``v2.ToDtype(dtype, scale)`` then ``v2.ToPureTensor()``, computed with torch and NumPy alone
(torchvision is not imported). Its outputs are contiguous ``[C, H, W]`` tensors; torchvision
returns a PIL image's tensor in ``[H, W, C]`` memory order (same values, other strides).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from ...errors import ConfigError, ConfigTypeError
from .registry import Registry

__all__ = ["TRANSFORM_REGISTRY", "ToImageTensor", "create_transform"]

TRANSFORM_REGISTRY = Registry("transform")
"""The registry of transform classes; holds :class:`ToImageTensor`.

Example::

    @TRANSFORM_REGISTRY.register
    class MyTransform(torch.nn.Module): ...
"""


def create_transform(type_name: str, *args: Any, **kwargs: Any) -> nn.Module:
    """Build the transform class registered as ``type_name`` in :data:`TRANSFORM_REGISTRY`.

    Args:
        type_name: the registered name, e.g. ``"ToImageTensor"``.
        args: positional arguments for the class.
        kwargs: keyword arguments for the class.

    Returns:
        The new transform.

    Raises:
        NotRegisteredError: no transform of that name is registered.
    """
    return TRANSFORM_REGISTRY.get(type_name)(*args, **kwargs)


ImageLike = np.ndarray | torch.Tensor | Image.Image


@TRANSFORM_REGISTRY.register
class ToImageTensor(nn.Module):
    """Turn an image, or a list or tuple of images, into ``[C, H, W]`` tensors of one dtype.

    A NumPy array is ``[H, W, C]`` or ``[H, W]``; a tensor is ``[C, H, W]`` or ``[H, W]``; a PIL
    image has as many channels as bands. With ``scale``, integer values are mapped to the
    output's range (``uint8`` 255 to 1.0 for float, bit shifts between integer types, and
    ``[0, 1]`` floats to ``0 .. max`` integers); without it values are cast as they are.

    Args:
        dtype: the output dtype.
        scale: rescale values to the output dtype's range.
    """

    def __init__(self, dtype: torch.dtype = torch.float32, scale: bool = True) -> None:
        super().__init__()
        self._dtype = dtype
        self._scale = scale

    def forward(
        self, img: ImageLike | list[ImageLike] | tuple[ImageLike, ...]
    ) -> torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...]:
        """Convert the image(s).

        Args:
            img: one image, or a list or tuple of images.

        Returns:
            One tensor when exactly one image came in (also from a one-element list or
            tuple); otherwise a list of tensors, or a tuple when the input was a tuple.

        Raises:
            ConfigTypeError: an element is not an array, tensor or PIL image.
            ConfigError: an array or tensor has too few or too many dimensions, or the
                conversion cannot be done safely (float32 to int32/int64, float64 to int64).
        """
        images = list(img) if isinstance(img, (list, tuple)) else [img]
        out = [to_dtype(to_image(image), self._dtype, self._scale) for image in images]
        if len(out) == 1:
            return out[0]
        if isinstance(img, tuple):
            return tuple(out)
        return out

    def extra_repr(self) -> str:
        """The arguments shown by ``repr()``."""
        return f"dtype={self._dtype}, scale={self._scale}"


def to_image(image: ImageLike) -> torch.Tensor:
    """An image as a ``[C, H, W]`` tensor of its own dtype.

    Args:
        image: a ``[H, W, C]`` / ``[H, W]`` array, a ``[..., C, H, W]`` / ``[H, W]`` tensor, or
            a PIL image.

    Returns:
        The tensor; it may share memory with a writable array or with the input tensor.

    Raises:
        ConfigTypeError: ``image`` is of another type.
        ConfigError: the array or tensor has too few or too many dimensions.
    """
    if isinstance(image, np.ndarray):
        if image.ndim not in (2, 3):
            raise ConfigError(
                f"ToImageTensor: a NumPy image must be [H, W, C] or [H, W], got shape {image.shape}"
            )
        return _hwc_array_to_tensor(image)
    if isinstance(image, Image.Image):
        array = np.asarray(image)
        bands = len(image.getbands())
        return _hwc_array_to_tensor(array.reshape(image.height, image.width, bands))
    if isinstance(image, torch.Tensor):
        if image.ndim < 2:
            raise ConfigError(
                f"ToImageTensor: a tensor image must be 2D or higher, got shape {tuple(image.shape)}"
            )
        tensor = image.as_subclass(torch.Tensor)
        return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor
    raise ConfigTypeError(
        f"ToImageTensor: an image must be a tensor, a NumPy array or a PIL image, got {type(image)}"
    )


def to_dtype(image: torch.Tensor, dtype: torch.dtype, scale: bool) -> torch.Tensor:
    """Convert an image tensor to ``dtype``, rescaling values to its range when ``scale``.

    Args:
        image: the image tensor.
        dtype: the output dtype.
        scale: rescale (see :class:`ToImageTensor`).

    Returns:
        ``image`` itself when it already has ``dtype``, else a new tensor.

    Raises:
        ConfigError: a float to integer conversion that cannot be done safely.
    """
    if image.dtype == dtype:
        return image
    if not scale:
        return image.to(dtype)
    if image.is_floating_point():
        if dtype.is_floating_point:
            return image.to(dtype)
        if (image.dtype == torch.float32 and dtype in (torch.int32, torch.int64)) or (
            image.dtype == torch.float64 and dtype == torch.int64
        ):
            raise ConfigError(
                f"ToImageTensor: the conversion from {image.dtype} to {dtype} cannot be done "
                "safely (the float type cannot hold every value of the integer range)"
            )
        # times (max + 1 - eps), so that values just below 1.0 still reach max
        return image.mul(float(_max_value(dtype)) + 1.0 - 1e-3).to(dtype)
    if dtype.is_floating_point:
        return image.to(dtype).mul_(1.0 / _max_value(image.dtype))
    shift = _value_bits(image.dtype) - _value_bits(dtype)
    if shift > 0:
        if image.dtype == torch.uint16:  # no bit shifts on uint16
            return (image / 2**shift).to(dtype)
        return image.bitwise_right_shift(shift).to(dtype)
    if dtype == torch.uint16:
        return image.to(dtype) * 2 ** (-shift)
    return image.to(dtype).bitwise_left_shift_(-shift)


_SCALED_INTEGERS = (torch.uint8, torch.int8, torch.int16, torch.uint16, torch.int32, torch.int64)


def _max_value(dtype: torch.dtype) -> int:
    """The value that stands for full intensity: the integer maximum, else 1 (floats, bool)."""
    return torch.iinfo(dtype).max if dtype in _SCALED_INTEGERS else 1


def _value_bits(dtype: torch.dtype) -> int:
    """Bits that hold the magnitude of an integer type (the sign bit not counted)."""
    if dtype not in _SCALED_INTEGERS:
        raise ConfigError(
            f"ToImageTensor: cannot rescale between integer types with {dtype}; use one of "
            f"{', '.join(str(t) for t in _SCALED_INTEGERS)} or scale=False"
        )
    info = torch.iinfo(dtype)
    return info.bits - (1 if info.min < 0 else 0)


def _hwc_array_to_tensor(array: np.ndarray) -> torch.Tensor:
    """``[H, W, C]`` or ``[H, W]`` array to a contiguous ``[C, H, W]`` tensor."""
    chw = np.ascontiguousarray(np.atleast_3d(array).transpose(2, 0, 1))
    if not chw.dtype.isnative:
        chw = chw.astype(chw.dtype.newbyteorder("="))
    if not chw.flags.writeable:  # torch.from_numpy warns on read-only memory
        chw = chw.copy()
    return torch.from_numpy(chw)
