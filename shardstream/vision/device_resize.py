"""The device side of the presets' device modes: decode in batches, cut, resize and flip views.

The batch holds what :func:`~shardstream.vision.device_views.collate_shipped` laid out: each
sample's pixels (or JPEG bytes) in one ragged uint8 buffer, and its views' boxes in those pixels.
:func:`payload_images` turns it into one oriented ``H x W x 3`` uint8 image per sample on the
training device, decoding the JPEGs in one batched call
(``torchvision.io.decode_jpeg(list, device="cuda")``, nvJPEG; torchvision is imported here only)
and upsampling and colour-converting shipped planes as libjpeg does
(:func:`~shardstream.vision.device_planes.planes_to_rgb`).
:func:`resize_views` cuts every view and resizes it with torch's antialiased filter
(``torch.nn.functional.interpolate(..., antialias=True)``: Pillow's bicubic / bilinear weights,
computed in float, rounded once at the end), mirrored where its flip says, to uint8:

- on a CUDA (any non-CPU) device, batched per output size: each view's box is gathered into a
  padded block and resized by two batched matrix products with the filter's weights (zero
  outside the box, reversed for a flip), a few kernels per batch however many views;
- on the CPU, one ``interpolate`` call per view (no launch cost there, and no padding).

Both compute the same function (to float rounding: at most one level apart, where a value sits
at a half). Against the exact path (Pillow's fixed-point arithmetic, rounded and clipped to uint8
between its two passes) the views differ as measured in tests/vision/test_device_resize.py: on
the demo images (sharp synthetic shapes) max 18 / mean 0.25 levels at 224 px, max 15 / mean 0.20
at 96 px, about 1 % of values off by more than one level; on a smooth picture max 2 / mean 0.11.
The large values sit at sharp edges where bicubic overshoots and Pillow clips after its first
pass.
With TF32 matrix products enabled (``torch.backends.cuda.matmul.allow_tf32``) the CUDA path's
values move by a further fraction of a level.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.nn import functional

from ..errors import DeviceUnavailableError, ImageDecodeError
from . import device_views
from .device_planes import planes_to_rgb
from .device_views import KIND_JPEG, KIND_PLANES
from .preset_fields import sample_field

__all__ = ["payload_images", "resize_views", "filter_weights"]

_SUPPORT = {"bicubic": 2.0, "bilinear": 1.0}
_GATHER_BUDGET = {"cpu": 1 << 22, "other": 1 << 26}  # gathered elements per chunk (x 12 bytes)


def payload_images(batch: Mapping[str, Any], device: torch.device) -> list[torch.Tensor]:
    """One oriented uint8 ``H x W x 3`` image per sample, on ``device``.

    Args:
        batch: a collated batch with the payload fields of
            :func:`~shardstream.vision.device_views.collate_shipped` (as tensors).
        device: where the images go (and where the JPEGs are decoded).

    Returns:
        The images, in batch order (views into ``payload`` for shipped pixels already there).

    Raises:
        ImageDecodeError: a JPEG of the batch cannot be decoded.
        DeviceUnavailableError: JPEGs to decode but ``device`` is the CPU outside the tests'
            stand-in.
    """
    payload = batch["payload"]
    offsets = batch["payload_offsets"].tolist()
    shapes = batch["payload_shapes"].tolist()
    kinds = batch["payload_kind"].tolist()
    images: list[torch.Tensor | None] = [None] * len(kinds)
    jpegs = [index for index, kind in enumerate(kinds) if kind == KIND_JPEG]
    if jpegs:
        host = payload if payload.device.type == "cpu" else payload.cpu()
        datas = [host[offsets[i] : offsets[i] + shapes[i][0]] for i in jpegs]
        orientation = batch["payload_orientation"].tolist()
        for index, image in zip(jpegs, _decode_jpegs(datas, device)):
            images[index] = _orient(image.permute(1, 2, 0), int(orientation[index]))
    planes = [index for index, kind in enumerate(kinds) if kind == KIND_PLANES]
    if planes:
        on_device = payload.to(device, non_blocking=True)
        layouts = batch["payload_layout"][planes]
        for index, image in zip(
            planes, planes_to_rgb(on_device, [offsets[i] for i in planes], layouts)
        ):
            images[index] = image
    for index, kind in enumerate(kinds):
        if kind not in (KIND_JPEG, KIND_PLANES):
            height, width, channels = shapes[index]
            start = offsets[index]
            pixels = payload[start : start + height * width * channels]
            images[index] = pixels.view(height, width, channels).to(device, non_blocking=True)
    return [image for image in images if image is not None]


def _decode_jpegs(datas: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """``(3, H, W)`` uint8 images in the stored frame (RGB), decoded on ``device``."""
    from torchvision.io import ImageReadMode, decode_jpeg  # only here: not a core dependency

    if device.type == "cpu" and not device_views._allow_cpu_decode:
        raise DeviceUnavailableError(
            "decode='device' needs the batch on a CUDA device (nvJPEG); it is on the CPU"
        )
    try:
        with warnings.catch_warnings():  # torchvision 0.29 points to TorchCodec, once per call
            warnings.simplefilter("ignore", DeprecationWarning)
            if device.type == "cpu":
                return list(decode_jpeg(datas, mode=ImageReadMode.RGB))
            return list(decode_jpeg(datas, mode=ImageReadMode.RGB, device=device))
    except RuntimeError as error:
        raise ImageDecodeError(
            f"a JPEG of the batch did not decode on {device}: {error}"
        ) from error


def _orient(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """``image`` (stored ``H x W x C``) as displayed under EXIF ``orientation`` (as
    :func:`shardstream.vision.decode.orient`, with copies where torch cannot view)."""
    if orientation >= 5:
        image = image.transpose(0, 1)
    dims = {2: (1,), 3: (0, 1), 4: (0,), 6: (1,), 7: (0, 1), 8: (0,)}.get(orientation)
    return image.flip(dims) if dims else image


def filter_weights(
    lengths: torch.Tensor,
    out_size: int,
    taps: int,
    interpolation: str,
    flips: torch.Tensor | None = None,
    starts: torch.Tensor | None = None,
    spans: torch.Tensor | None = None,
) -> torch.Tensor:
    """The antialiased resize of ``torch.nn.functional.interpolate`` as dense weight matrices.

    Row ``o`` of matrix ``n`` holds the weights output pixel ``o`` gives input pixels
    ``0 .. taps - 1`` when an axis of ``lengths[n]`` pixels is resized to ``out_size``: torch's
    (and Pillow's) antialiased filter, centres at ``(o + 0.5) * scale``, the support widened by
    the scale when shrinking, normalised per output pixel; zero past ``lengths[n]``. With
    ``starts`` and ``spans`` only the fractional span ``[start, start + span)`` of the input is
    resized (Pillow's ``resize(box=...)``): centres at ``start + (o + 0.5) * span / out_size``.

    Args:
        lengths: int ``(N,)`` input lengths (each ``<= taps``).
        out_size: the output length.
        taps: columns of the matrices (the longest input of the batch, or more).
        interpolation: ``"bicubic"`` (Keys, ``a = -0.5``) or ``"bilinear"``.
        flips: optional bool ``(N,)``: reverse the output order of those matrices.
        starts: optional float ``(N,)`` first input coordinate resized (default 0).
        spans: optional float ``(N,)`` input length resized (default ``lengths``).

    Returns:
        float32 ``(N, out_size, taps)`` on ``lengths``' device.
    """
    device = lengths.device
    length = lengths.to(torch.float64)[:, None]
    span = length if spans is None else spans.to(device, torch.float64)[:, None]
    start = 0.0 if starts is None else starts.to(device, torch.float64)[:, None]
    scale = span / out_size
    support = _SUPPORT[interpolation]
    reach = torch.where(scale >= 1, support * scale, torch.full_like(scale, support))
    invscale = torch.where(scale >= 1, 1 / scale, torch.ones_like(scale))
    centre = start + scale * (torch.arange(out_size, device=device, dtype=torch.float64) + 0.5)
    low = torch.clamp(torch.trunc(centre - reach + 0.5), min=0)
    high = torch.minimum(torch.trunc(centre + reach + 0.5), length)
    j = torch.arange(taps, device=device, dtype=torch.float64)[None, None, :]
    x = ((j - centre[..., None] + 0.5) * invscale[..., None]).abs()
    if interpolation == "bicubic":
        a = -0.5
        near = ((a + 2) * x - (a + 3)) * x * x + 1
        far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
        weights = torch.where(x < 1, near, torch.where(x < 2, far, torch.zeros_like(x)))
    else:
        weights = torch.clamp(1 - x, min=0)
    weights = weights * ((j >= low[..., None]) & (j < high[..., None]))
    total = weights.sum(-1, keepdim=True)
    weights = torch.where(total != 0, weights / torch.where(total != 0, total, 1), weights)
    if flips is not None:
        weights = torch.where(flips[:, None, None], weights.flip(1), weights)
    return weights.to(torch.float32)


def resize_views(
    images: Sequence[torch.Tensor],
    boxes: torch.Tensor,
    flips: torch.Tensor,
    sizes: Sequence[tuple[int, int]],
    *,
    interpolation: str = "bicubic",
    method: str = "auto",
) -> list[torch.Tensor]:
    """Cut, resize (antialiased) and flip every view of every sample, to uint8.

    Args:
        images: per sample an ``H x W x 3`` uint8 tensor, all on one device.
        boxes: int ``(B, V, 4)`` boxes ``(top, left, h, w)`` in each sample's image.
        flips: bool ``(B, V)``: mirror that view left to right.
        sizes: each view's output ``(height, width)``.
        interpolation: ``"bicubic"`` or ``"bilinear"``.
        method: ``"matmul"`` (batched per output size), ``"interpolate"`` (one call per view)
            or ``"auto"`` (``"interpolate"`` on the CPU, ``"matmul"`` elsewhere).

    Returns:
        Per view, a uint8 ``(B, 3, h, w)`` tensor on the images' device.
    """
    device = images[0].device
    count = len(images)
    outs = [torch.empty((count, 3, h, w), dtype=torch.uint8, device=device) for h, w in sizes]
    if method == "auto":
        method = "interpolate" if device.type == "cpu" else "matmul"
    windows, fractions, integral = _windows(boxes.cpu().to(torch.float64))
    host_flips = flips.cpu().to(torch.bool)
    if method == "interpolate":
        for index, image in enumerate(images):
            for view, size in enumerate(sizes):
                top, left, h, w = windows[index, view].tolist()
                flip = bool(host_flips[index, view])
                if integral[index, view]:
                    crop = image[top : top + h, left : left + w].permute(2, 0, 1)[None].float()
                    out = functional.interpolate(
                        crop, size=size, mode=interpolation, antialias=True, align_corners=False
                    )
                    out = out[0].round_().clamp_(0, 255).to(torch.uint8)
                    outs[view][index] = out.flip(-1) if flip else out
                else:  # a fractional box (reduced decode): the weights, on this one view
                    flat, starts, widths = _flatten([image])
                    outs[view][index] = _resize_group(
                        flat,
                        starts,
                        widths,
                        windows[index, view][None],
                        fractions[index, view][None],
                        host_flips[index, view][None].to(device),
                        size,
                        interpolation,
                    )[0]
        return outs
    flat, starts, widths = _flatten(images)
    for size in dict.fromkeys(sizes):
        views = [v for v, s in enumerate(sizes) if s == size]

        sample = torch.arange(count).repeat(len(views))
        result = _resize_group(
            flat,
            starts[sample],
            widths[sample],
            _view_major(windows, views),
            _view_major(fractions, views),
            _view_major(host_flips, views).to(device),
            size,
            interpolation,
        )
        result = result.view(len(views), count, 3, *size)
        for position, view in enumerate(views):
            outs[view].copy_(result[position])
    return outs


def _view_major(values: torch.Tensor, views: list[int]) -> torch.Tensor:
    """``(B, V, ...)`` values of the chosen views as ``(len(views) * B, ...)``: the first chosen
    view of every sample, then the next, ..."""
    return values[:, views].transpose(0, 1).reshape(-1, *values.shape[2:])


def _windows(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per box ``(top, left, h, w)`` (float, host): the whole pixels it reads ``(top, left, h,
    w)`` (int64), where its fractional span starts in them and how long it is ``(y, x, h, w)``
    (float64), and whether the box is whole pixels (bool); the rounding of the exact path."""

    def floor(values: torch.Tensor) -> torch.Tensor:  # decode._floor: within 1e-6 is whole
        nearest = values.round()
        return torch.where((values - nearest).abs() < 1e-6, nearest, values.floor())

    def ceil(values: torch.Tensor) -> torch.Tensor:
        nearest = values.round()
        return torch.where((values - nearest).abs() < 1e-6, nearest, values.ceil())

    top, left, h, w = boxes.unbind(-1)
    y0, x0 = floor(top), floor(left)
    y1 = torch.maximum(ceil(top + h), y0 + 1)
    x1 = torch.maximum(ceil(left + w), x0 + 1)
    windows = torch.stack([y0, x0, y1 - y0, x1 - x0], -1).to(torch.int64)
    spans_h, spans_w = h.clamp(min=1e-3), w.clamp(min=1e-3)
    fractions = torch.stack([top - y0, left - x0, spans_h, spans_w], -1)
    integral = (top == y0) & (left == x0) & (y1 - y0 == h) & (x1 - x0 == w)
    return windows, fractions, integral


def _flatten(images: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The images end to end in one uint8 buffer, where each starts and its width (host)."""
    flat = torch.cat([image.reshape(-1) for image in images])
    sizes = torch.tensor([image.numel() for image in images], dtype=torch.int64)
    starts = torch.zeros_like(sizes)
    starts[1:] = torch.cumsum(sizes, 0)[:-1]
    widths = torch.tensor([image.shape[1] for image in images], dtype=torch.int64)
    return flat, starts, widths


def _resize_group(
    flat: torch.Tensor,
    starts: torch.Tensor,
    widths: torch.Tensor,
    boxes: torch.Tensor,
    fractions: torch.Tensor,
    flips: torch.Tensor,
    size: tuple[int, int],
    interpolation: str,
) -> torch.Tensor:
    """Resize ``N`` windows (host int64 ``(N, 4)``, their fractional spans in ``fractions``) of
    the flat images to one size: uint8 ``(N, 3, h, w)``, in chunks whose gathered blocks stay
    within the budget."""
    device = flat.device
    taps_h, taps_w = int(boxes[:, 2].max()), int(boxes[:, 3].max())
    budget = _GATHER_BUDGET["cpu" if device.type == "cpu" else "other"]
    chunk = max(1, budget // (taps_h * taps_w * 3))
    out = torch.empty((len(boxes), 3, *size), dtype=torch.uint8, device=device)
    rows = torch.arange(taps_h, device=device)
    cols = torch.arange(taps_w, device=device)
    channels = torch.arange(3, device=device)
    for first in range(0, len(boxes), chunk):
        part = slice(first, first + chunk)
        top, left, h, w = boxes[part].to(device).unbind(1)
        # rows and columns past a box repeat its last one: their weights are zero
        row = top[:, None] + torch.minimum(rows[None], h[:, None] - 1)
        col = left[:, None] + torch.minimum(cols[None], w[:, None] - 1)
        base = (
            starts[part].to(device)[:, None, None]
            + (row[:, :, None] * widths[part].to(device)[:, None, None] + col[:, None, :]) * 3
        )
        block = flat[base[..., None] + channels].float()  # (n, taps_h, taps_w, 3)
        n = block.shape[0]
        start_y, start_x, span_h, span_w = fractions[part].unbind(1)
        weights_y = filter_weights(h, size[0], taps_h, interpolation, None, start_y, span_h)
        weights_x = filter_weights(w, size[1], taps_w, interpolation, flips[part], start_x, span_w)
        tall = torch.bmm(weights_y, block.view(n, taps_h, taps_w * 3))
        tall = tall.view(n, size[0], taps_w, 3).permute(0, 3, 1, 2)  # (n, 3, h_out, taps_w)
        result = torch.matmul(tall, weights_x.transpose(1, 2)[:, None])
        out[part] = result.round_().clamp_(0, 255).to(torch.uint8)
    return out


def shipped_views(
    batch: Mapping[str, Any], sizes: Sequence[tuple[int, int]], interpolation: str
) -> list[torch.Tensor]:
    """Every view of a shipped batch, resized and flipped on the batch's device.

    Args:
        batch: a collated batch of ``resize="device"`` / ``decode="device"`` worker outputs
            (tensors): the payload fields, ``boxes`` (``(B, V, 4)``) and ``flips`` (``(B, V)``).
        sizes: each view's output ``(height, width)``.
        interpolation: ``"bicubic"`` or ``"bilinear"``.

    Returns:
        Per view, a uint8 ``(B, 3, h, w)`` tensor on the device of ``batch["boxes"]``.

    Raises:
        MissingFieldError: the batch lacks a field.
        ImageDecodeError: a JPEG of the batch cannot be decoded.
    """

    boxes = sample_field(batch, "boxes")
    images = payload_images(batch, boxes.device)
    return resize_views(
        images, boxes, sample_field(batch, "flips"), sizes, interpolation=interpolation
    )
