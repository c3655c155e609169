"""The worker side of the presets' device modes: ship pixels or JPEG bytes, not resized views.

``resize="device"`` (:class:`~shardstream.vision.dino.DinoPreset`,
:class:`~shardstream.vision.supervised.SupervisedPreset`): the worker plans the crops exactly as
the exact (``resize="cpu"``) path does, from the same generator in the same order (the boxes and
flips drawn in C from that generator, :func:`draw_crop_boxes`), decodes each image once and ships
the uint8 pixels with each crop's box relative to them (:func:`ship_region`). No resize, flip or
channel split runs in the worker. What is decoded:

- a JPEG at full size whose crops span at least 60 % of its width (DINO's ten crops: ~93 %): the
  band of whole rows from the crops' top to their bottom, decoded by the system libjpeg-turbo
  (the C extension ``_jpegregion``) straight into the array shipped. In a loader worker that
  array is carved out of the batch's shared-memory slot (:mod:`~shardstream.vision.device_band`;
  the engine's reusing buffers, see
  :meth:`~shardstream.engine.scratch.BatchBuffers.slot_array`), so the pixels are written once,
  into memory already mapped, and neither copied by the collation nor by the transport;
- otherwise the union of the crops (the region decoder skips the columns outside a narrow one),
  at a reduced DCT scale where every crop keeps its output resolution, as the exact path decodes.

The pixels are those of the exact path's decode either way (libjpeg-turbo's exact IDCT and
smooth upsampling, whichever build).

``decode="device"``: the worker reads only the header and ships the JPEG bytes themselves with
the boxes in the full, oriented frame (:func:`ship_encoded`); images nvJPEG does not take (other
formats, CMYK/YCCK or 12-bit JPEGs, arithmetic coding) and JPEGs that do not end with the EOI
marker (truncated: decoding them here raises here, where ``on_bad_image`` applies) are decoded
here and shipped as pixels instead, so one batch can mix the two (``payload_kind``). Damage
inside the entropy data of a whole JPEG shows only on the device, as an
:class:`~shardstream.errors.ImageDecodeError` for the batch.

:func:`collate_shipped` lays a batch's payloads end to end in one ragged uint8 buffer
(``payload``, each from a multiple of 64 bytes, zeros between; in the batch's shared-memory slot
when a loader worker collates: a view of the payloads where they were decoded in place, in
sample order, else a copy in the same layout) with ``payload_offsets``, ``payload_shapes`` and
``payload_kind``; the rest is collated as the default collation does. The
device side is :mod:`~shardstream.vision.device_resize`.

On a reduced DCT decode (every crop at least twice its output size on both axes) a box maps to
fractional pixels of the reduced image, exactly as on the exact path, and ships as such; the
device resamples exactly that fractional box (Pillow's ``resize(box=...)`` weights).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..engine.collate import default_collate
from ..engine.scratch import FRESH, BatchBuffers
from ..errors import ConfigError, DeviceUnavailableError
from .crops import CropBox, choose_scale
from .decode import (
    _UNION_MAX_AREA,
    _check_boxes,
    _decode,
    _ends_with_eoi,
    decode_image,
)
from .decode_pil import check_pixels
from .device_band import _ALIGN, _slot_payloads, full_size, ship_band
from .jpeg import is_jpeg, jpeg_info
from .jpeg_planes import NO_LAYOUT
from .view_params import ViewParams, collate_view_params

try:  # optional C extension (setup.py): the crop boxes' draws in C; without it, crops.rrc_box
    from . import _masking
except ImportError:  # pragma: no cover - built where the tests run
    _masking = None  # type: ignore[assignment]  # mypy cannot type an optional module

__all__ = [
    "MODES",
    "PAYLOAD_FIELDS",
    "KIND_PIXELS",
    "KIND_JPEG",
    "KIND_PLANES",
    "check_modes",
    "check_decode_device",
    "draw_crop_boxes",
    "ship_region",
    "ship_pixels",
    "ship_encoded",
    "collate_shipped",
]

MODES: tuple[str, ...] = ("cpu", "device")
"""The values of the presets' ``resize`` and ``decode`` settings."""

PAYLOAD_FIELDS: tuple[str, ...] = (
    "payload",
    "payload_offsets",
    "payload_shapes",
    "payload_kind",
    "payload_orientation",
    "payload_layout",
)
"""The batch fields :func:`collate_shipped` makes from the samples' payloads."""

KIND_PIXELS = 0
"""``payload_kind`` of a sample shipped as uint8 ``H x W x 3`` pixels (oriented, RGB)."""
KIND_JPEG = 1
"""``payload_kind`` of a sample shipped as its JPEG bytes (decoded on the device)."""
KIND_PLANES = 2
"""``payload_kind`` of a sample shipped as libjpeg's raw Y, Cb and Cr planes of a band of rows
(upsampled and converted to RGB on the device; :mod:`~shardstream.vision.jpeg_planes`)."""
_KIND_PLANES_INT8 = np.int8(KIND_PLANES)  # numpy scalars are immutable: one serves every sample

_NVJPEG_PROCESSES = ("baseline", "extended", "progressive")


_allow_cpu_decode = False  # the test-facing stand-in: decode="device" without CUDA


@contextlib.contextmanager
def _cpu_decoder_standin() -> Iterator[None]:
    """Let presets with ``decode="device"`` be built without CUDA (tests only).

    Their device step then decodes with torchvision's CPU decoder when the batch is on the
    CPU, so everything but the nvJPEG call runs on a machine without a GPU.
    """
    global _allow_cpu_decode
    before, _allow_cpu_decode = _allow_cpu_decode, True
    try:
        yield
    finally:
        _allow_cpu_decode = before


def check_modes(owner: str, resize: Any, decode: Any) -> str:
    """Check a preset's ``resize`` and ``decode`` settings; return the resize mode in effect.

    ``decode="device"`` resizes on the device too (the worker has no pixels to resize).

    Args:
        owner: the preset's class name, for messages.
        resize: ``"cpu"`` or ``"device"``.
        decode: ``"cpu"`` or ``"device"``.

    Returns:
        ``"device"`` when either setting is ``"device"``, else ``"cpu"``.

    Raises:
        ConfigError: a setting is not one of :data:`MODES`.
        DeviceUnavailableError: ``decode="device"`` and torch sees no CUDA device.
    """
    for name, value in (("resize", resize), ("decode", decode)):
        if value not in MODES:
            raise ConfigError(f"{owner}: {name} must be 'cpu' or 'device', got {value!r}")
    if decode == "device" and not _allow_cpu_decode:
        import torch

        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"{owner}(decode='device') decodes JPEGs with nvJPEG on a CUDA GPU, and torch "
                "sees no CUDA device on this machine; use decode='cpu' (resize='device' still "
                "moves the resizes to the device)"
            )
    return "device" if "device" in (resize, decode) else "cpu"


def check_decode_device(owner: str, decode: str, device: Any) -> None:
    """Refuse ``decode="device"`` for batches that stay on the CPU (``Loader.preset`` calls
    this through the presets' ``for_device``), before any worker starts.

    Args:
        owner: the preset's class name, for the message.
        decode: the preset's ``decode`` setting.
        device: where the loader sends the batches (``None``: they stay on the CPU).

    Raises:
        DeviceUnavailableError: ``decode="device"`` and ``device`` is not a CUDA device
            (outside the tests' CPU stand-in).
    """
    if decode != "device" or _allow_cpu_decode:
        return
    if device is None or not str(device).startswith("cuda"):
        raise DeviceUnavailableError(
            f"{owner}(decode='device') decodes with nvJPEG on the batches' CUDA device, but "
            f"the loader keeps them on {device or 'the CPU'}: pass device='cuda' to "
            "Loader.preset, or use decode='cpu'"
        )


def draw_crop_boxes(
    rng: np.random.Generator,
    height: int,
    width: int,
    scales: np.ndarray,
    ratio: tuple[float, float],
) -> tuple[list[tuple[int, int, int, int]], np.ndarray] | None:
    """Random-resized-crop boxes, then one flip per box, drawn in C (the ``_masking``
    extension) from ``rng`` itself: the very draws of
    :func:`~shardstream.vision.crops.rrc_box` per box followed by ``rng.random(n) < 0.5``, so
    the generator ends in the same state (~10x quicker than those Python calls).

    Args:
        rng: the sample's generator.
        height: the image's (oriented) height, a positive int (checked by the caller).
        width: its width.
        scales: float64 ``(n, 2)``: each box's ``(min, max)`` area fraction.
        ratio: ``(min, max)`` aspect ratio, ``0 < min <= max``.

    Returns:
        ``(boxes, flips)`` as :meth:`~shardstream.vision.dino.DinoPreset.plan` returns them, or
        ``None`` where the C draws do not apply (the extension is not built, or is an older
        build without them; ``rng`` is not a numpy Generator; a side is ``>= 2**31``): the
        caller then draws in Python.
    """
    if (
        not hasattr(_masking, "rrc_boxes")  # not built, or built before it had the planner
        or type(rng) is not np.random.Generator
        or not (0 < height < 1 << 31 and 0 < width < 1 << 31)
    ):
        return None
    count = len(scales)
    boxes = np.empty((count, 4), np.int64)
    flips = np.empty(count, np.bool_)
    low, high = ratio
    bit_generator = rng.bit_generator
    capsule = bit_generator.capsule  # type: ignore[attr-defined]  # numpy's stubs omit it
    with bit_generator.lock:  # as numpy's own methods draw
        _masking.rrc_boxes(
            capsule,
            height,
            width,
            low,
            high,
            math.log(low),
            math.log(high),
            scales,
            boxes,
            flips,
        )
    return [tuple(box) for box in boxes.tolist()], flips


def _union(boxes: Sequence[CropBox]) -> CropBox:
    top, left = min(box[0] for box in boxes), min(box[1] for box in boxes)
    bottom = max(box[0] + box[2] for box in boxes)
    right = max(box[1] + box[3] for box in boxes)
    return top, left, bottom - top, right - left


def ship_region(
    data: bytes | bytearray | memoryview,
    height: int,
    width: int,
    boxes: Sequence[CropBox],
    sizes: Sequence[tuple[int, int]],
    *,
    max_pixels: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode the pixels the crops read, once, and the crops' boxes relative to them.

    The DCT scale is the exact path's: full size unless every crop is at least twice its output
    size on both axes, then :func:`~shardstream.vision.crops.choose_scale`. At full size, crops
    spanning most of a JPEG's width ship the band of whole rows they span, decoded in place
    (see the module notes); otherwise their union.

    Args:
        data: the encoded image.
        height: its oriented height (:func:`~shardstream.vision.decode.image_size`).
        width: its oriented width.
        boxes: the planned ``(top, left, h, w)`` boxes in whole pixels of the oriented image.
        sizes: each crop's output ``(height, width)``.
        max_pixels: refuse images with more stored pixels than this (``None``: no limit).

    Returns:
        ``(pixels, boxes)``: a uint8 ``H x W x 3`` array (possibly a strided view) holding the
        boxes (the band of rows they span, or their union), and a float64 ``(V, 4)`` array of the boxes in its pixels: whole
        numbers at full size; on a reduced decode the fractional boxes the exact path resamples.

    Raises:
        ImageDecodeError: the image cannot be decoded or has too many pixels.
        ConfigError: a box is empty or outside the image.
    """
    fits = min(min(box[2] / h, box[3] / w) for box, (h, w) in zip(boxes, sizes))
    if fits < 2:
        band = ship_band(data, boxes, max_pixels)
        if band is not None:
            return band[0], band[1]
    scale = 1 if fits < 2 else choose_scale(height, width, boxes, sizes)
    union = _union(boxes)

    def pick(rows: int, cols: int) -> int:
        _check_boxes([union], rows, cols)  # inside the image (the union is, so all are)
        return scale

    if min(min(box[2], box[3]) for box in boxes) <= 0:
        raise ConfigError(f"a crop box is empty: {list(boxes)!r}")
    # decode.py's own decode: the region, and how source pixels map into it (the scale, and
    # the offset of an axis the orientation reverses), as the exact path maps its boxes.
    # Plain Python from here: for ten boxes it is several times quicker than numpy.
    # a union over 85 % of the image decodes whole (simplejpeg: quicker there) and is sliced
    pixels, (fy, oy), (fx, ox), (wy, wx, rows, cols) = _decode(
        data, pick, max_pixels, boxes=[union], max_area=_UNION_MAX_AREA
    )
    spans = []
    for top, left, h, w in boxes:
        y0, x0 = max(top * fy + oy, 0.0), max(left * fx + ox, 0.0)
        y1, x1 = min((top + h) * fy + oy, rows), min((left + w) * fx + ox, cols)
        spans.append((y0 - wy, x0 - wx, y1 - y0, x1 - x0))
    # a whole decode (other formats, or a union too large for the region decoder): the union
    y0 = math.floor(min(span[0] for span in spans) + 1e-6)
    x0 = math.floor(min(span[1] for span in spans) + 1e-6)
    y1 = math.ceil(max(span[0] + span[2] for span in spans) - 1e-6)
    x1 = math.ceil(max(span[1] + span[3] for span in spans) - 1e-6)
    if (y0, x0, y1, x1) != (0, 0, *pixels.shape[:2]):
        pixels = pixels[y0:y1, x0:x1]
        spans = [(top - y0, left - x0, h, w) for top, left, h, w in spans]
    return pixels, np.array(spans, np.float64)


def ship_pixels(
    data: bytes | bytearray | memoryview,
    height: int,
    width: int,
    boxes: Sequence[CropBox],
    sizes: Sequence[tuple[int, int]],
    *,
    max_pixels: int | None,
) -> dict[str, Any]:
    """What ``resize="device"`` ships for one image (arguments and errors: :func:`ship_region`):
    ``{"payload", "boxes"}`` as :func:`ship_region` returns them, or, where the band of whole
    rows applies to a Y:Cb:Cr JPEG (4:2:0, 4:2:2, 4:4:4), ``{"payload", "boxes", "payload_kind":
    KIND_PLANES, "payload_layout"}``: libjpeg's raw planes of the band, flat uint8, and their
    int64 layout (:mod:`~shardstream.vision.jpeg_planes`), which the device upsamples and
    converts to the same RGB pixels; ``boxes`` in the band's pixels."""
    band = ship_band(data, boxes, max_pixels, planes=True) if full_size(boxes, sizes) else None
    if band is None:
        pixels, relative = ship_region(data, height, width, boxes, sizes, max_pixels=max_pixels)
        return {"payload": pixels, "boxes": relative}
    payload, relative, layout = band
    if layout is None:
        return {"payload": payload, "boxes": relative}
    return {
        "payload": payload,
        "boxes": relative,
        "payload_kind": _KIND_PLANES_INT8,
        "payload_layout": layout,
    }


def ship_encoded(
    data: bytes | bytearray | memoryview,
    boxes: Sequence[CropBox],
    *,
    max_pixels: int | None,
) -> dict[str, Any]:
    """What ``decode="device"`` ships for one image: its JPEG bytes, or its pixels if it must.

    Args:
        data: the encoded image.
        boxes: the planned boxes in whole pixels of the oriented, full-size image.
        max_pixels: refuse images with more stored pixels than this (``None``: no limit).

    Returns:
        ``{"payload": ..., "payload_kind": ..., "payload_orientation": ..., "boxes": ...}``:
        the bytes as a uint8 array with kind :data:`KIND_JPEG` and the EXIF orientation the
        device applies, or (images nvJPEG does not take) the decoded oriented ``H x W x 3``
        pixels with kind :data:`KIND_PIXELS`; ``boxes`` as float64 ``(V, 4)`` (whole numbers).

    Raises:
        ImageDecodeError: the header is corrupt, the image has too many pixels, or (pixels
            shipped) it cannot be decoded.
    """
    array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if is_jpeg(data):
        info = jpeg_info(data)
        if (
            info.colorspace not in ("cmyk", "ycck")
            and info.precision == 8
            and info.process in _NVJPEG_PROCESSES
            and _ends_with_eoi(data)  # a truncated file is decoded here, so that it raises here
        ):
            check_pixels(info.width, info.height, max_pixels)
            payload = np.frombuffer(data, np.uint8)
            return {
                "payload": payload,
                "payload_kind": np.int8(KIND_JPEG),
                "payload_orientation": np.int8(info.orientation),
                "boxes": array,
            }
    pixels = decode_image(data, max_pixels=max_pixels)
    return {
        "payload": pixels,
        "payload_kind": np.int8(KIND_PIXELS),
        "payload_orientation": np.int8(1),
        "boxes": array,
    }


def _collate_fields(samples: list[Any], field: str, buffers: BatchBuffers) -> Any:
    """:func:`~shardstream.engine.collate.default_collate`'s batch, quicker for what the
    workers ship (dicts of arrays of one shape and dtype each: ~4x fewer Python steps per
    leaf); anything else, or any difference between the samples, goes to
    ``default_collate``, which also reports it."""
    first = samples[0]
    if type(first) is dict:
        keys = first.keys()
        if all(type(s) is dict and s.keys() == keys for s in samples):
            return {
                key: _collate_fields(
                    [s[key] for s in samples], f"{field}.{key}" if field else str(key), buffers
                )
                for key in keys
            }
    elif type(first) is np.ndarray and first.dtype.kind in "biufc":
        shape, dtype = first.shape, first.dtype
        if all(type(s) is np.ndarray and s.shape == shape and s.dtype == dtype for s in samples):
            out = buffers.array(field or "sample", (len(samples), *shape), dtype)
            if shape:
                np.concatenate(samples, out=out.reshape(-1, *shape[1:]))
            else:  # 0-d arrays
                out[...] = samples
            return out
    return default_collate(samples, field, buffers=buffers)


def _placed_run(payloads: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """The payloads as one ragged buffer without a copy, when they lie end to end in one
    buffer (the batch's slot) in the canonical layout (:data:`_ALIGN`); else ``None``."""
    base = payloads[0].base
    if not isinstance(base, np.ndarray) or base.dtype != np.uint8 or base.ndim != 1:
        return None
    origin = base.ctypes.data
    first = payloads[0].ctypes.data - origin
    offsets = np.empty(len(payloads), np.int64)
    end = first
    for index, payload in enumerate(payloads):
        if (
            payload.base is not base
            or not payload.flags.c_contiguous
            or payload.ctypes.data - origin != end
        ):
            return None
        offsets[index] = end - first
        end += -(-payload.size // _ALIGN) * _ALIGN
    if first < 0 or end > base.size:
        return None
    return base[first:end], offsets


def _plain(value: Any) -> Any:
    """A :class:`~shardstream.vision.view_params.ViewParams` as its dict; anything else as is."""
    return value.as_dict() if type(value) is ViewParams else value


def collate_shipped(
    samples: Sequence[Mapping[str, Any]], buffers: BatchBuffers = FRESH
) -> dict[str, Any]:
    """Collate worker outputs that carry a ragged ``payload`` (pixels or JPEG bytes).

    Args:
        samples: worker outputs, at least one, each with ``payload`` (uint8, any shape) and
            optionally ``payload_kind`` / ``payload_orientation``; their other fields must
            collate by the default rules.
        buffers: where the batch's arrays are made (the engine's; new arrays by default).

    Returns:
        The default collation of the other fields plus ``payload`` (uint8, every sample's
        bytes end to end, each from a multiple of 64 bytes, zeros between), ``payload_offsets``
        (int64 ``(B,)``, where each starts),
        ``payload_shapes`` (int64 ``(B, 3)``: ``(H, W, 3)`` of pixels, ``(n, 0, 0)`` of
        ``n`` encoded bytes or planes), ``payload_kind`` (int8 ``(B,)``),
        ``payload_orientation`` and ``payload_layout`` (int64 ``(B, 11)``: the layout of
        planes, :data:`~shardstream.vision.jpeg_planes.LAYOUT_FIELDS`; zeros for the others).

    Raises:
        ConfigError: a sample has no ``payload`` or it is not uint8.
        CollateError: the other fields differ between samples.
    """

    payloads = []
    for index, sample in enumerate(samples):
        payload = sample.get("payload")
        if not isinstance(payload, np.ndarray) or payload.dtype != np.uint8:
            raise ConfigError(f"sample {index} of the batch has no uint8 'payload' to collate")
        payloads.append(payload)
    if buffers.reuse:  # a loader worker: its next samples decode into the batch's slot
        _slot_payloads.buffers = buffers
    shapes = np.zeros((len(payloads), 3), np.int64)
    for payload, shape in zip(payloads, shapes):
        shape[: payload.ndim] = payload.shape
    placed = _placed_run(payloads)
    if placed is not None:
        flat, offsets = placed
    else:
        padded = np.array([-(-p.size // _ALIGN) * _ALIGN for p in payloads], np.int64)
        offsets = np.zeros(len(payloads), np.int64)
        np.cumsum(padded[:-1], out=offsets[1:])
        flat = buffers.array("payload", (int(padded.sum()),), np.uint8)
        for payload, start, length in zip(payloads, offsets.tolist(), padded.tolist()):
            np.copyto(flat[start : start + payload.size].reshape(payload.shape), payload)
            flat[start + payload.size : start + length] = 0
    kinds = np.array([s.get("payload_kind", KIND_PIXELS) for s in samples], np.int8)
    orientation = np.array([s.get("payload_orientation", 1) for s in samples], np.int8)
    layouts = np.stack([s.get("payload_layout", NO_LAYOUT) for s in samples])
    skip = set(PAYLOAD_FIELDS)
    drawn = {}  # colour parameters kept as their draws: computed for the whole batch at once
    for key, value in samples[0].items():
        if type(value) is ViewParams:
            collated = collate_view_params([s.get(key) for s in samples], key, buffers)
            if collated is not None:
                drawn[key] = collated
    rest = _collate_fields(
        [{k: _plain(v) for k, v in s.items() if k not in skip and k not in drawn} for s in samples],
        "",
        buffers,
    )
    batch = rest
    if drawn:  # in the samples' field order, as the default collation orders them
        batch = {k: drawn[k] if k in drawn else rest[k] for k in samples[0] if k not in skip}
        batch.update((k, v) for k, v in rest.items() if k not in batch)
    batch.update(
        payload=flat,
        payload_offsets=offsets,
        payload_shapes=shapes,
        payload_kind=kinds,
        payload_orientation=orientation,
        payload_layout=layouts,
    )
    return batch
