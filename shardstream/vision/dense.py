"""Dense-target presets: image and its targets through the same geometry, in the loader's workers.

:class:`SegmentationPreset` (training) and :class:`DenseEvalPreset` (evaluation) are
:class:`~shardstream.loader.loader.Loader` presets like
:class:`~shardstream.vision.supervised.SupervisedPreset`: ``worker(sample, rng)`` decodes the image
and every target named in ``targets`` once, in the worker, and moves them together; ``device``
normalises the uint8 images on the consuming side (or ``collate`` in the workers).

``targets`` maps a sample field to its kind, so any data set's keys work:

- ``"mask"``: a label image of class indices (:func:`~shardstream.vision.dense_targets.decode_mask`:
  palette PNGs give their indices, 16-bit PNGs their values); resized by nearest neighbour, padded
  with ``ignore_index``. Output ``(H, W)`` of the label image's integer dtype.
- ``"saliency"``: a grey map, resized with Pillow's antialiased bilinear filter, padded with 0.
  Output uint8 ``(H, W)``.
- ``"boxes"``: ``(N, 4)`` XYXY pixel boxes, moved, clipped, small ones dropped with their labels
  (``box_labels`` names each box field's label field). Output float32 ``(max_objects, 4)``, zero
  rows after the kept ones, and ``"<field>_valid"`` bool ``(max_objects,)``; the labels int64
  ``(max_objects,)`` padded with -1.
- ``"points"``: ``(N, 2)`` ``(x, y)`` fixations, moved, the ones outside dropped. Output float32
  ``(max_objects, 2)`` and ``"<field>_valid"``.

Every geometry is "resize a whole-pixel box of the image to a size, then cut a window of that
(padding outside), then mirror": with ``mode="resized_crop"`` the box is torchvision's
``RandomResizedCrop`` box and the window the whole output; with ``mode="scale"`` the box is the
whole image, resized to a random shorter side, and the window a random crop of ``size`` (padded
right and bottom when the image is smaller, as torchvision's segmentation reference does).
Images resize as Pillow does (bit-identical with the C extension, see
:mod:`~shardstream.vision.resize`), masks as ``torch.nn.functional.interpolate(mode="nearest")``:
the same pixels as torchvision's ``transforms.v2`` on a PIL image with a ``tv_tensors.Mask``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..checks import check_int
from ..engine.collate import default_collate
from ..engine.scratch import FRESH, BatchBuffers
from ..errors import CollateError, ConfigError, ImageDecodeError, TargetError
from .colour_cpu import normalize_uint8
from .crops import normalize_size, resize_shorter_side, rrc_box
from .decode import decode_image, decode_region, image_size
from .dense_boxes import finish_boxes, finish_points, move, pad_objects, parse_objects
from .dense_targets import crop_pad, decode_mask, decode_saliency, resize_mask, resize_saliency
from .preset_fields import DEFAULT_MAX_PIXELS, int_label, sample_field, sample_key
from .recipes import IMAGENET_MEAN, IMAGENET_STD
from .resize import resize_crops
from .supervised import _check_common, _hw, _pair, _PresetSteps, _probability

__all__ = ["TARGET_KINDS", "DensePlan", "SegmentationPreset", "DenseEvalPreset"]

_INT_MESSAGE = "{name} must be an int >= {low}, got {value!r}"

TARGET_KINDS = ("mask", "saliency", "points", "boxes")
"""The kinds of target a dense preset moves with its image."""


@dataclass(frozen=True)
class DensePlan:
    """One sample's geometry: resize ``box`` of the image to ``resized``, cut ``window``, mirror.

    Attributes:
        box: ``(top, left, height, width)``, whole pixels inside the image.
        resized: ``(height, width)`` the box is resized to.
        window: ``(top, left, height, width)`` cut from the resized box; it may reach outside
            (padding).
        flip: mirror the window left to right.
    """

    box: tuple[int, int, int, int]
    resized: tuple[int, int]
    window: tuple[int, int, int, int]
    flip: bool


class _DenseSteps(_PresetSteps):
    """The worker side both dense presets share: decode, apply a :class:`DensePlan`, output."""

    targets: Mapping[str, str]
    box_labels: Mapping[str, str]
    ignore_index: int
    max_objects: int
    min_size: float
    interpolation: str
    max_pixels: int | None

    @property
    def fields(self) -> tuple[str, ...]:
        """The sample fields the worker reads: image, label, targets and box label fields."""
        names = [self.image_field]
        if self.label_field is not None:
            names.append(self.label_field)
        names += [name for name in self.targets if name not in names]
        names += [name for name in self.box_labels.values() if name not in names]
        return tuple(names)

    def _check_targets(self) -> None:
        if not isinstance(self.targets, Mapping):
            raise ConfigError(f"targets must map field names to kinds, got {self.targets!r}")
        targets = dict(self.targets)
        for name, kind in targets.items():
            if not isinstance(name, str) or kind not in TARGET_KINDS:
                raise ConfigError(
                    f"targets: {name!r} -> {kind!r}; each key must be a field name and each "
                    f"kind one of {', '.join(TARGET_KINDS)}"
                )
            if name in (self.image_field, self.label_field):
                raise ConfigError(f"targets: {name!r} is the image or label field")
        labels = dict(self.box_labels or {})
        for name, label in labels.items():
            if targets.get(name) != "boxes" or not isinstance(label, str):
                raise ConfigError(f"box_labels: {name!r} -> {label!r} must map a boxes target")
            if label in targets or label in (self.image_field, self.label_field):
                raise ConfigError(f"box_labels: {label!r} is already another field")
        object.__setattr__(self, "targets", targets)
        object.__setattr__(self, "box_labels", labels)
        for name, low in (("ignore_index", 0), ("max_objects", 1)):
            check_int(getattr(self, name), name, low=low, message=_INT_MESSAGE)
        if not (isinstance(self.min_size, (int, float)) and 0 <= self.min_size < math.inf):
            raise ConfigError(f"min_size must be a finite number >= 0, got {self.min_size!r}")

    def plan_for(self, height: int, width: int, rng: np.random.Generator | None) -> DensePlan:
        """The sample's :class:`DensePlan` (each preset defines it)."""
        raise NotImplementedError

    def collate(self, samples: Sequence[dict], buffers: BatchBuffers = FRESH) -> dict[str, Any]:
        """Merge a batch's worker outputs (in the workers; the loader calls this).

        With ``normalize_in="workers"`` each uint8 image is normalised by table lookup straight
        into its row of the float32 batch (no uint8 stack first); the targets are collated
        by the default collation. Otherwise the default collation.

        Args:
            samples: ``worker`` outputs, at least one.
            buffers: where the batch's arrays are made (the engine's; new arrays by default).

        Returns:
            The batch as numpy arrays.

        Raises:
            MissingFieldError: a sample lacks the image field.
            CollateError: the samples differ in fields or shapes.
        """

        if self.normalize_in != "workers":
            return default_collate(samples, buffers=buffers)
        name = self.image_field
        images = [sample_field(s, name) for s in samples]
        shape = images[0].shape
        if any(image.shape != shape for image in images):
            raise CollateError(f"cannot collate {name!r}: images of different shapes")
        out = buffers.array(name, (len(images), *shape), np.float32)
        for image, row in zip(images, out):
            normalize_uint8(image, self.mean, self.std, out=row)
        batch = {name: out}
        rest = [{k: v for k, v in s.items() if k != name} for s in samples]
        if rest[0]:
            batch.update(default_collate(rest, buffers=buffers))
        return batch

    def worker(self, sample: dict, rng: np.random.Generator | None = None) -> dict[str, Any]:
        """Decode one sample's image and targets, and move them through its plan.

        Args:
            sample: the sample; the image field holds encoded image bytes, each target field
                what its kind takes (see the module notes).
            rng: the sample's generator (a function of seed, epoch and position).

        Returns:
            ``{image_field: uint8 (3, H, W)}`` (``(T, 3, h, w)`` for tiles), the label when the
            preset has one, and each target's outputs (see the module notes).

        Raises:
            MissingFieldError: the sample lacks a field the preset reads.
            LabelError: the label is not an integer.
            ImageDecodeError: the image cannot be decoded or is over ``max_pixels``.
            TargetError: a target cannot be decoded, has the wrong size or shape, or has more
                than ``max_objects`` objects left. Both name the sample's key when it has one.
        """
        data = sample_field(sample, self.image_field)
        try:
            height, width = image_size(data)
            plan = self.plan_for(height, width, rng)
            out: dict[str, Any] = {self.image_field: self._image(data, plan)}
            for name, kind in self.targets.items():
                out.update(self._target(sample, name, kind, plan, (height, width)))
        except ImageDecodeError as error:  # TargetError included
            raise type(error)(error.problem, key=sample_key(sample)) from error
        if self.label_field is not None:
            out[self.label_field] = int_label(sample, self.label_field)
        return out

    def _image(self, data, plan: DensePlan) -> np.ndarray:
        box, (rh, rw), (top, left, h, w) = plan.box, plan.resized, plan.window
        if (top, left, h, w) == (0, 0, rh, rw):  # decode only the box, resize into (3, h, w)
            region, _ = decode_region(data, box, max_pixels=self.max_pixels)
            out = np.empty((3, rh, rw), np.uint8)
            whole = (0, 0, *region.shape[:2])
            resize_crops(
                region, [whole], [plan.flip], [out.transpose(1, 2, 0)],
                interpolation=self.interpolation,
            )  # fmt: skip
            return out
        image = decode_image(data, max_pixels=self.max_pixels)
        resized = np.empty((rh, rw, 3), np.uint8)
        resize_crops(image, [box], [False], [resized], interpolation=self.interpolation)
        window = crop_pad(resized, top, left, h, w, 0)
        if plan.flip:
            window = window[:, ::-1]
        return np.ascontiguousarray(window.transpose(2, 0, 1))

    def _raster(self, layer: np.ndarray, plan: DensePlan, fill: int, resize) -> np.ndarray:
        top, left, h, w = plan.window
        whole = (top, left, h, w) == (0, 0, *plan.resized)
        out = resize(layer, plan.box, plan.resized, plan.flip and whole)
        if whole:
            return out
        out = crop_pad(out, top, left, h, w, fill)
        return np.ascontiguousarray(out[:, ::-1]) if plan.flip else out

    def _target(self, sample, name: str, kind: str, plan: DensePlan, size) -> dict[str, Any]:
        value = sample_field(sample, name)
        if kind == "mask":
            mask = decode_mask(value, field=name, size=size)
            if self.ignore_index > np.iinfo(mask.dtype).max:
                mask = mask.astype(np.int32)
            return {name: self._raster(mask, plan, self.ignore_index, resize_mask)}
        if kind == "saliency":
            saliency = decode_saliency(value, field=name, size=size)
            return {name: self._raster(saliency, plan, 0, resize_saliency)}
        columns = 4 if kind == "boxes" else 2
        objects = parse_objects(value, columns, name)
        (btop, bleft, bh, bw), (rh, rw) = plan.box, plan.resized
        move(objects, btop, bleft, rh / bh, rw / bw)
        top, left, h, w = plan.window
        move(objects, top, left, 1.0, 1.0)
        if kind == "boxes":
            kept, keep = finish_boxes(objects, h, w, plan.flip, self.min_size)
        else:
            kept, keep = finish_points(objects, h, w, plan.flip)
        padded, valid = pad_objects(kept, self.max_objects, name)
        out = {name: padded, f"{name}_valid": valid}
        label_field = self.box_labels.get(name)
        if label_field is not None:
            labels = _int_array(sample_field(sample, label_field), label_field, len(objects))
            padded_labels = np.full(self.max_objects, -1, np.int64)
            padded_labels[: len(keep)] = labels[keep]
            out[label_field] = padded_labels
        return out


def _int_array(value, name: str, count: int) -> np.ndarray:
    try:
        labels = np.asarray(value).astype(np.int64, casting="same_kind").reshape(-1)
    except (TypeError, ValueError):
        raise TargetError(f"field {name!r} must hold integer labels, got {value!r}") from None
    if len(labels) != count:
        raise TargetError(f"field {name!r} has {len(labels)} labels for {count} boxes")
    return labels


@dataclass(frozen=True, kw_only=True)
class SegmentationPreset(_DenseSteps):
    """Training geometry for an image and its dense targets, drawn from the sample's generator.

    Attributes:
        size: output size, an int (square) or ``(height, width)``.
        mode: ``"resized_crop"`` (torchvision's ``RandomResizedCrop(size, scale, ratio)``) or
            ``"scale"`` (resize the shorter side to a random length, then a random ``size``
            crop, padded right and bottom where the image is smaller).
        scale: ``"resized_crop"``: ``(min, max)`` area fraction of the crop.
        ratio: ``"resized_crop"``: ``(min, max)`` aspect ratio (width / height).
        scale_range: ``"scale"``: the shorter side is a uniform integer in
            ``[int(min * base), int(max * base)]``.
        base_size: ``"scale"``: ``base`` above; ``None``: the image's own shorter side.
        flip_p: probability of mirroring left to right.
        targets: ``{field: kind}``, kinds from :data:`TARGET_KINDS`.
        box_labels: ``{boxes field: its labels field}``: labels dropped with their boxes.
        ignore_index: the mask value of padded pixels.
        max_objects: rows of the padded boxes / points outputs.
        min_size: boxes with a side under this (output pixels) after clipping are dropped.
        mean, std: normalisation (RGB, in [0, 1]).
        interpolation: the image's filter, ``"bilinear"`` or ``"bicubic"`` (antialiased).
        image_field: the field with the encoded image.
        label_field: an integer image-level label field, or ``None`` (default).
        max_pixels: refuse images with more stored pixels (``None``: no limit).
        normalize_in: ``"device"``, ``"workers"`` or ``"auto"`` (as ``SupervisedPreset``).
    """

    size: int | tuple[int, int] = 512
    mode: str = "resized_crop"
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    scale_range: tuple[float, float] = (0.5, 2.0)
    base_size: int | None = None
    flip_p: float = 0.5
    targets: Mapping[str, str] = field(default_factory=lambda: {"label_image": "mask"})
    box_labels: Mapping[str, str] = field(default_factory=dict)
    ignore_index: int = 255
    max_objects: int = 100
    min_size: float = 1.0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    image_field: str = "image"
    label_field: str | None = None
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    normalize_in: str = "auto"

    def __post_init__(self) -> None:
        """Check and normalise every argument.

        Raises:
            ConfigError: an argument is of the wrong kind or out of range (the message names it).
        """
        object.__setattr__(self, "size", normalize_size(self.size, "size"))
        if self.mode not in ("resized_crop", "scale"):
            raise ConfigError(f"mode must be 'resized_crop' or 'scale', got {self.mode!r}")
        object.__setattr__(self, "scale", _pair("scale", self.scale, positive=False))
        object.__setattr__(self, "ratio", _pair("ratio", self.ratio, positive=True))
        object.__setattr__(self, "scale_range", _pair("scale_range", self.scale_range, True))
        if self.base_size is not None:
            object.__setattr__(self, "base_size", normalize_size(self.base_size, "base_size")[0])
        object.__setattr__(self, "flip_p", _probability("flip_p", self.flip_p))
        _check_common(self)
        self._check_targets()

    def plan_for(self, height: int, width: int, rng: np.random.Generator | None) -> DensePlan:
        """Draw a sample's plan from ``rng``.

        ``"resized_crop"``: the box as :func:`~shardstream.vision.crops.rrc_box` draws it, then
        the flip. ``"scale"``: the shorter side, the crop's top, its left, then the flip.

        Args:
            height: the image's height as displayed.
            width: its width.
            rng: the sample's generator (required).

        Returns:
            The :class:`DensePlan`.

        Raises:
            ConfigError: ``rng`` is None.
        """
        if rng is None:
            raise ConfigError("SegmentationPreset needs the sample's generator (rng)")
        out_h, out_w = _hw(self.size)
        if self.mode == "resized_crop":
            box = rrc_box(height, width, *self.scale, *self.ratio, rng)
            flip = bool(rng.random() < self.flip_p)
            return DensePlan(box, (out_h, out_w), (0, 0, out_h, out_w), flip)
        base = self.base_size or min(height, width)
        low, high = (max(1, int(v * base)) for v in self.scale_range)
        short = int(rng.integers(low, high + 1))
        rh, rw = resize_shorter_side(height, width, short)
        top = int(rng.integers(0, max(rh - out_h, 0) + 1))
        left = int(rng.integers(0, max(rw - out_w, 0) + 1))
        flip = bool(rng.random() < self.flip_p)
        return DensePlan((0, 0, height, width), (rh, rw), (top, left, out_h, out_w), flip)


@dataclass(frozen=True, kw_only=True)
class DenseEvalPreset(_DenseSteps):
    """Evaluation geometry for an image and its dense targets: resize, then a centre crop or tiles.

    ``tile_stride=None``: torchvision's ``Resize(resize_size)`` + ``CenterCrop(crop_size)``
    (padding symmetrically, as ``CenterCrop`` does, where the crop is larger); ``crop_size=None``
    keeps the whole resized image. With ``tile_stride`` the image is resized to ``resize_size``
    (a ``(height, width)`` pair, so every sample has the same tiles) and cut into overlapping
    ``crop_size`` tiles every ``tile_stride`` pixels (the last row and column of tiles flush
    with the edge): the image output is ``(T, 3, h, w)``, the targets stay whole at
    ``resize_size`` (predictions are stitched back there) and ``tiles_field`` holds each tile's
    ``(top, left, height, width)`` as int64 ``(T, 4)``.

    Attributes:
        resize_size: an int (the shorter side, aspect kept), a ``(height, width)`` pair, or
            ``None`` (no resize).
        crop_size: the centre crop or tile size, an int or ``(height, width)``; ``None``: none.
        tile_stride: the tiles' stride, an int or ``(height, width)``; ``None``: centre crop.
        tiles_field: the output field of the tile boxes.
        targets, box_labels, ignore_index, max_objects, min_size, mean, std, interpolation,
        image_field, label_field, max_pixels, normalize_in: as :class:`SegmentationPreset`.
    """

    resize_size: int | tuple[int, int] | None = 512
    crop_size: int | tuple[int, int] | None = None
    tile_stride: int | tuple[int, int] | None = None
    tiles_field: str = "tiles"
    targets: Mapping[str, str] = field(default_factory=lambda: {"label_image": "mask"})
    box_labels: Mapping[str, str] = field(default_factory=dict)
    ignore_index: int = 255
    max_objects: int = 100
    min_size: float = 1.0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    image_field: str = "image"
    label_field: str | None = None
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    normalize_in: str = "auto"

    def __post_init__(self) -> None:
        """Check and normalise every argument.

        Raises:
            ConfigError: an argument is of the wrong kind or out of range, or tiles are asked
                for without a ``(height, width)`` ``resize_size`` and a ``crop_size`` that fits.
        """
        if self.resize_size is not None and not isinstance(self.resize_size, (int, np.integer)):
            object.__setattr__(self, "resize_size", normalize_size(self.resize_size, "resize"))
        elif self.resize_size is not None:
            normalize_size(self.resize_size, "resize_size")
        if self.crop_size is not None:
            object.__setattr__(self, "crop_size", normalize_size(self.crop_size, "crop_size"))
        if self.tile_stride is not None:
            stride = normalize_size(self.tile_stride, "tile_stride")
            if not isinstance(self.resize_size, tuple) or self.crop_size is None:
                raise ConfigError("tiles need resize_size=(height, width) and a crop_size")
            if any(c > r for c, r in zip(_hw(self.crop_size), self.resize_size)):
                raise ConfigError(f"crop_size {self.crop_size} exceeds resize {self.resize_size}")
            object.__setattr__(self, "tile_stride", stride)
        _check_common(self)
        self._check_targets()

    def tile_boxes(self) -> np.ndarray:
        """The tiles' ``(top, left, height, width)`` in the resized image, int64 ``(T, 4)``.

        Returns:
            Row-major tiles; empty ``(0, 4)`` when the preset makes no tiles.
        """
        # __post_init__ makes all three pairs when there is a tile stride
        if self.tile_stride is None or self.resize_size is None or self.crop_size is None:
            return np.zeros((0, 4), np.int64)
        (rh, rw), (th, tw), (sh, sw) = (
            _hw(self.resize_size),
            _hw(self.crop_size),
            _hw(self.tile_stride),
        )
        tops = [min(i * sh, rh - th) for i in range(max(math.ceil((rh - th) / sh), 0) + 1)]
        lefts = [min(j * sw, rw - tw) for j in range(max(math.ceil((rw - tw) / sw), 0) + 1)]
        return np.array([(t, x, th, tw) for t in tops for x in lefts], np.int64)

    def plan_for(self, height: int, width: int, rng: np.random.Generator | None) -> DensePlan:
        """The sample's (deterministic) plan; ``rng`` is unused.

        Args:
            height: the image's height as displayed.
            width: its width.
            rng: unused.

        Returns:
            The :class:`DensePlan` (for tiles: the whole resized image).
        """
        if self.resize_size is None:
            rh, rw = height, width
        elif isinstance(self.resize_size, tuple):
            rh, rw = self.resize_size
        else:
            rh, rw = resize_shorter_side(height, width, int(self.resize_size))
        window = (0, 0, rh, rw)
        if self.crop_size is not None and self.tile_stride is None:
            ch, cw = _hw(self.crop_size)
            top = int(round((rh - ch) / 2.0)) if rh >= ch else -((ch - rh) // 2)
            left = int(round((rw - cw) / 2.0)) if rw >= cw else -((cw - rw) // 2)
            window = (top, left, ch, cw)
        return DensePlan((0, 0, height, width), (rh, rw), window, False)

    def worker(self, sample: dict, rng: np.random.Generator | None = None) -> dict[str, Any]:
        """As :meth:`_DenseSteps.worker`; with tiles, the image becomes ``(T, 3, h, w)`` tiles.

        Raises:
            MissingFieldError, LabelError, ImageDecodeError, TargetError: as for
                :class:`SegmentationPreset`.
        """
        out = super().worker(sample, rng)
        if self.tile_stride is not None:
            image = out[self.image_field]
            boxes = self.tile_boxes()
            out[self.image_field] = np.stack(
                [image[:, t : t + h, x : x + w] for t, x, h, w in boxes.tolist()]
            )
            out[self.tiles_field] = boxes
        return out
