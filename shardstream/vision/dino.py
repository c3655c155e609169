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

Masks are drawn per sample (each global crop masked with probability ``mask_probability``, ratio
uniform in ``mask_ratio_tuple``; :func:`~shardstream.vision.masking.sample_masks`), which has the
same per-crop law as dinov2's per-batch stratified draw; see that function for how they differ.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch

from ..errors import ConfigError, ImageDecodeError
from .colour_cpu import apply_photometric_views, normalize_uint8
from .crops import check_dims, choose_scale, rrc_box
from .decode import decode_crops, decode_image, image_size
from .masking import (
    MaskingGenerator,
    MaskSampler,
    check_mask_probability,
    check_mask_ratio_tuple,
)
from .photometric import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PARAM_KEYS,
    PhotometricRecipe,
    apply_photometric,
    dinov2_recipes,
    normalize,
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

_ON_BAD_IMAGE = ("raise", "skip")
_COLOUR_PLACES = ("auto", "device", "workers")
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


@dataclass(frozen=True, kw_only=True)
class DinoPreset:
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
        on_bad_image: ``"raise"`` an :class:`~shardstream.errors.ImageDecodeError` naming the
            sample key for an image that cannot be decoded (corrupt, truncated, zero pixels,
            over ``max_pixels``), or ``"skip"`` the sample.
        mean: per-channel mean (RGB, in [0, 1]) subtracted on the device.
        std: per-channel standard deviation (RGB, in [0, 1]) divided by on the device.
        dtype: the floating dtype of the output crops (dinov2 trains with ``torch.half``).
        colour: where the colour ops run: ``"device"`` (batched in torch by :meth:`device`, on
            the training device), ``"workers"`` (per view on uint8 in the loader's workers with
            OpenCV, :mod:`~shardstream.vision.colour_cpu`: 4-5x cheaper on a CPU, and the same
            integer arithmetic as dinov2's PIL path) or ``"auto"``: the loader picks
            ``"workers"`` when batches stay on the CPU and ``"device"`` for a GPU
            (:meth:`for_device`); used outside a loader, ``"auto"`` means ``"device"``.

    Raises:
        ConfigError: a setting is of the wrong kind or out of range (the message names it).
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
    on_bad_image: str = "raise"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    dtype: torch.dtype = torch.float32
    colour: str = "auto"
    recipes: Mapping[str, PhotometricRecipe] = field(init=False, repr=False, compare=False)
    mask_generator: MaskingGenerator = field(init=False, repr=False, compare=False)
    _draws: PhotometricDraws = field(init=False, repr=False, compare=False)
    _mask_sampler: MaskSampler = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Check every setting and build the recipes and the mask generator.

        Raises:
            ConfigError: a setting is of the wrong kind or out of range.
        """
        for name in ("global_crops_scale", "local_crops_scale"):
            _set(self, name, _scale_pair(name, getattr(self, name)))
        _set(self, "local_crops_number", _int("local_crops_number", self.local_crops_number, 0))
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
        if self.on_bad_image not in _ON_BAD_IMAGE:
            raise ConfigError(f"on_bad_image must be 'raise' or 'skip', got {self.on_bad_image!r}")
        for name in ("mean", "std"):
            _set(self, name, check_channels(name, getattr(self, name)))
        if self.colour not in _COLOUR_PLACES:
            raise ConfigError(
                f"colour must be one of {', '.join(_COLOUR_PLACES)}, got {self.colour!r}"
            )
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
        """
        if self.colour != "auto":
            return self
        on_cpu = device is None or torch.device(device).type == "cpu"
        return dataclasses.replace(self, colour="workers" if on_cpu else "device")

    @property
    def fields(self) -> tuple[str, ...]:
        """The sample fields the worker reads: the image, and the label when there is one."""
        if self.label_field is None:
            return (self.image_field,)
        return (self.image_field, self.label_field)

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
                flip per view.

        Returns:
            ``(boxes, flips)``: ``2 + local_crops_number`` boxes ``(top, left, h, w)`` in whole
            pixels, and a bool array with one flip per view (each ``True`` with probability 0.5).

        Raises:
            ConfigError: a dimension is not a positive int.
        """
        height, width = check_dims(height, width)
        ratio = (3 / 4, 4 / 3)  # dinov2's RandomResizedCrop keeps torchvision's default
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

    def in_place_fields(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """The views the loader may have :meth:`worker` write straight into its batch arrays.

        Returns:
            ``{"global_crops": ((2, 3, G, G), uint8), "local_crops": ((N, 3, L, L), uint8)}``
            when colour runs on the device; ``{}`` with ``colour="workers"``, whose
            :meth:`collate` lays the views out itself.
        """
        if self.colour == "workers":
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
            ``colour="workers"`` the views come back already coloured (still uint8). Or
            :data:`shardstream.engine.SKIPPED` for a bad image under
            ``on_bad_image="skip"``.

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
            params = self.draw_params(rng)  # _cut draws nothing: the stream's order is kept
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
            if self.on_bad_image == "skip":
                from ..engine import SKIPPED

                return SKIPPED
            raise ImageDecodeError(error.problem, key=sample_key(sample)) from error
        out: dict[str, Any] = {
            "global_crops": global_crops,
            "local_crops": local_crops,
            "photometric": params,
        }
        if self.masks:
            masks, upperbound = self._mask_sampler.draw(rng)
            out["masks"] = masks
            out["mask_upperbound"] = np.int64(upperbound)
        if self.label_field is not None:
            out[self.label_field] = int_label(sample, self.label_field)
        return out

    def collate(self, samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Merge a batch's worker outputs (in the workers; the loader calls this).

        With ``colour="workers"`` the views are already coloured: they are laid out crop-major
        (every sample's first global crop, then every sample's second; the local crops
        likewise) and normalised to float32 by table lookup straight into that layout, as
        ``collated_global_crops`` / ``collated_local_crops``, so the consuming process only
        casts to ``dtype``. Otherwise (colour on the device) this is the default collation.

        Args:
            samples: :meth:`worker` outputs (``SKIPPED`` samples already removed), at least one.

        Returns:
            The batch of arrays :meth:`device` takes.

        Raises:
            CollateError: the samples differ in fields or shapes.
        """
        from ..engine.collate import default_collate
        from ..engine.scratch import batch_array

        if self.colour != "workers":
            return default_collate(samples)
        views = ("global_crops", "local_crops")
        skip = (*views, "photometric")  # applied already
        batch = default_collate([{k: v for k, v in s.items() if k not in skip} for s in samples])
        for name in views:
            first = samples[0][name]  # (views, 3, S, S) uint8
            shape = (first.shape[0], len(samples), *first.shape[1:])
            crops = np.stack(  # crop-major: (views, B, 3, S, S)
                [sample[name] for sample in samples],
                axis=1,
                out=batch_array(f"{name}_uint8", shape, np.uint8, temporary=True),
            )
            flat = crops.reshape(-1, *shape[2:])
            batch[f"collated_{name}"] = normalize_uint8(
                flat, self.mean, self.std, out=batch_array(name, flat.shape, np.float32)
            )
        return batch

    def device(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Colour, normalise and collate a batch of worker outputs on its device.

        Args:
            batch: the collated worker outputs (tensors with a leading batch axis ``B``) on
                the training device.

        Returns:
            dinov2's collated dict: ``collated_global_crops`` (``(2B, 3, G, G)``, ``dtype``:
            every sample's first global crop, then every sample's second),
            ``collated_local_crops`` (``(N * B, 3, L, L)``, ``dtype``, crop-major likewise),
            ``collated_masks`` (bool ``(2B, (G / p) ** 2)``), ``mask_indices_list``,
            ``masks_weight``, ``upperbound`` (a Python int) and ``n_masked_patches`` (the mask
            keys only when masks are on), and ``labels`` (int64 ``(B,)``) when the preset has
            a label field.

        Raises:
            MissingFieldError: the batch lacks a field the worker makes.
        """
        if "collated_global_crops" in batch:  # coloured and laid out by :meth:`collate`
            out = {
                name: batch[name].to(self.dtype)
                for name in ("collated_global_crops", "collated_local_crops")
            }
            if not self.local_crops_number:
                out["collated_local_crops"] = torch.empty((0,), dtype=self.dtype)
            return self._finish(batch, out)
        global_crops = sample_field(batch, "global_crops")
        local_crops = sample_field(batch, "local_crops")
        params = sample_field(batch, "photometric")
        size = self.global_crops_size
        count = global_crops.shape[0]
        collated_global = torch.empty(
            (2 * count, 3, size, size), dtype=self.dtype, device=global_crops.device
        )
        coloured_already = self.colour == "workers"  # uint8 (or normalised float32) views
        for view, kind in enumerate(("global_1", "global_2")):
            if coloured_already:
                coloured = global_crops[:, view]
                if not coloured.is_floating_point():
                    coloured = normalize(coloured, self.mean, self.std)
            else:
                coloured = apply_photometric(
                    global_crops[:, view], params[kind], self.recipes[kind]
                )
            rows = slice(view * count, (view + 1) * count)
            if not coloured_already:
                coloured = normalize(coloured, self.mean, self.std)
            collated_global[rows] = coloured
        out: dict[str, Any] = {"collated_global_crops": collated_global}
        if self.local_crops_number:
            views = _crop_major(local_crops)
            if coloured_already:
                coloured = views
                if not coloured.is_floating_point():
                    coloured = normalize(views, self.mean, self.std)
            else:
                local_params = {key: _crop_major(params["local"][key]) for key in PARAM_KEYS}
                coloured = apply_photometric(views, local_params, self.recipes["local"])
                normalize(coloured, self.mean, self.std, inplace=True)
            out["collated_local_crops"] = coloured.to(self.dtype)
        else:  # what the reference collate gives for no local crops
            out["collated_local_crops"] = torch.empty((0,), dtype=self.dtype)
        return self._finish(batch, out)

    def _finish(self, batch: Mapping[str, Any], out: dict[str, Any]) -> dict[str, Any]:
        """Add the mask keys and the labels to the collated crops ``out``."""
        from .collate import collate_masks

        if self.masks:
            upperbound = int(sample_field(batch, "mask_upperbound").sum())
            out.update(collate_masks(sample_field(batch, "masks"), upperbound))
        if self.label_field is not None:
            out["labels"] = sample_field(batch, self.label_field)
        return out

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
        outputs = [global_crops[0], global_crops[1], *local_crops]
        # dinov2's global crops nearly always need full size; choose_scale only when all fit
        fits = min(min(box[2] / out_h, box[3] / out_w) for box, (out_h, out_w) in zip(boxes, sizes))
        scale = 1 if fits < 2 else choose_scale(height, width, boxes, sizes)
        if scale == 1 and params is None:  # colour on the device: straight into channels-first
            image = decode_image(data, max_pixels=self.max_pixels)
            resize_crops(image, boxes, flips, [out.transpose(1, 2, 0) for out in outputs])
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
        for view, out in zip(views, outputs):
            cv2.split(view, list(out))  # writes the three contiguous planes of ``out``
        return global_crops, local_crops


# --- helpers ---------------------------------------------------------------------------------


def _set(preset: DinoPreset, name: str, value: Any) -> None:
    object.__setattr__(preset, name, value)


def _crop_major(values: torch.Tensor) -> torch.Tensor:
    """``(B, N, ...)`` per-sample views as ``(N * B, ...)``: every sample's view 0, then 1, ..."""
    return values.transpose(0, 1).reshape(-1, *values.shape[2:])


def _scale_pair(name: str, value: Any) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a pair (min, max) of numbers, got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high):
        raise ConfigError(f"{name} must be finite (min, max) with 0 < min <= max, got {value!r}")
    return low, high


def _int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)
