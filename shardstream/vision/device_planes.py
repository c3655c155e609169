"""libjpeg's upsampling and colour conversion in torch: raw planes to RGB on the device.

The workers of ``resize="device"`` ship a band of a JPEG's rows as libjpeg's raw Y, Cb and Cr
planes (:mod:`~shardstream.vision.jpeg_planes`). :func:`planes_to_rgb` turns a batch of them into
RGB with the very integer arithmetic of libjpeg-turbo's decoder, batched over the samples:

- "fancy" upsampling (``jdsample.c``): 4:2:0 (``h2v2_fancy_upsample``) weighs the nearest chroma
  sample 9, the two next nearest 3 each and the diagonal one 1, ``(sum + 8 or 7) >> 4`` (8 for
  even output columns, 7 for odd); 4:2:2 (``h2v1_fancy_upsample``) ``(3 * near + far + 1 or 2)
  >> 2``; at the plane's edges the missing neighbour is the edge sample itself (libjpeg's
  replicated edge columns and context rows);
- YCbCr to RGB (``jdcolor.c``, ``ycc_rgb_convert``): ``R = Y + ((91881 * (Cr - 128) + 32768)
  >> 16)``, ``B = Y + ((116130 * (Cb - 128) + 32768) >> 16)``, ``G = Y + ((-22554 * (Cb - 128) -
  46802 * (Cr - 128) + 32768) >> 16)``, clamped to 0-255 (``FIX(1.402)``, ``FIX(1.772)``,
  ``FIX(0.34414)``, ``FIX(0.71414)`` at 16 bits).

Exact integer arithmetic either way (int32 when batched for a GPU; float32 per sample on the
CPU, where every value on the way is an integer below 2**24), so CPU and CUDA give the same
bytes, and they equal libjpeg-turbo's RGB decode (checked against it by
tests/vision/test_device_planes.py: odd sizes, every sampling, both methods).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["planes_to_rgb"]


def planes_to_rgb(
    payload: torch.Tensor,
    offsets: Sequence[int],
    layouts: torch.Tensor,
    *,
    method: str = "auto",
) -> list[torch.Tensor]:
    """RGB images of shipped planes, on the payload's device.

    Args:
        payload: the batch's flat uint8 payload (on the device).
        offsets: where each sample's planes start in ``payload``.
        layouts: int64 ``(n, 11)`` their layouts
            (:data:`~shardstream.vision.jpeg_planes.LAYOUT_FIELDS`), on any device.
        method: ``"batched"`` (every sample at once in a padded batch: a few kernels per
            batch, for a GPU), ``"per_sample"`` (row and column selections per sample: ~10x
            less work on the CPU) or ``"auto"`` (``"per_sample"`` on the CPU). The same bytes.

    Returns:
        Per sample a uint8 ``rows x width x 3`` tensor.
    """
    if method == "auto":
        method = "per_sample" if payload.device.type == "cpu" else "batched"
    if method == "per_sample":
        return [
            _sample_rgb(payload, int(offset), layout)
            for offset, layout in zip(offsets, layouts.cpu().tolist())
        ]
    device = payload.device
    host = layouts.cpu().tolist()
    lay = layouts.to(device, torch.int64)
    rows, width, y_stride, c_stride, c_rows, hf, vf, top, c_first, c_height, c_width = (
        lay[:, k] for k in range(11)
    )
    start = torch.as_tensor(list(offsets), dtype=torch.int64, device=device)
    max_rows = max(layout[0] for layout in host)
    max_width = max(layout[1] for layout in host)
    max_c_rows = max(layout[4] for layout in host)
    max_c_width = max(layout[10] for layout in host)
    i = torch.minimum(torch.arange(max_rows, device=device)[None], rows[:, None] - 1)
    x = torch.minimum(torch.arange(max_width, device=device)[None], width[:, None] - 1)
    luma = payload[(start[:, None] + i * y_stride[:, None])[:, :, None] + x[:, None, :]].to(
        torch.int32
    )
    # the chroma rows each output row reads (its own and the next nearest), in the shipped rows
    y = top[:, None] + i
    own_row = torch.div(y, vf[:, None], rounding_mode="floor")
    near_row = torch.where(
        vf[:, None] == 2, torch.where(y % 2 == 0, own_row - 1, own_row + 1), own_row
    )
    near_row = torch.minimum(near_row.clamp(min=0), c_height[:, None] - 1)
    own_row, near_row = own_row - c_first[:, None], near_row - c_first[:, None]
    own_col = torch.div(x, hf[:, None], rounding_mode="floor")
    near_col = torch.where(
        hf[:, None] == 2, torch.where(x % 2 == 0, own_col - 1, own_col + 1), own_col
    )
    near_col = torch.minimum(near_col.clamp(min=0), c_width[:, None] - 1)
    # rounding: 4:2:0 +8 / +7 at 1/16, 4:2:2 +1 / +2 at 1/4 (x4 at 1/16), 4:4:4 exact
    even = (x % 2 == 0)[:, None, :]
    bias = torch.where(
        (hf == 2)[:, None, None],
        torch.where((vf == 2)[:, None, None], torch.where(even, 8, 7), torch.where(even, 4, 8)),
        torch.full_like(even, 8, dtype=torch.int64),
    ).to(torch.int32)
    c_row = torch.minimum(torch.arange(max_c_rows, device=device)[None], c_rows[:, None] - 1)
    c_col = torch.minimum(torch.arange(max_c_width, device=device)[None], c_width[:, None] - 1)
    chroma_start = start + rows * y_stride
    planes = []
    for plane in range(2):  # Cb, then Cr: (n, c_rows, c_width) padded
        base = chroma_start + plane * c_rows * c_stride
        index = (base[:, None] + c_row * c_stride[:, None])[:, :, None] + c_col[:, None, :]
        chroma = payload[index].to(torch.int32)
        # vertical: 3 x the own row + the near row, per output row (1/4 units)
        sums = 3 * _take_rows(chroma, own_row) + _take_rows(chroma, near_row)
        # horizontal: 3 x the own column's sum + the near column's, per output column
        value = 3 * _take_cols(sums, own_col) + _take_cols(sums, near_col) + bias
        planes.append(torch.bitwise_right_shift(value, 4))
    cb, cr = planes[0] - 128, planes[1] - 128
    red = luma + torch.bitwise_right_shift(91881 * cr + 32768, 16)
    green = luma + torch.bitwise_right_shift(-22554 * cb - 46802 * cr + 32768, 16)
    blue = luma + torch.bitwise_right_shift(116130 * cb + 32768, 16)
    rgb = torch.stack([red, green, blue], -1).clamp_(0, 255).to(torch.uint8)
    return [rgb[k, : layout[0], : layout[1]] for k, layout in enumerate(host)]


def _take_rows(plane: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``plane[n, index[n, r], :]`` for every ``n`` and ``r``: ``(n, R, C)``."""
    return torch.gather(plane, 1, index[:, :, None].expand(-1, -1, plane.shape[2]))


def _take_cols(plane: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``plane[n, r, index[n, x]]`` for every ``n``, ``r`` and ``x``: ``(n, R, X)``."""
    return torch.gather(plane, 2, index[:, None, :].expand(-1, plane.shape[1], -1))


def _sample_rgb(payload: torch.Tensor, offset: int, layout: list[int]) -> torch.Tensor:
    """:func:`planes_to_rgb` of one sample, by row and column selections (float32: every
    value on the way is an integer below 2**24, so the arithmetic is exact)."""
    rows, width, y_stride, c_stride, c_rows, hf, vf, top, c_first, c_height, c_width = layout
    device = payload.device
    luma = payload[offset : offset + rows * y_stride].view(rows, y_stride)[:, :width].float()
    y = torch.arange(top, top + rows, device=device)
    own_row = torch.div(y, vf, rounding_mode="floor")
    near_row = torch.where(y % 2 == 0, own_row - 1, own_row + 1) if vf == 2 else own_row
    near_row = near_row.clamp(0, c_height - 1) - c_first
    own_row = own_row - c_first
    x = torch.arange(width, device=device)
    own_col = torch.div(x, hf, rounding_mode="floor")
    near_col = torch.where(x % 2 == 0, own_col - 1, own_col + 1) if hf == 2 else own_col
    near_col = near_col.clamp(0, c_width - 1)
    even = x % 2 == 0
    if hf == 2:
        bias = torch.where(even, 8.0, 7.0) if vf == 2 else torch.where(even, 4.0, 8.0)
    else:
        bias = torch.full((width,), 8.0, device=device)
    start = offset + rows * y_stride
    planes = []
    for plane in range(2):
        first = start + plane * c_rows * c_stride
        chroma = payload[first : first + c_rows * c_stride].view(c_rows, c_stride)
        chroma = chroma[:, :c_width].float()
        sums = 3 * chroma.index_select(0, own_row) + chroma.index_select(0, near_row)
        value = 3 * sums.index_select(1, own_col) + sums.index_select(1, near_col) + bias
        planes.append(torch.floor_(value * (1 / 16)) - 128)
    cb, cr = planes
    rgb = torch.empty((rows, width, 3), dtype=torch.float32, device=device)
    rgb[..., 0] = luma + torch.floor_((91881 * cr + 32768) * (1 / 65536))
    rgb[..., 1] = luma + torch.floor_((-22554 * cb - 46802 * cr + 32768) * (1 / 65536))
    rgb[..., 2] = luma + torch.floor_((116130 * cb + 32768) * (1 / 65536))
    return rgb.clamp_(0, 255).to(torch.uint8)
