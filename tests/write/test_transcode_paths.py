"""transcode_image's two JPEG paths: the DCT-domain re-encode of a JPEG already quantized with
the target quality's tables (C extension ``_jpegrequant``), and the pixel path with a DCT-scaled
decode (a reducing gap of 2) before Lanczos."""

from __future__ import annotations

import io

import numpy as np
import pytest
import simplejpeg
from PIL import Image

from shardstream.write import transcode
from shardstream.write.transcode import REDUCING_GAP, ImageFault, transcode_image

requant = pytest.importorskip("shardstream.write._jpegrequant")


def _photo(width: int = 200, height: int = 152, seed: int = 0) -> np.ndarray:
    """A smooth gradient with noise: detail at every frequency, like a photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], -1)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def _jpeg(pixels: np.ndarray, quality: int, subsampling: str = "420") -> bytes:
    return simplejpeg.encode_jpeg(pixels, quality=quality, colorsubsampling=subsampling)


def _tables(data: bytes) -> dict:
    with Image.open(io.BytesIO(data)) as image:
        return {k: list(v) for k, v in image.quantization.items()}


def _pixel_path(data: bytes, quality: int) -> bytes:
    return simplejpeg.encode_jpeg(
        simplejpeg.decode_jpeg(data), quality=quality, colorsubsampling="420"
    )


def test_same_tables_keep_the_coefficients_exactly() -> None:
    source = _jpeg(_photo(), 90)
    out = transcode_image(source, quality=90)
    # the pixels are exactly the source's: no generation loss
    assert np.array_equal(simplejpeg.decode_jpeg(out), simplejpeg.decode_jpeg(source))
    # while the pixel path loses some
    assert not np.array_equal(
        simplejpeg.decode_jpeg(_pixel_path(source, 90)), simplejpeg.decode_jpeg(source)
    )
    assert _tables(out) == _tables(_pixel_path(source, 90))
    with Image.open(io.BytesIO(out)) as image:
        assert (image.size, image.mode, image.layer) == (
            (200, 152),
            "RGB",
            [(1, 2, 2, 0), (2, 1, 1, 1), (3, 1, 1, 1)],
        )
        assert "progressive" not in image.info


def test_max_side_not_exceeded_keeps_the_coefficients() -> None:
    source = _jpeg(_photo(), 90)
    out = transcode_image(source, max_side=512)  # no quality: DEFAULT_QUALITY (90)
    assert np.array_equal(simplejpeg.decode_jpeg(out), simplejpeg.decode_jpeg(source))


def test_grayscale_and_progressive_sources() -> None:
    gray = np.ascontiguousarray(_photo()[:, :, :1])
    source = simplejpeg.encode_jpeg(gray, quality=90, colorspace="GRAY", colorsubsampling="Gray")
    out = transcode_image(source, quality=90)
    assert np.array_equal(
        simplejpeg.decode_jpeg(out, colorspace="GRAY"),
        simplejpeg.decode_jpeg(source, colorspace="GRAY"),
    )
    buffer = io.BytesIO()
    Image.fromarray(_photo()).save(buffer, "JPEG", quality=90, subsampling=2, progressive=True)
    progressive = buffer.getvalue()
    out = transcode_image(progressive, quality=90)
    assert np.array_equal(simplejpeg.decode_jpeg(out), simplejpeg.decode_jpeg(progressive))
    with Image.open(io.BytesIO(out)) as image:
        assert "progressive" not in image.info  # baseline, as every transcoded image


@pytest.mark.parametrize(("quality", "subsampling"), [(75, "420"), (95, "420"), (90, "444")])
def test_other_sources_take_the_pixel_path(quality: int, subsampling: str) -> None:
    source = _jpeg(_photo(), quality, subsampling)
    assert transcode_image(source, quality=90) == _pixel_path(source, 90)


def test_corrupt_data_is_an_image_fault() -> None:
    source = _jpeg(_photo(), 90)
    with pytest.raises(ImageFault, match="corrupt JPEG"):
        transcode_image(source[: len(source) // 2], quality=90)
    damaged = bytearray(source)
    damaged[len(damaged) // 2 : len(damaged) // 2 + 64] = b"\xff" * 64
    with pytest.raises(ImageFault, match="corrupt JPEG"):
        transcode_image(bytes(damaged), quality=90)


def test_requantize_to_another_quality() -> None:
    source = _jpeg(_photo(), 90)
    out = requant.requantize(source, 80)
    assert out is not None
    assert _tables(out) == _tables(_jpeg(_photo(), 80))
    # its coefficients are on the quality-80 grid already: requantizing again keeps them
    again = requant.requantize(out, 80, same_tables_only=True)
    assert again is not None
    assert np.array_equal(simplejpeg.decode_jpeg(again), simplejpeg.decode_jpeg(out))
    # as close to the source as the pixel path
    reference = simplejpeg.decode_jpeg(source).astype(np.float64)

    def psnr(data: bytes) -> float:
        error = np.mean((simplejpeg.decode_jpeg(data) - reference) ** 2)
        return float(10 * np.log10(255**2 / error))

    assert psnr(out) >= psnr(_pixel_path(source, 80)) - 0.1
    assert requant.requantize(source, 80, same_tables_only=True) is None
    assert requant.requantize(_jpeg(_photo(), 90, "444"), 90) is None  # declined: 4:4:4
    with pytest.raises(ValueError, match="quality"):
        requant.requantize(source, 0)


def test_downscale_decodes_at_the_reducing_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    source = _jpeg(_photo(1024, 768), 95)
    out = transcode_image(source, max_side=128, quality=90)
    # decoded at 1/4 (256 x 192 = 2 x the target), then Lanczos to 128 x 96
    assert REDUCING_GAP == 2
    scaled = Image.fromarray(simplejpeg.decode_jpeg(source, min_width=256, min_height=192))
    assert scaled.size == (256, 192)
    resized = np.asarray(scaled.resize((128, 96), Image.Resampling.LANCZOS))
    assert out == simplejpeg.encode_jpeg(resized, quality=90, colorsubsampling="420")
    # Pillow's path (no simplejpeg) drafts at the same scale
    monkeypatch.setattr(transcode, "simplejpeg", None)
    with Image.open(io.BytesIO(transcode_image(source, max_side=128, quality=90))) as image:
        assert image.size == (128, 96)


def test_kept_coefficients_lose_metadata_and_trailers() -> None:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010E] = "a description"  # ImageDescription
    Image.fromarray(_photo()).save(
        buffer, "JPEG", quality=90, subsampling=2, exif=exif, comment=b"a comment"
    )
    source = buffer.getvalue() + b"trailing bytes after the image"
    out = transcode_image(source, quality=90)
    assert out.startswith(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    assert out.endswith(b"\xff\xd9")
    assert b"Exif" not in out and b"a comment" not in out and b"trailing" not in out
    with Image.open(io.BytesIO(out)) as image:
        assert not image.getexif()
    assert np.array_equal(simplejpeg.decode_jpeg(out), simplejpeg.decode_jpeg(source))


def test_restart_markers_and_every_quality_table() -> None:
    pixels = _photo()
    for quality in (10, 49, 50, 51, 75, 90, 100):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=quality, subsampling=2)
        source = buffer.getvalue()
        out = transcode_image(source, quality=quality)
        # kept: the same coefficients, so the same pixels
        assert np.array_equal(simplejpeg.decode_jpeg(out), simplejpeg.decode_jpeg(source))
        assert _tables(out) == _tables(source)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90, subsampling=2, restart_marker_rows=1)
    source = buffer.getvalue()
    assert b"\xff\xdd" in source  # a DRI segment
    out = transcode_image(source, quality=90)
    assert np.array_equal(simplejpeg.decode_jpeg(out), simplejpeg.decode_jpeg(source))
