"""The DINO multi-crop fast path: dinov2's views, cut in loader workers, coloured on the device.

:class:`DinoPreset` is a loader preset (``loader.preset(DinoPreset(), device=...)``) that makes
what dinov2's ``DataAugmentationDINO`` + ``collate_data_and_cast`` make, split where it is cheapest:

- ``worker`` (in the loader's workers, per sample): read the image header, draw every random
  number of the sample from its generator (two global and ``local_crops_number`` local
  random-resized-crop boxes by torchvision's algorithm, a flip per view, every view's colour
  parameters, the iBOT masks of the two global crops), decode the image once, cut, resize
  (bicubic, as dinov2) and flip every view, and return fixed-shape uint8 arrays.
- ``device`` (in the consuming process, on the collated batch on its device): colour jitter in
  each view's drawn op order, grayscale, Gaussian blur and solarisation batched per view kind
  (:func:`~shardstream.vision.photometric.apply_photometric`), normalisation, the cast to
  ``dtype``, and dinov2's collated dict.

Resizing. The image is decoded once, at the smallest libjpeg-turbo DCT scale that still gives every
view at least its output resolution (:func:`~shardstream.vision.crops.choose_scale`; with dinov2's
small local crops this is nearly always full size). At full size every box is whole pixels and
:func:`~shardstream.vision.resize.resize_crops` resizes all the views in one call, bit-identically
to Pillow's bicubic ``resize`` (and so to torchvision's ``resized_crop`` on PIL images, what dinov2
runs) where the optional C extension is built, mirrored and written straight into the
channels-first outputs. A reduced decode maps boxes to fractional pixels, which the same kernel
resamples as Pillow does (:func:`~shardstream.vision.decode.decode_crops`).

Device modes. ``resize="device"`` leaves the workers the header, every random draw (the same
stream as above) and one decode of the pixels the crops read (for DINO's crops the band of rows
they span, decoded straight into the batch's shared-memory slot), shipped as uint8; :meth:`device`
cuts, resizes (torch's antialiased bicubic, batched per output size) and flips the views before
colouring them. ``decode="device"`` ships the JPEG bytes for nvJPEG instead (CUDA only). See
:mod:`~shardstream.vision.device_views` and :mod:`~shardstream.vision.device_resize`.

Masks are drawn per sample (each global crop masked with probability ``mask_probability``, ratio
uniform in ``mask_ratio_tuple``; :func:`~shardstream.vision.masking.sample_masks`), which has the
same per-crop law as dinov2's per-batch stratified draw; see that function for how they differ.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch

from ..checks import check_int, resolve_on_error
from ..engine import SKIPPED
from ..errors import ConfigError, ImageDecodeError
from .colour_cpu import apply_photometric_views
from .crops import check_dims, choose_scale, rrc_box
from .decode import decode_crops, decode_image, image_size
from .device_views import (
    check_decode_device,
    check_modes,
    draw_crop_boxes,
    ship_encoded,
    ship_pixels,
)
from .dino_batches import DinoBatchSteps
from .masking import (
    MaskingGenerator,
    MaskSampler,
    check_mask_probability,
    check_mask_ratio_tuple,
)
from .photometric import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PhotometricRecipe,
    dinov2_recipes,
)
from .preset_fields import (
    DEFAULT_MAX_PIXELS,
    check_channels,
    check_fields_and_limit,
    int_label,
    sample_field,
    sample_key,
)
from .recipes import PhotometricDraws
from .resize import resize_crops
from .view_params import ViewParams

__all__ = ["DEFAULT_MAX_PIXELS", "DINO_OUTPUT_KEYS", "DinoPreset"]

DINO_OUTPUT_KEYS: tuple[str, ...] = (
    "collated_global_crops",
    "collated_local_crops",
    "collated_masks",
    "mask_indices_list",
    "masks_weight",
    "upperbound",
    "n_masked_patches",
)
"""The keys of dinov2's ``collate_data_and_cast`` output, which :meth:`DinoPreset.device` returns
(the mask keys only when masks are on), plus ``labels`` when the preset has a label field."""

_COLOUR_PLACES = ("auto", "device", "workers")
_VIEW_KINDS = (("global_1", 0), ("global_2", 1), ("local", slice(2, None)))  # draw_params' split
_INT_MESSAGE = "{name} must be an int >= {low}, got {value!r}"
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


@dataclass(frozen=True, kw_only=True)
class DinoPreset(DinoBatchSteps):
    """dinov2's multi-crop views and iBOT masks: geometry in the workers, colour on the device.

    The settings mirror dinov2's ``DataAugmentationDINO`` and ``collate_data_and_cast``.

    Attributes:
        global_crops_scale: ``(min, max)`` area fraction of the two global crops.
        local_crops_scale: ``(min, max)`` area fraction of the local crops.
        local_crops_number: how many local crops per image (``>= 0``).
        global_crops_size: output side of the global crops in pixels.
        local_crops_size: output side of the local crops in pixels.
        blur: ``"dinov2"`` for the blur probabilities dinov2 ships (global 1 never, global 2 90 %,
            local 50 %: its ``GaussianBlur(p)`` blurs with probability ``1 - p``), or
            ``"documented"`` for the documented ones (100 %, 10 %, 50 %).
        patch_size: the model's patch size; masks are ``global_crops_size // patch_size`` square.
        mask_ratio_tuple: ``(lo, hi)`` range of the fraction of patches a masked crop masks.
        mask_probability: probability that a global crop is masked.
        masks: draw iBOT masks (``False`` leaves the mask keys out of the output).
        image_field: the sample field holding the encoded image (JPEG, PNG, ...).
        label_field: the sample field holding the integer label, returned as ``labels``;
            ``None`` for unlabelled data.
        max_pixels: refuse images with more stored pixels than this (``None``: no limit).
        on_error: ``"raise"`` (the default) an :class:`~shardstream.errors.ImageDecodeError`
            naming the sample key for an image that cannot be decoded (corrupt, truncated, zero
            pixels, over ``max_pixels``), or ``"skip"`` the sample.
        on_bad_image: deprecated alias of ``on_error`` (warns ``DeprecationWarning``; read
            ``on_error`` after construction, this field is reset to ``None``).
        mean: per-channel mean (RGB, in [0, 1]) subtracted on the device.
        std: per-channel standard deviation (RGB, in [0, 1]) divided by on the device.
        dtype: the floating dtype of the output crops (dinov2 trains with ``torch.half``).
        colour: where the colour ops run: ``"device"`` (batched in torch by :meth:`device`, on
            the training device), ``"workers"`` (per view on uint8 in the loader's workers with
            OpenCV, :mod:`~shardstream.vision.colour_cpu`: 4-5x cheaper on a CPU, and the same
            integer arithmetic as dinov2's PIL path) or ``"auto"``: the loader picks
            ``"workers"`` when batches stay on the CPU and ``"device"`` for a GPU
            (:meth:`for_device`); used outside a loader, ``"auto"`` means ``"device"``.
        resize: ``"cpu"`` (the exact path: views resized in the workers, as Pillow) or
            ``"device"``: the workers plan the same boxes, flips, colour parameters and masks
            from the same generator, decode once and ship the uint8 pixels the crops read
            (:mod:`~shardstream.vision.device_views`); :meth:`device` cuts, resizes (torch's
            antialiased bicubic) and flips them (:mod:`~shardstream.vision.device_resize`), then
            colours as ever. Colour then runs on the device (``colour="workers"`` is refused).
        decode: ``"cpu"`` or ``"device"``: the workers ship the JPEG bytes and the boxes only,
            and :meth:`device` decodes them in one batched nvJPEG call
            (``torchvision.io.decode_jpeg``); implies ``resize="device"``. Needs CUDA.

    Raises:
        ConfigError: a setting is of the wrong kind or out of range (the message names it).
        DeviceUnavailableError: ``decode="device"`` on a machine where torch sees no CUDA.
    """

    global_crops_scale: tuple[float, float] = (0.32, 1.0)
    local_crops_scale: tuple[float, float] = (0.05, 0.32)
    local_crops_number: int = 8
    global_crops_size: int = 224
    local_crops_size: int = 96
    blur: str = "dinov2"
    patch_size: int = 16
    mask_ratio_tuple: tuple[float, float] = (0.1, 0.5)
    mask_probability: float = 0.5
    masks: bool = True
    image_field: str = "image"
    label_field: str | None = "label"
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    on_error: str | None = None
    on_bad_image: str | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    dtype: torch.dtype = torch.float32
    colour: str = "auto"
    resize: str = "cpu"
    decode: str = "cpu"
    recipes: Mapping[str, PhotometricRecipe] = field(init=False, repr=False, compare=False)
    mask_generator: MaskingGenerator = field(init=False, repr=False, compare=False)
    _draws: PhotometricDraws = field(init=False, repr=False, compare=False)
    _mask_sampler: MaskSampler = field(init=False, repr=False, compare=False)
    _box_scales: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Check every setting and build the recipes and the mask generator.

        Raises:
            ConfigError: a setting is of the wrong kind or out of range.
        """
        for name in ("global_crops_scale", "local_crops_scale"):
            _set(self, name, _scale_pair(name, getattr(self, name)))
        _set(self, "local_crops_number", _int("local_crops_number", self.local_crops_number, 0))
        scales = [self.global_crops_scale] * 2 + [self.local_crops_scale] * self.local_crops_number
        _set(self, "_box_scales", np.array(scales, np.float64).reshape(-1, 2))
        for name in ("global_crops_size", "local_crops_size", "patch_size"):
            _set(self, name, _int(name, getattr(self, name), 1))
        if self.patch_size > self.global_crops_size:
            raise ConfigError(
                f"patch_size {self.patch_size} is larger than global_crops_size "
                f"{self.global_crops_size}"
            )
        _set(self, "recipes", dinov2_recipes(self.blur))
        kinds = ["global_1", "global_2"] + ["local"] * self.local_crops_number
        _set(self, "_draws", PhotometricDraws(recipes=[self.recipes[kind] for kind in kinds]))
        _set(self, "mask_ratio_tuple", check_mask_ratio_tuple(self.mask_ratio_tuple))
        _set(self, "mask_probability", check_mask_probability(self.mask_probability))
        if not isinstance(self.masks, (bool, np.bool_)):
            raise ConfigError(f"masks must be True or False, got {self.masks!r}")
        _set(self, "masks", bool(self.masks))
        grid = self.global_crops_size // self.patch_size
        # dinov2's train.py: max_num_patches = 0.5 * img_size // patch_size * img_size // patch_size
        _set(
            self,
            "mask_generator",
            MaskingGenerator((grid, grid), max_num_patches=0.5 * grid * grid),
        )
        _set(
            self,
            "_mask_sampler",
            MaskSampler(
                mask_generator=self.mask_generator,
                n_masks=2,
                mask_ratio_tuple=self.mask_ratio_tuple,
                mask_probability=self.mask_probability,
                n_tokens=self.n_tokens,
            ),
        )
        check_fields_and_limit(self.image_field, self.label_field, self.max_pixels)
        if self.on_bad_image is not None:
            warnings.warn(
                "DinoPreset(on_bad_image=...) is deprecated; pass on_error=... instead",
                DeprecationWarning,
                stacklevel=3,
            )
        on_error = resolve_on_error(
            self.on_error, owner="DinoPreset", alias="on_bad_image", alias_value=self.on_bad_image
        )
        _set(self, "on_error", on_error)
        _set(self, "on_bad_image", None)
        for name in ("mean", "std"):
            _set(self, name, check_channels(name, getattr(self, name)))
        if self.colour not in _COLOUR_PLACES:
            raise ConfigError(
                f"colour must be one of {', '.join(_COLOUR_PLACES)}, got {self.colour!r}"
            )
        _set(self, "resize", check_modes("DinoPreset", self.resize, self.decode))
        if self.resize == "device" and self.colour == "workers":
            raise ConfigError("DinoPreset: colour='workers' needs resize='cpu' (resized pixels)")
        if self.dtype not in _FLOAT_DTYPES:
            raise ConfigError(
                f"dtype must be a floating torch dtype ({', '.join(map(str, _FLOAT_DTYPES))}), "
                f"got {self.dtype!r}"
            )

    def for_device(self, device: Any) -> DinoPreset:
        """This preset with ``colour="auto"`` resolved for batches that go to ``device``.

        Args:
            device: the training device (``None`` or a CPU device: colour in the workers;
                anything else, e.g. ``"cuda"``: colour on the device).

        Returns:
            ``self`` when ``colour`` is not ``"auto"``, else a copy with it resolved.

        Raises:
            DeviceUnavailableError: ``decode="device"`` and ``device`` is not a CUDA device.
        """
        check_decode_device("DinoPreset", self.decode, device)
        if self.colour != "auto":
            return self
        on_cpu = device is None or torch.device(device).type == "cpu"
        if self.resize == "device":
            on_cpu = False
        return dataclasses.replace(self, colour="workers" if on_cpu else "device")

    @property
    def fields(self) -> tuple[str, ...]:
        """The sample fields the worker reads: the image, and the label when there is one."""
        if self.label_field is None:
            return (self.image_field,)
        return (self.image_field, self.label_field)

    @property
    def host_fields(self) -> tuple[str, ...]:
        """Batch fields the loader leaves on the host: the JPEG bytes with ``decode="device"``
        (nvJPEG reads them from host memory)."""
        return ("payload",) if self.decode == "device" else ()

    @property
    def n_tokens(self) -> int:
        """Patch tokens per global crop, ``(global_crops_size // patch_size) ** 2``."""
        height, width = self.mask_generator.get_shape()
        return height * width

    def plan(
        self, height: int, width: int, rng: np.random.Generator
    ) -> tuple[list[tuple[int, int, int, int]], np.ndarray]:
        """Draw one image's crop boxes and flips: the 2 global views, then the local views.

        Args:
            height: height of the image as displayed (after its EXIF orientation).
            width: width of the image as displayed.
            rng: the sample's generator; boxes are drawn first (global, then local), then one
                flip per view (in C where the ``_masking`` extension is built: the same draws,
                :func:`~shardstream.vision.device_views.draw_crop_boxes`).

        Returns:
            ``(boxes, flips)``: ``2 + local_crops_number`` boxes ``(top, left, h, w)`` in whole
            pixels, and a bool array with one flip per view (each ``True`` with probability 0.5).

        Raises:
            ConfigError: a dimension is not a positive int.
        """
        height, width = check_dims(height, width)
        ratio = (3 / 4, 4 / 3)  # dinov2's RandomResizedCrop keeps torchvision's default
        drawn = draw_crop_boxes(rng, height, width, self._box_scales, ratio)  # the same, in C
        if drawn is not None:
            return drawn
        boxes = [rrc_box(height, width, *self.global_crops_scale, *ratio, rng) for _ in range(2)]
        boxes += [
            rrc_box(height, width, *self.local_crops_scale, *ratio, rng)
            for _ in range(self.local_crops_number)
        ]
        return boxes, rng.random(len(boxes)) < 0.5

    def draw_params(self, rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
        """Draw the colour parameters of one sample's views from its generator.

        Args:
            rng: the sample's generator: every view's parameters are drawn at once
                (:class:`~shardstream.vision.recipes.PhotometricDraws`), each view with its
                kind's recipe and the law of
                :func:`~shardstream.vision.photometric.draw_photometric_params`.

        Returns:
            ``{"global_1": params, "global_2": params, "local": params}``, each a dict keyed by
            :data:`~shardstream.vision.photometric.PARAM_KEYS` (0-d arrays for the global
            views); the local values have a leading axis of ``local_crops_number``.
        """
        values = self._draws.draw(rng)
        return {
            "global_1": {key: value[0, ...] for key, value in values.items()},
            "global_2": {key: value[1, ...] for key, value in values.items()},
            "local": {key: value[2:] for key, value in values.items()},
        }

    def _view_params(self, rng: np.random.Generator) -> ViewParams:
        """:meth:`draw_params` as its draws (the same generator calls), read as the same dict;
        the device modes' collation computes a whole batch's parameters from them at once."""
        return ViewParams(self._draws, _VIEW_KINDS, *self._draws.draw_uniforms(rng))

    def in_place_fields(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """The views the loader may have :meth:`worker` write straight into its batch arrays.

        Returns:
            ``{"global_crops": ((2, 3, G, G), uint8), "local_crops": ((N, 3, L, L), uint8)}``
            when colour runs on the device; ``{}`` with ``colour="workers"``, whose
            :meth:`collate` lays the views out itself.
        """
        if self.colour == "workers" or self.resize == "device":
            return {}
        global_size, local_size = self.global_crops_size, self.local_crops_size
        return {
            "global_crops": ((2, 3, global_size, global_size), np.dtype(np.uint8)),
            "local_crops": (
                (self.local_crops_number, 3, local_size, local_size),
                np.dtype(np.uint8),
            ),
        }

    def worker(
        self,
        sample: Mapping[str, Any],
        rng: np.random.Generator,
        out: Mapping[str, np.ndarray] | None = None,
    ) -> Any:
        """Cut one sample's views to uint8 and draw all its random parameters (in the workers).

        Args:
            sample: the sample; ``sample[image_field]`` holds the encoded image bytes.
            rng: the sample's generator (a function of seed, epoch and position): crop boxes,
                flips, colour parameters, then masks are drawn from it, in that order.
            out: optional uint8 arrays to cut the views into, shaped as
                :meth:`in_place_fields` says (the loader passes this sample's rows of the
                batch); new arrays when ``None``. Their contents are unspecified when the
                image turns out bad.

        Returns:
            A dict of fixed-shape arrays: ``global_crops`` (uint8 ``(2, 3, G, G)``),
            ``local_crops`` (uint8 ``(N, 3, L, L)``), ``photometric`` (see :meth:`draw_params`),
            ``masks`` (bool ``(2, G / p, G / p)``) and ``mask_upperbound`` (int64) when masks
            are on, and the label field (int64) when the preset has one. With
            ``colour="workers"`` the views come back already coloured (still uint8). With
            ``resize="device"`` / ``decode="device"`` the views are replaced by what the device
            cuts them from: ``payload`` (the uint8 pixels of the crops' union, or the JPEG
            bytes), ``boxes`` (float64 ``(2 + N, 4)`` in those pixels) and ``flips`` (bool
            ``(2 + N,)``), see :mod:`~shardstream.vision.device_views`, and ``photometric``
            is a :class:`~shardstream.vision.view_params.ViewParams` (it reads as the same
            dict). Or :data:`shardstream.engine.SKIPPED` for a bad image under
            ``on_error="skip"``.

        Raises:
            MissingFieldError: the sample lacks the image or label field.
            LabelError: the label is not an integer.
            ImageDecodeError: the image cannot be decoded (corrupt, truncated, zero pixels) or
                has more pixels than ``max_pixels``; the message names the sample key.
            ConfigError: an ``out`` array has the wrong shape or dtype.
        """
        data = sample_field(sample, self.image_field)
        outputs = self._outputs(out)
        try:
            height, width = image_size(data)
            boxes, flips = self.plan(height, width, rng)
            # _cut draws nothing: the stream's order is kept
            params = self._view_params(rng) if self.resize == "device" else self.draw_params(rng)
            if self.resize == "device":
                shipped = self._ship(data, height, width, boxes, flips)
            else:
                shipped = None
                global_crops, local_crops = self._cut(
                    data,
                    height,
                    width,
                    boxes,
                    flips,
                    params if self.colour == "workers" else None,
                    outputs=outputs,
                )
        except ImageDecodeError as error:
            if self.on_error == "skip":
                return SKIPPED
            raise ImageDecodeError(error.problem, key=sample_key(sample)) from error
        views: dict[str, Any]
        if shipped is not None:
            views = {**shipped, "photometric": params}
        else:
            views = {
                "global_crops": global_crops,
                "local_crops": local_crops,
                "photometric": params,
            }
        if self.masks:
            masks, upperbound = self._mask_sampler.draw(rng)
            views["masks"] = masks
            views["mask_upperbound"] = np.int64(upperbound)
        if self.label_field is not None:
            views[self.label_field] = int_label(sample, self.label_field)
        return views

    def _sizes(self) -> list[tuple[int, int]]:
        """Each view's output size: the two global views, then the local ones."""
        global_size, local_size = self.global_crops_size, self.local_crops_size
        return [(global_size, global_size)] * 2 + [(local_size, local_size)] * (
            self.local_crops_number
        )

    def _ship(self, data: Any, height: int, width: int, boxes: Any, flips: Any) -> dict:
        """What the worker ships in the device modes: pixels or bytes, boxes and flips."""
        if self.decode == "device":
            shipped = ship_encoded(data, boxes, max_pixels=self.max_pixels)
        else:
            shipped = ship_pixels(
                data, height, width, boxes, self._sizes(), max_pixels=self.max_pixels
            )
        shipped["flips"] = np.asarray(flips, dtype=bool)
        return shipped

    def _outputs(
        self, out: Mapping[str, np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """``out``'s view arrays, checked against :meth:`in_place_fields` (``None`` for none).

        Raises:
            ConfigError: an array is missing or has the wrong shape or dtype.
        """
        if out is None:
            return None
        global_size, local_size = self.global_crops_size, self.local_crops_size
        wanted = {
            "global_crops": (2, 3, global_size, global_size),
            "local_crops": (self.local_crops_number, 3, local_size, local_size),
        }
        arrays = []
        for name, shape in wanted.items():
            array = out.get(name)
            if not isinstance(array, np.ndarray) or array.shape != shape or array.dtype != np.uint8:
                got = (
                    f"{array.dtype} {array.shape}"
                    if isinstance(array, np.ndarray)
                    else type(array).__name__
                )
                raise ConfigError(
                    f"out[{name!r}] must be a uint8 array of shape {shape}, got {got}"
                )
            arrays.append(array)
        return arrays[0], arrays[1]

    def _cut(
        self,
        data: bytes | memoryview,
        height: int,
        width: int,
        boxes: Sequence[tuple[int, int, int, int]],
        flips: np.ndarray,
        params: Mapping[str, Any] | None = None,
        outputs: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Decode once and cut every view: ``(2, 3, G, G)`` and ``(N, 3, L, L)`` uint8.

        Without ``params`` the views are resized and mirrored straight into the channels-first
        outputs. With ``params`` they are resized channels-last, coloured there (OpenCV's ops are
        fastest on interleaved pixels), then split once into the channels-first outputs. The
        outputs are ``outputs`` when given, else new arrays.
        """
        global_size, local_size = self.global_crops_size, self.local_crops_size
        count = len(boxes)
        sizes = [(global_size, global_size)] * 2 + [(local_size, local_size)] * (count - 2)
        if outputs is None:
            global_crops = np.empty((2, 3, global_size, global_size), np.uint8)
            local_crops = np.empty((count - 2, 3, local_size, local_size), np.uint8)
        else:
            global_crops, local_crops = outputs
        planes = [global_crops[0], global_crops[1], *local_crops]
        # dinov2's global crops nearly always need full size; choose_scale only when all fit
        fits = min(min(box[2] / out_h, box[3] / out_w) for box, (out_h, out_w) in zip(boxes, sizes))
        scale = 1 if fits < 2 else choose_scale(height, width, boxes, sizes)
        if scale == 1 and params is None:  # colour on the device: straight into channels-first
            image = decode_image(data, max_pixels=self.max_pixels)
            resize_crops(image, boxes, flips, [out.transpose(1, 2, 0) for out in planes])
            return global_crops, local_crops
        global_hwc = np.empty((2, global_size, global_size, 3), np.uint8)
        local_hwc = np.empty((count - 2, local_size, local_size, 3), np.uint8)
        views = [global_hwc[0], global_hwc[1], *local_hwc]
        if scale == 1:
            resize_crops(decode_image(data, max_pixels=self.max_pixels), boxes, flips, views)
        else:
            crops = decode_crops(
                data, boxes, sizes, flip=flips, scale=scale, max_pixels=self.max_pixels
            )
            for crop, view in zip(crops, views):
                np.copyto(view, crop)
        if params is not None:
            recipes = self.recipes
            for index, kind in enumerate(("global_1", "global_2")):
                one = global_hwc[index : index + 1]
                apply_photometric_views(one, [params[kind]], recipes[kind], layout="NHWC", out=one)
            if count > 2:
                apply_photometric_views(
                    local_hwc, params["local"], recipes["local"], layout="NHWC", out=local_hwc
                )
        for view, out in zip(views, planes):
            cv2.split(view, list(out))  # writes the three contiguous planes of ``out``
        return global_crops, local_crops


# --- helpers ---------------------------------------------------------------------------------


def _set(preset: DinoPreset, name: str, value: Any) -> None:
    object.__setattr__(preset, name, value)


def _scale_pair(name: str, value: Any) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a pair (min, max) of numbers, got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high):
        raise ConfigError(f"{name} must be finite (min, max) with 0 < min <= max, got {value!r}")
    return low, high


def _int(name: str, value: Any, low: int) -> int:
    return check_int(value, name, low=low, message=_INT_MESSAGE)
