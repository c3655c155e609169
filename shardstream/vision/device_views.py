"""The worker side of the presets' device modes: ship pixels or JPEG bytes, not resized views.

``resize="device"`` (:class:`~shardstream.vision.dino.DinoPreset`,
:class:`~shardstream.vision.supervised.SupervisedPreset`): the worker plans the crops exactly as
the exact (``resize="cpu"``) path does, from the same generator in the same order, decodes each
image once (only the union of its crops where the region decoder can, at a reduced DCT scale where
every crop keeps its output resolution) and ships that uint8 region with each crop's box relative
to it (:func:`ship_region`). No resize, flip or channel split runs in the worker.

``decode="device"``: the worker reads only the header and ships the JPEG bytes themselves with
the boxes in the full, oriented frame (:func:`ship_encoded`); images nvJPEG does not take (other
formats, CMYK/YCCK or 12-bit JPEGs, arithmetic coding) and JPEGs that do not end with the EOI
marker (truncated: decoding them here raises here, where ``on_bad_image`` applies) are decoded
here and shipped as pixels instead, so one batch can mix the two (``payload_kind``). Damage
inside the entropy data of a whole JPEG shows only on the device, as an
:class:`~shardstream.errors.ImageDecodeError` for the batch.

:func:`collate_shipped` lays a batch's payloads end to end in one ragged uint8 buffer
(``payload``, in the batch's shared-memory slot when a loader worker collates) with
``payload_offsets``, ``payload_shapes`` and ``payload_kind``; the rest is collated as usual. The
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
from .jpeg import is_jpeg, jpeg_info

__all__ = [
    "MODES",
    "PAYLOAD_FIELDS",
    "KIND_PIXELS",
    "KIND_JPEG",
    "check_modes",
    "check_decode_device",
    "ship_region",
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
)
"""The batch fields :func:`collate_shipped` makes from the samples' payloads."""

KIND_PIXELS = 0
"""``payload_kind`` of a sample shipped as uint8 ``H x W x 3`` pixels (oriented, RGB)."""
KIND_JPEG = 1
"""``payload_kind`` of a sample shipped as its JPEG bytes (decoded on the device)."""

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
    size on both axes, then :func:`~shardstream.vision.crops.choose_scale`.

    Args:
        data: the encoded image.
        height: its oriented height (:func:`~shardstream.vision.decode.image_size`).
        width: its oriented width.
        boxes: the planned ``(top, left, h, w)`` boxes in whole pixels of the oriented image.
        sizes: each crop's output ``(height, width)``.
        max_pixels: refuse images with more stored pixels than this (``None``: no limit).

    Returns:
        ``(pixels, boxes)``: a uint8 ``H x W x 3`` array (possibly a strided view) holding the
        union of the boxes, and a float64 ``(V, 4)`` array of the boxes in its pixels: whole
        numbers at full size; on a reduced decode the fractional boxes the exact path resamples.

    Raises:
        ImageDecodeError: the image cannot be decoded or has too many pixels.
        ConfigError: a box is empty or outside the image.
    """
    fits = min(min(box[2] / h, box[3] / w) for box, (h, w) in zip(boxes, sizes))
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
        bytes end to end), ``payload_offsets`` (int64 ``(B,)``, where each starts),
        ``payload_shapes`` (int64 ``(B, 3)``: ``(H, W, 3)`` of pixels, ``(n, 0, 0)`` of
        ``n`` encoded bytes), ``payload_kind`` (int8 ``(B,)``) and ``payload_orientation``.

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
    lengths = np.array([p.size for p in payloads], np.int64)
    offsets = np.zeros(len(payloads), np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    flat = buffers.array("payload", (int(lengths.sum()),), np.uint8)
    shapes = np.zeros((len(payloads), 3), np.int64)
    for payload, start, shape in zip(payloads, offsets, shapes):
        np.copyto(flat[start : start + payload.size].reshape(payload.shape), payload)
        shape[: payload.ndim] = payload.shape
    kinds = np.array([s.get("payload_kind", KIND_PIXELS) for s in samples], np.int8)
    orientation = np.array([s.get("payload_orientation", 1) for s in samples], np.int8)
    skip = set(PAYLOAD_FIELDS)
    batch = default_collate(
        [{k: v for k, v in s.items() if k not in skip} for s in samples], buffers=buffers
    )
    batch.update(
        payload=flat,
        payload_offsets=offsets,
        payload_shapes=shapes,
        payload_kind=kinds,
        payload_orientation=orientation,
    )
    return batch
