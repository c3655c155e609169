"""Raw JPEG planes shipped by ``resize="device"`` workers, and their RGB on the device.

The worker decodes a band of rows to libjpeg's raw Y, Cb and Cr planes (``_jpegregion``'s
``decode_band_planes``); :func:`planes_to_rgb` upsamples and converts them in torch. The result
must be libjpeg-turbo's own RGB decode of those rows, byte for byte, for every sampling it takes,
odd sizes (partial MCUs, odd chroma widths and heights), bands at either edge, progressive files,
and a batch mixing layouts.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from shardstream.vision import _jpegregion
from shardstream.vision.device_planes import planes_to_rgb
from shardstream.vision.device_views import KIND_PLANES, collate_shipped, ship_pixels
from shardstream.vision.jpeg import jpeg_info
from shardstream.vision.jpeg_planes import (
    LAYOUT_FIELDS,
    plane_arguments,
    plane_layout,
    planes_nbytes,
)

ImageFile.MAXBLOCK = 1 << 24  # Pillow's progressive encoder needs the whole file in one block

_SUBSAMPLING = {"444": 0, "422": 1, "420": 2}


def _jpeg(height: int, width: int, sampling: str, *, progressive: bool = False) -> bytes:
    """A JPEG with sharp edges and noise (large chroma steps: rounding shows)."""
    rng = np.random.default_rng(height * 1000 + width)
    yy, xx = np.mgrid[0:height, 0:width]
    pixels = np.stack(
        [(xx * 37 + yy * 11) % 256, (yy * 53) % 256, rng.integers(0, 256, (height, width))], -1
    ).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(
        out, "JPEG", quality=90, subsampling=_SUBSAMPLING[sampling], progressive=progressive
    )
    return out.getvalue()


def _rgb(data: bytes) -> np.ndarray:
    info = jpeg_info(data)
    out = np.empty((info.height, info.width, 3), np.uint8)
    _jpegregion.decode_region(data, out, 0, 0, info.height, info.width)
    return out


def _planes(data: bytes, top: int, bottom: int) -> tuple[np.ndarray, np.ndarray]:
    layout = plane_layout(jpeg_info(data), top, bottom)
    assert layout is not None
    out = np.full(planes_nbytes(layout), 77, np.uint8)
    _jpegregion.decode_band_planes(data, out, *plane_arguments(layout))
    return out, layout


@pytest.mark.parametrize("sampling", ["420", "422", "444"])
@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("size", [(37, 53), (64, 64), (65, 97), (120, 31), (17, 9), (33, 6)])
@pytest.mark.parametrize("method", ["batched", "per_sample"])
def test_planes_to_rgb_is_libjpegs_rgb_decode(sampling, progressive, size, method):
    height, width = size
    data = _jpeg(height, width, sampling, progressive=progressive)
    assert jpeg_info(data).subsampling == sampling
    full = _rgb(data)
    bands = [(0, height), (1, height - 1), (height // 3, height // 3 + height // 2), (0, 1)]
    bands.append((height - 1, height))
    for top, bottom in bands:
        planes, layout = _planes(data, top, bottom)
        layouts = torch.from_numpy(layout[None])
        (got,) = planes_to_rgb(torch.from_numpy(planes), [0], layouts, method=method)
        assert got.dtype == torch.uint8 and tuple(got.shape) == (bottom - top, width, 3)
        np.testing.assert_array_equal(got.numpy(), full[top:bottom], err_msg=f"{top}-{bottom}")


@pytest.mark.parametrize("method", ["batched", "per_sample"])
def test_a_batch_of_mixed_layouts_at_their_offsets(method):
    datas = [_jpeg(65, 97, "420"), _jpeg(40, 150, "422"), _jpeg(33, 20, "444")]
    bands = [(3, 60), (0, 40), (10, 11)]
    payload = [np.zeros(13, np.uint8)]  # the first sample does not start at 0
    offsets, layouts = [], []
    for data, (top, bottom) in zip(datas, bands):
        planes, layout = _planes(data, top, bottom)
        offsets.append(sum(p.size for p in payload))
        payload.append(planes)
        layouts.append(layout)
    flat = torch.from_numpy(np.concatenate(payload))
    images = planes_to_rgb(flat, offsets, torch.from_numpy(np.stack(layouts)), method=method)
    for image, data, (top, bottom) in zip(images, datas, bands):
        np.testing.assert_array_equal(image.numpy(), _rgb(data)[top:bottom])


def test_plane_layout_fields_and_where_planes_do_not_apply():
    layout = plane_layout(jpeg_info(_jpeg(65, 97, "420")), 5, 50)
    assert len(LAYOUT_FIELDS) == 11
    # 97 wide: 7 MCUs of 16 -> luma rows of 112 bytes, chroma of 56; chroma rows 1..25 (the
    # context row above row 5's own row 2, below row 49's own row 24), of 33 x 49
    assert dict(zip(LAYOUT_FIELDS, layout.tolist())) == {
        "rows": 45, "width": 97, "y_stride": 112, "c_stride": 56, "c_rows": 25, "h_factor": 2,
        "v_factor": 2, "top": 5, "c_first": 1, "c_height": 33, "c_width": 49,
    }  # fmt: skip
    assert planes_nbytes(layout) == 45 * 112 + 2 * 25 * 56
    grey = io.BytesIO()
    Image.new("L", (40, 30), 100).save(grey, "JPEG")
    cmyk = io.BytesIO()
    Image.new("CMYK", (40, 30), (1, 2, 3, 4)).save(cmyk, "JPEG")
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = io.BytesIO()
    Image.new("RGB", (40, 30)).save(rotated, "JPEG", exif=exif.tobytes())
    for data in (grey.getvalue(), cmyk.getvalue(), rotated.getvalue(), _jpeg(30, 4, "420")):
        assert plane_layout(jpeg_info(data), 0, 10) is None  # (4 wide: 2 chroma columns)


def test_decode_band_planes_refuses_what_it_cannot_do():
    data = _jpeg(65, 97, "420")
    planes, layout = _planes(data, 0, 65)
    arguments = list(plane_arguments(layout))
    with pytest.raises(ValueError, match="planes' size"):
        _jpegregion.decode_band_planes(data, planes[:-1], *arguments)
    wrong = arguments.copy()
    wrong[6] = 1  # hf: the file's luma is 2 x 2
    with pytest.raises(NotImplementedError, match="not the expected YCbCr sampling"):
        _jpegregion.decode_band_planes(data, planes, *wrong)
    wrong = arguments.copy()
    wrong[2] = 128  # y_stride: not the MCU-padded width
    out = np.empty(65 * 128 + 2 * layout[4] * layout[3], np.uint8)
    with pytest.raises(NotImplementedError, match="not the expected plane layout"):
        _jpegregion.decode_band_planes(data, out, *wrong)
    with pytest.raises(ValueError, match="hf and vf must be 1 or 2"):
        _jpegregion.decode_band_planes(data, planes, *arguments[:6], 3, 2)
    with pytest.raises(ValueError, match="libjpeg-turbo"):  # corrupt entropy data
        broken = bytearray(data)
        broken[len(data) // 2 : len(data) // 2 + 40] = b"\xff\xd9" * 20
        _jpegregion.decode_band_planes(bytes(broken), planes, *arguments)


def test_ship_pixels_ships_planes_of_a_wide_band_and_pixels_otherwise():
    data = _jpeg(120, 160, "420")
    boxes = [(10, 5, 80, 150), (30, 20, 60, 100)]
    out = ship_pixels(data, 120, 160, boxes, [(64, 64), (32, 32)], max_pixels=None)
    assert out["payload_kind"] == KIND_PLANES
    assert out["boxes"].tolist() == [[0, 5, 80, 150], [20, 20, 60, 100]]
    batch = collate_shipped([out, {**out}])
    layouts = torch.from_numpy(batch["payload_layout"])
    offsets = batch["payload_offsets"].tolist()
    for image in planes_to_rgb(torch.from_numpy(batch["payload"]), offsets, layouts):
        np.testing.assert_array_equal(image.numpy(), _rgb(data)[10:90])
    narrow = ship_pixels(data, 120, 160, [(10, 5, 80, 40)], [(64, 32)], max_pixels=None)
    assert "payload_kind" not in narrow  # a narrow union: its RGB pixels, as before
    np.testing.assert_array_equal(narrow["payload"], _rgb(data)[10:90, 5:45])
    png = io.BytesIO()
    Image.fromarray(_rgb(data)).save(png, "PNG")
    pixels = ship_pixels(png.getvalue(), 120, 160, boxes, [(64, 64)] * 2, max_pixels=None)
    assert "payload_kind" not in pixels and pixels["payload"].shape == (80, 150, 3)
