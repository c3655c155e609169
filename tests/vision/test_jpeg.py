"""jpeg_info against JPEGs written by Pillow: sizes, colour layouts, processes, EXIF orientation."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from shardstream.errors import ImageDecodeError
from shardstream.vision import is_jpeg, jpeg_info

from ..contracts.images import encode, exif_orientation_block, smooth_rgb


@pytest.mark.parametrize("size", [(1, 1), (17, 9), (455, 427), (640, 480), (3, 1000)])
def test_size_components_and_defaults(size):
    info = jpeg_info(encode(smooth_rgb(size[1], size[0]), quality=90))
    assert (info.width, info.height) == size
    assert info.components == 3
    assert info.colorspace == "ycbcr"
    assert info.subsampling == "420"
    assert info.process == "baseline"
    assert info.precision == 8
    assert info.orientation == 1
    assert info.oriented_size == (size[1], size[0])


@pytest.mark.parametrize(("pil_value", "expected"), [(0, "444"), (1, "422"), (2, "420")])
def test_subsampling(pil_value, expected):
    assert jpeg_info(encode(smooth_rgb(40, 60), subsampling=pil_value)).subsampling == expected


def test_grayscale_cmyk_progressive():
    gray = jpeg_info(encode(smooth_rgb(30, 50).convert("L")))
    assert (gray.components, gray.colorspace, gray.subsampling) == (1, "gray", "none")
    cmyk = jpeg_info(encode(smooth_rgb(30, 50).convert("CMYK")))
    assert (cmyk.width, cmyk.height, cmyk.components, cmyk.colorspace) == (50, 30, 4, "cmyk")
    progressive = jpeg_info(encode(smooth_rgb(30, 50), progressive=True))
    assert (progressive.process, progressive.width, progressive.height) == ("progressive", 50, 30)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_written_by_pillow_exif(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    info = jpeg_info(encode(smooth_rgb(30, 50), exif=exif.tobytes()))
    assert info.orientation == orientation
    assert info.oriented_size == ((50, 30) if orientation >= 5 else (30, 50))
    assert info.transposed is (orientation >= 5)


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_orientation_both_byte_orders(orientation, big_endian):
    data = encode(smooth_rgb(30, 50), exif=exif_orientation_block(orientation, big_endian))
    with Image.open(io.BytesIO(data)) as image:  # Pillow reads the same tag
        assert image.getexif()[0x0112] == orientation
    assert jpeg_info(data).orientation == orientation


def test_out_of_range_orientation_is_one():
    data = encode(smooth_rgb(30, 50), exif=exif_orientation_block(9, False))
    assert jpeg_info(data).orientation == 1


def test_non_jpeg_and_corrupt_headers():
    png = encode(smooth_rgb(10, 10), "PNG")
    assert not is_jpeg(png)
    with pytest.raises(ImageDecodeError, match="not a JPEG"):
        jpeg_info(png)
    data = encode(smooth_rgb(30, 50))
    assert is_jpeg(data)
    with pytest.raises(ImageDecodeError, match="truncated JPEG"):
        jpeg_info(data[:100])  # inside the quantisation tables
    with pytest.raises(ImageDecodeError, match="truncated JPEG"):
        jpeg_info(data[:2])
    with pytest.raises(ImageDecodeError, match="expected a marker at byte 2"):
        jpeg_info(b"\xff\xd8\x00\x01\x02")
    with pytest.raises(ImageDecodeError, match="before any frame header"):
        jpeg_info(b"\xff\xd8\xff\xda\x00\x02")
    zero = bytearray(data)
    sof = zero.index(b"\xff\xc0")
    zero[sof + 5 : sof + 7] = b"\x00\x00"  # height 0
    with pytest.raises(ImageDecodeError, match="zero pixels"):
        jpeg_info(bytes(zero))
    error = ImageDecodeError("bad", key="a/b.jpg")
    assert isinstance(error, ValueError)
    assert str(error) == "a/b.jpg: bad"
    assert str(ImageDecodeError("bad")) == "bad"


def test_memoryview_input():
    data = encode(smooth_rgb(30, 50))
    assert jpeg_info(memoryview(data)) == jpeg_info(data)


def test_the_last_header_parsed_is_reused_only_for_the_same_bytes_object():
    small = encode(smooth_rgb(16, 24), "JPEG")  # (height, width)
    large = encode(smooth_rgb(48, 40), "JPEG")
    first = jpeg_info(small)
    assert jpeg_info(small) is first  # the very same object: parsed once
    assert (jpeg_info(large).width, jpeg_info(large).height) == (40, 48)
    equal_copy = bytes(bytearray(small))
    assert jpeg_info(equal_copy) is not first and jpeg_info(equal_copy) == first
    mutable = bytearray(large)
    assert (jpeg_info(mutable).width, jpeg_info(mutable).height) == (40, 48)
    mutable[:] = small  # a mutable buffer is parsed every time, never cached
    assert (jpeg_info(mutable).width, jpeg_info(mutable).height) == (24, 16)
