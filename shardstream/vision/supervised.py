"""Supervised-training presets for the loader: RandomResizedCrop + flip, and resize + centre crop.

Both are :class:`~shardstream.loader.loader.Loader` presets (``loader.preset(p, device=...)``): the
``worker`` side runs in the loader's workers on one sample's raw image bytes and returns a uint8
``(3, size, size)`` array (channels first) and the label; the ``device`` side runs in the consuming
process on the collated batch and normalises it to float32 on the batch's device.

:class:`SupervisedPreset` is torchvision's training recipe ``RandomResizedCrop(size)`` +
``RandomHorizontalFlip()`` + ``ToTensor()`` + ``Normalize(mean, std)``: the crop box is drawn by
torchvision's algorithm (:func:`~shardstream.vision.crops.random_resized_crop_params`) from the
sample's generator, the image is decoded once at the smallest DCT scale the box allows, and the box
is resized with antialiasing (bilinear by default, as torchvision). When the decode is full size
the box is whole pixels and is resized by :func:`~shardstream.vision.resize.resize_crops`,
bit-identically to Pillow (and so to torchvision's PIL path) where its C extension is built, and
straight into the channels-first output; a reduced decode maps the box to fractional pixels, which
the same kernel resamples as Pillow does (:func:`~shardstream.vision.decode.decode_crops`). Either way only the part of a JPEG the
box covers is decoded (:func:`~shardstream.vision.decode.decode_region`; same pixels as a full
decode).

:class:`EvalPreset` is ``Resize(256)`` + ``CenterCrop(224)`` + ``ToTensor()`` + ``Normalize``,
done as one resize of the centre box (:func:`~shardstream.vision.crops.center_crop_params`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from ..engine.collate import default_collate
from ..engine.scratch import FRESH, BatchBuffers
from ..errors import ConfigError, ImageDecodeError
from .colour_cpu import normalize_uint8
from .crops import (
    center_crop_params,
    choose_scale,
    normalize_size,
    random_resized_crop_params,
)
from .decode import decode_crops, decode_region, image_size
from .device_views import (
    PAYLOAD_FIELDS,
    check_decode_device,
    check_modes,
    collate_shipped,
    ship_encoded,
    ship_region,
)
from .preset_fields import (
    DEFAULT_MAX_PIXELS,
    check_channels,
    check_fields_and_limit,
    int_label,
    sample_field,
    sample_key,
)
from .recipes import IMAGENET_MEAN, IMAGENET_STD
from .resize import resize_crops

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "DEFAULT_MAX_PIXELS",
    "SupervisedPreset",
    "EvalPreset",
    "make_classification_train_preset",
    "make_classification_eval_preset",
]

_INTERPOLATIONS = ("bilinear", "bicubic")
_SHIPPED_FIELDS = (*PAYLOAD_FIELDS, "boxes", "flips")


class _PresetSteps:
    """What both presets share: their fields, the device split, collation and normalisation."""

    image_field: str
    label_field: str | None
    normalize_in: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str
    if TYPE_CHECKING:  # every preset is a dataclass (for dataclasses.replace)
        __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def _shipped_size(self) -> tuple[int, int]:
        """The output size of the view a device mode ships (presets with a device mode say)."""
        raise NotImplementedError(f"{type(self).__name__} has no device mode")

    def for_device(self, device: Any) -> Any:
        """This preset with ``normalize_in="auto"`` resolved for batches that go to ``device``
        (``None`` or a CPU device: ``"workers"``; otherwise ``"device"``).

        Raises:
            DeviceUnavailableError: ``decode="device"`` and ``device`` is not a CUDA device.
        """
        check_decode_device(type(self).__name__, getattr(self, "decode", "cpu"), device)
        if self.normalize_in != "auto":
            return self
        on_cpu = device is None or str(device).split(":")[0] == "cpu"
        if getattr(self, "resize", "cpu") == "device":  # the views are made on the device
            on_cpu = False
        return dataclasses.replace(self, normalize_in="workers" if on_cpu else "device")

    @property
    def host_fields(self) -> tuple[str, ...]:
        """Batch fields the loader leaves on the host: the JPEG bytes with ``decode="device"``
        (nvJPEG reads them from host memory)."""
        return ("payload",) if getattr(self, "decode", "cpu") == "device" else ()

    @property
    def fields(self) -> tuple[str, ...]:
        """The sample fields the worker reads: the image, and the label when there is one."""
        if self.label_field is None:
            return (self.image_field,)
        return (self.image_field, self.label_field)

    def collate(self, samples: Sequence[dict], buffers: BatchBuffers = FRESH) -> dict[str, Any]:
        """Merge a batch's worker outputs (in the workers; the loader calls this).

        With ``normalize_in="workers"`` the uint8 images are stacked and normalised here, by
        table lookup straight into the float32 batch (in a worker, the batch's shared-memory
        slot); otherwise this is the default collation.

        Args:
            samples: ``worker`` outputs, at least one.
            buffers: where the batch's arrays are made (the engine's; new arrays by default).

        Returns:
            ``{image_field: (B, 3, H, W), label_field: (B,)}`` as numpy arrays.

        Raises:
            MissingFieldError: a sample lacks the image field.
            CollateError: the samples differ in fields or shapes.
        """

        if getattr(self, "resize", "cpu") == "device":
            return collate_shipped(samples, buffers)
        if self.normalize_in != "workers":
            return default_collate(samples, buffers=buffers)
        field = self.image_field
        first = sample_field(samples[0], field)
        shape = (len(samples), *first.shape)
        images = np.stack(
            [sample_field(s, field) for s in samples],
            out=buffers.array(f"{field}_uint8", shape, np.uint8, temporary=True),
        )
        batch = {
            field: normalize_uint8(
                images, self.mean, self.std, out=buffers.array(field, shape, np.float32)
            )
        }
        rest = [{k: v for k, v in s.items() if k != field} for s in samples]
        if rest[0]:
            batch.update(default_collate(rest, buffers=buffers))
        return batch

    def device(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Normalise the batch's uint8 images to float32 on their device (the consuming side).

        Args:
            batch: the collated batch, ``batch[image_field]`` a uint8 tensor ``(B, 3, H, W)``
                (or float32 already, when the workers normalised it: returned as it is).

        Returns:
            The same dict with the images replaced by ``(x / 255 - mean) / std`` as float32.

        Raises:
            MissingFieldError: the batch has no image field.
        """
        from .photometric import normalize  # delayed: imports torch (the consuming side only)

        if "payload" in batch:  # resize="device" / decode="device": cut the views here first
            from .device_resize import shipped_views  # delayed: imports torch

            (images,) = shipped_views(batch, [self._shipped_size()], self.interpolation)
            rest = {k: v for k, v in batch.items() if k not in _SHIPPED_FIELDS}
            return {**rest, self.image_field: normalize(images, self.mean, self.std)}
        images = sample_field(batch, self.image_field)
        if images.is_floating_point():  # normalised in the workers already
            return dict(batch)
        return {**batch, self.image_field: normalize(images, self.mean, self.std)}


@dataclass(frozen=True, kw_only=True)
class SupervisedPreset(_PresetSteps):
    """RandomResizedCrop + horizontal flip in the workers (uint8), normalisation on the device.

    Attributes:
        size: output size, an int (square) or ``(height, width)``.
        scale: ``(min, max)`` fraction of the image area a crop covers (torchvision's ``scale``).
        ratio: ``(min, max)`` aspect ratio (width / height) of a crop (torchvision's ``ratio``).
        flip_p: probability of mirroring the crop left to right.
        mean: per-channel mean (RGB, in [0, 1]) subtracted on the device.
        std: per-channel standard deviation (RGB, in [0, 1]) divided by on the device.
        interpolation: ``"bilinear"`` (torchvision's default for RandomResizedCrop) or
            ``"bicubic"``; both antialiased when shrinking.
        image_field: the sample field holding the encoded image (JPEG, PNG, ...).
        label_field: the sample field holding the integer label; ``None`` for unlabelled data.
        max_pixels: refuse images with more stored pixels than this (``None``: no limit).
        normalize_in: ``"device"`` (uint8 leaves the workers, :meth:`device` normalises),
            ``"workers"`` (float32 by table lookup in the workers' :meth:`collate`, straight
            into the batch, so a CPU-only consumer gets the floats as they are) or ``"auto"``: the loader picks ``"workers"`` when batches stay
            on the CPU, ``"device"`` otherwise (:meth:`for_device`).
        resize: ``"cpu"`` (the exact path) or ``"device"``: the worker draws the same box and
            flip, decodes only the box and ships its uint8 pixels
            (:mod:`~shardstream.vision.device_views`); :meth:`device` resizes (torch's
            antialiased ``interpolation``) and flips them, then normalises
            (``normalize_in="workers"`` is refused).
        decode: ``"cpu"`` or ``"device"``: the worker ships the JPEG bytes and the box, decoded
            on the device in one batched nvJPEG call; implies ``resize="device"``. Needs CUDA.

    Raises:
        ConfigError: a setting is of the wrong kind or out of range.
        DeviceUnavailableError: ``decode="device"`` where torch sees no CUDA device.
    """

    size: int | tuple[int, int] = 224
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    image_field: str = "image"
    label_field: str | None = "label"
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    normalize_in: str = "auto"
    resize: str = "cpu"
    decode: str = "cpu"

    def __post_init__(self) -> None:
        """Check and normalise every argument.

        Raises:
            ConfigError: an argument is of the wrong kind or out of range (the message names it).
            DeviceUnavailableError: ``decode="device"`` where torch sees no CUDA device.
        """
        object.__setattr__(
            self, "resize", check_modes("SupervisedPreset", self.resize, self.decode)
        )
        if self.resize == "device" and self.normalize_in == "workers":
            raise ConfigError("SupervisedPreset: normalize_in='workers' needs resize='cpu'")
        object.__setattr__(self, "size", normalize_size(self.size, "size"))
        object.__setattr__(self, "scale", _pair("scale", self.scale, positive=False))
        object.__setattr__(self, "ratio", _pair("ratio", self.ratio, positive=True))
        object.__setattr__(self, "flip_p", _probability("flip_p", self.flip_p))
        _check_common(self)

    def plan(self, height: int, width: int, rng: np.random.Generator) -> tuple[tuple, bool]:
        """Draw one sample's crop box and flip from ``rng`` (box first, then the flip).

        Args:
            height: height of the image as displayed (after its EXIF orientation).
            width: width of the image as displayed.
            rng: the sample's generator.

        Returns:
            ``((top, left, crop_height, crop_width), flip)``, the box in whole pixels.

        Raises:
            ConfigError: a dimension is not a positive int.
        """
        box = random_resized_crop_params(height, width, self.scale, self.ratio, rng=rng)
        return box, bool(rng.random() < self.flip_p)

    def worker(self, sample: dict, rng: np.random.Generator) -> dict[str, Any]:
        """Crop, resize and flip one sample's image (run in the loader's workers).

        Args:
            sample: the sample; ``sample[image_field]`` holds the encoded image bytes.
            rng: the sample's generator (a function of seed, epoch and position).

        Returns:
            ``{image_field: uint8 array (3, height, width)}`` plus ``{label_field: int64}``
            when the preset has a label field; in the device modes ``payload``, ``boxes``
            and ``flips`` instead of the image (see :mod:`~shardstream.vision.device_views`).

        Raises:
            MissingFieldError: the sample lacks the image or label field.
            LabelError: the label is not an integer.
            ImageDecodeError: the image cannot be decoded or is over ``max_pixels``; the
                message names ``sample["key"]`` when the sample has one (the loader's
                ``SampleError`` around it always names the sample).
        """
        data = sample_field(sample, self.image_field)
        try:
            height, width = image_size(data)
            box, flip = self.plan(height, width, rng)
            if self.resize == "device":
                return self._ship(sample, data, height, width, box, flip)
            scale = choose_scale(height, width, [box], [self.size])
            if scale == 1:  # decode only the box (the whole image where that cannot be done)
                region, _ = decode_region(data, box, max_pixels=self.max_pixels)
                h, w = region.shape[:2]
                crop = _resize_whole_box(
                    region, (0, 0, h, w), _hw(self.size), self.interpolation, flip
                )
            else:
                out = decode_crops(
                    data,
                    [box],
                    [self.size],
                    flip=[flip],
                    interpolation=self.interpolation,
                    scale=scale,
                    max_pixels=self.max_pixels,
                )[0]
                crop = np.ascontiguousarray(out.transpose(2, 0, 1))
        except ImageDecodeError as error:
            raise ImageDecodeError(error.problem, key=sample_key(sample)) from error
        return _output(self, sample, crop)

    def _shipped_size(self) -> tuple[int, int]:
        """The view's output ``(height, width)``."""
        return normalize_size(self.size)

    def _ship(
        self, sample: dict, data: Any, height: int, width: int, box: tuple, flip: bool
    ) -> dict[str, Any]:
        """What the worker ships in the device modes: pixels or bytes, the box and the flip."""
        top, left, h, w = (int(v) for v in box)
        boxes = [(top, left, h, w)]
        if self.decode == "device":
            shipped = ship_encoded(data, boxes, max_pixels=self.max_pixels)
        else:
            pixels, relative = ship_region(
                data, height, width, boxes, [self._shipped_size()], max_pixels=self.max_pixels
            )
            shipped = {"payload": pixels, "boxes": relative}
        shipped["flips"] = np.array([flip])
        if self.label_field is not None:
            shipped[self.label_field] = int_label(sample, self.label_field)
        return shipped


@dataclass(frozen=True, kw_only=True)
class EvalPreset(_PresetSteps):
    """Resize the shorter side, then centre crop, in the workers; normalisation on the device.

    Equals torchvision's ``Resize(resize_size)`` + ``CenterCrop(crop_size)`` (antialiased),
    computed as one resize of the centre box of the original image.

    Attributes:
        resize_size: the shorter side after resizing.
        crop_size: the output size, an int (square) or ``(height, width)``; at most the resized
            image.
        mean: per-channel mean (RGB, in [0, 1]) subtracted on the device.
        std: per-channel standard deviation (RGB, in [0, 1]) divided by on the device.
        interpolation: ``"bilinear"`` (torchvision's default for Resize) or ``"bicubic"``.
        image_field: the sample field holding the encoded image.
        label_field: the sample field holding the integer label; ``None`` for unlabelled data.
        max_pixels: refuse images with more stored pixels than this (``None``: no limit).
    """

    resize_size: int = 256
    crop_size: int | tuple[int, int] = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    image_field: str = "image"
    label_field: str | None = "label"
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    normalize_in: str = "auto"

    def __post_init__(self) -> None:
        """Check and normalise every argument.

        Raises:
            ConfigError: an argument is of the wrong kind or out of range, or the crop is larger
                than the resized shorter side.
        """
        if not isinstance(self.resize_size, (int, np.integer)):
            raise ConfigError(f"resize_size must be an int, got {self.resize_size!r}")
        resize = normalize_size(self.resize_size, "resize_size")[0]
        crop = normalize_size(self.crop_size, "crop_size")
        if max(crop) > resize:
            raise ConfigError(
                f"crop_size {self.crop_size!r} is larger than resize_size {resize}; "
                "padding is not supported"
            )
        object.__setattr__(self, "resize_size", resize)
        object.__setattr__(self, "crop_size", crop)
        _check_common(self)

    def worker(self, sample: dict, rng: np.random.Generator | None = None) -> dict[str, Any]:
        """Resize and centre crop one sample's image (run in the loader's workers).

        Args:
            sample: the sample; ``sample[image_field]`` holds the encoded image bytes.
            rng: unused (the evaluation transform is deterministic); accepted for the protocol.

        Returns:
            ``{image_field: uint8 array (3, height, width)}`` plus ``{label_field: int64}``
            when the preset has a label field.

        Raises:
            MissingFieldError: the sample lacks the image or label field.
            LabelError: the label is not an integer.
            ImageDecodeError: the image cannot be decoded or is over ``max_pixels``; the
                message names ``sample["key"]`` when the sample has one (the loader's
                ``SampleError`` around it always names the sample).
        """
        data = sample_field(sample, self.image_field)
        try:
            height, width = image_size(data)
            box = center_crop_params(
                height, width, resize_size=self.resize_size, crop_size=self.crop_size
            )
            out = decode_crops(
                data,
                [box],
                [self.crop_size],
                interpolation=self.interpolation,
                max_pixels=self.max_pixels,
            )[0]
        except ImageDecodeError as error:
            raise ImageDecodeError(error.problem, key=sample_key(sample)) from error
        return _output(self, sample, np.ascontiguousarray(out.transpose(2, 0, 1)))


def make_classification_train_preset(
    *,
    crop_size: int = 224,
    interpolation: Any = "bicubic",
    hflip_prob: float = 0.5,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    **options: Any,
) -> SupervisedPreset:
    """dinov2's ``make_classification_train_transform`` as a fast loader preset.

    The same pipeline, arguments and defaults (random resized crop with torchvision's scale and
    ratio, bicubic, flip with ``hflip_prob``, ImageNet normalisation), made in the loader's workers
    from the sample's generator (:class:`SupervisedPreset`) instead of torch's global one.

    Args:
        crop_size: output size (an int: square, or ``(height, width)``).
        interpolation: ``"bicubic"`` / ``"bilinear"`` or torchvision's ``InterpolationMode``
            member of that name.
        hflip_prob: probability of mirroring the crop.
        mean: normalisation mean.
        std: normalisation standard deviation.
        **options: further :class:`SupervisedPreset` fields (``image_field``, ``label_field``,
            ``max_pixels``, ``normalize_in``).

    Returns:
        The configured :class:`SupervisedPreset`.

    Raises:
        ConfigError: an argument is invalid (an interpolation other than bilinear or bicubic).
        TypeError: ``options`` names no preset field.
    """
    return SupervisedPreset(
        size=crop_size,
        flip_p=hflip_prob,
        mean=check_channels("mean", mean),
        std=check_channels("std", std),
        interpolation=_interpolation_name(interpolation),
        **options,
    )


def make_classification_eval_preset(
    *,
    resize_size: int = 256,
    interpolation: Any = "bicubic",
    crop_size: int = 224,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    **options: Any,
) -> EvalPreset:
    """dinov2's ``make_classification_eval_transform`` as a fast loader preset.

    The same pipeline, arguments and defaults (resize the shorter side to ``resize_size``,
    bicubic, centre crop ``crop_size``, ImageNet normalisation) as an :class:`EvalPreset`.

    Args:
        resize_size: the shorter side after resizing.
        interpolation: ``"bicubic"`` / ``"bilinear"`` or torchvision's ``InterpolationMode``
            member of that name.
        crop_size: the output size (at most ``resize_size``).
        mean: normalisation mean.
        std: normalisation standard deviation.
        **options: further :class:`EvalPreset` fields (``image_field``, ``label_field``,
            ``max_pixels``, ``normalize_in``).

    Returns:
        The configured :class:`EvalPreset`.

    Raises:
        ConfigError: an argument is invalid (the crop is larger than ``resize_size``, an
            interpolation other than bilinear or bicubic).
        TypeError: ``options`` names no preset field.
    """
    return EvalPreset(
        resize_size=resize_size,
        crop_size=crop_size,
        mean=check_channels("mean", mean),
        std=check_channels("std", std),
        interpolation=_interpolation_name(interpolation),
        **options,
    )


def _interpolation_name(interpolation: Any) -> Any:
    """``"bicubic"`` for ``InterpolationMode.BICUBIC`` (its ``value``), a string as it is."""
    return getattr(interpolation, "value", interpolation)


def _resize_whole_box(
    image: np.ndarray, box: tuple, size: tuple[int, int], interpolation: str, flip: bool
) -> np.ndarray:
    """Cut the whole-pixel ``box`` out of ``image`` (H x W x 3) and resize it to ``(3, *size)``."""
    out = np.empty((3, *size), np.uint8)
    resize_crops(
        image,
        [_whole_box(box)],
        [flip],
        [out.transpose(1, 2, 0)],
        interpolation=interpolation,
    )
    return out


class _CommonFields(Protocol):
    """The fields every preset checks alike (:func:`_check_common`)."""

    @property
    def interpolation(self) -> str: ...
    @property
    def normalize_in(self) -> str: ...
    @property
    def image_field(self) -> str: ...
    @property
    def label_field(self) -> str | None: ...
    @property
    def max_pixels(self) -> int | None: ...


def _check_common(preset: _CommonFields) -> None:
    if preset.interpolation not in _INTERPOLATIONS:
        raise ConfigError(
            f"interpolation must be one of {sorted(_INTERPOLATIONS)}, got {preset.interpolation!r}"
        )
    for name in ("mean", "std"):
        object.__setattr__(preset, name, check_channels(name, getattr(preset, name)))
    if preset.normalize_in not in ("auto", "device", "workers"):
        raise ConfigError(
            f"normalize_in must be 'auto', 'device' or 'workers', got {preset.normalize_in!r}"
        )
    check_fields_and_limit(preset.image_field, preset.label_field, preset.max_pixels)


def _hw(size: int | tuple[int, int]) -> tuple[int, int]:
    """A size that ``__post_init__`` normalised, as the ``(height, width)`` it now is."""
    return size if isinstance(size, tuple) else (size, size)


def _whole_box(box: Sequence[Any]) -> tuple[int, int, int, int]:
    """A crop box's ``(top, left, height, width)`` as ints."""
    top, left, height, width = box
    return int(top), int(left), int(height), int(width)


def _pair(name: str, value: Sequence[float], positive: bool) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a pair (min, max) of numbers, got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low <= high) or (positive and low <= 0):
        raise ConfigError(
            f"{name} must be finite (min, max) with min <= max"
            f"{' and min > 0' if positive else ''}, got {value!r}"
        )
    return low, high


def _probability(name: str, value: float) -> float:
    try:
        p = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a probability in [0, 1], got {value!r}") from None
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"{name} must be a probability in [0, 1], got {value!r}")
    return p


def _output(preset: SupervisedPreset | EvalPreset, sample: dict, image: np.ndarray) -> dict:
    out: dict[str, Any] = {preset.image_field: image}
    if preset.label_field is not None:
        out[preset.label_field] = int_label(sample, preset.label_field)
    return out
