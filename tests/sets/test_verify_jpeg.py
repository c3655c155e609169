"""datadings' ImageNet image check, reproduced: the same bytes (or the same refusal) as
datadings 3.4.7's own ``verify_image`` for real and damaged JPEGs, with and without --compress."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from shardstream.errors import BadSourceError
from shardstream.sets._verify_jpeg import verify_image

datadings_write = pytest.importorskip("datadings.sets.ILSVRC2012_write")


def jpeg(width: int, height: int, mode: str = "RGB", quality: int = 90) -> bytes:
    rng = np.random.default_rng(width * 7919 + height)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB")
    if mode != "RGB":
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


SOURCES = [jpeg(120, 90), jpeg(700, 520), jpeg(64, 48, "CMYK"), jpeg(90, 60, "L")]


def theirs(data: bytes, quality: int | None) -> bytes | None:
    """datadings' bytes, or None where it leaves the image out or fails on it (Pillow's
    ``OSError`` for some damaged files escapes its check)."""
    try:
        return datadings_write.verify_image(data, quality)
    except Exception:  # noqa: BLE001 - any failure of datadings' check is a refusal here
        return None


def ours(data: bytes, quality: int | None) -> bytes | None:
    try:
        return verify_image(data, "sample.JPEG", quality=quality)
    except BadSourceError:
        return None


@pytest.mark.parametrize("quality", [None, 90])
@pytest.mark.parametrize("index", range(len(SOURCES)))
def test_intact_images_equal_datadings(index, quality):
    assert ours(SOURCES[index], quality) == theirs(SOURCES[index], quality)


@settings(max_examples=80, deadline=None, database=None)
@given(
    index=st.integers(0, len(SOURCES) - 1),
    cut=st.floats(0.05, 1.0),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), max_size=4),
    quality=st.sampled_from([None, 90]),
)
def test_damaged_images_equal_datadings(index, cut, flips, quality):
    data = bytearray(SOURCES[index][: max(4, int(len(SOURCES[index]) * cut))])
    for where, bit in flips:
        data[int(where * (len(data) - 1))] ^= 1 << bit
    data = bytes(data)
    with contextlib.redirect_stdout(io.StringIO()):  # datadings prints its refusals
        expected = theirs(data, quality)
    assert ours(data, quality) == expected
