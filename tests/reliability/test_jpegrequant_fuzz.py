"""The DCT-domain re-encode (C extension ``shardstream.write._jpegrequant``) takes damaged JPEGs
and any argument without crashing: each call runs in a forked child (a segfault is a failed
assertion), and only ValueError / TypeError / OverflowError may come out of the extension, only
:class:`~shardstream.write.transcode.ImageFault` out of ``transcode_image``."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from shardstream.write.transcode import transcode_image

from ._forked import run_forked, run_isolated

requant = pytest.importorskip("shardstream.write._jpegrequant")

FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _jpeg(quality: int, subsampling: int = 2, progressive: bool = False) -> bytes:
    rng = np.random.default_rng(quality)
    pixels = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(
        buffer, "JPEG", quality=quality, subsampling=subsampling, progressive=progressive
    )
    return buffer.getvalue()


SOURCES = [_jpeg(90), _jpeg(75), _jpeg(90, progressive=True), _jpeg(90, subsampling=0)]


@st.composite
def damaged(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SOURCES)))
    for _ in range(draw(st.integers(0, 6))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    return bytes(data if cut is None else data[:cut])


def _requantize(data: bytes, quality: int, same: bool):
    return requant.requantize(data, quality, same_tables_only=same)


def _transcode(data: bytes) -> bytes:
    return transcode_image(data, max_side=512, quality=90)


def _clean(outcome, allowed: tuple[str, ...]) -> bool:
    return outcome.status == "returned" or (
        outcome.status == "raised" and any(name in allowed for name in outcome.exc_mro)
    )


@FUZZ
@given(
    data=damaged(),
    quality=st.one_of(st.integers(1, 100), st.sampled_from([0, -1, 101, 2**40])),
    same=st.booleans(),
)
def test_fuzz_requantize_and_verify(data, quality, same):
    allowed = ("builtins.ValueError", "builtins.TypeError", "builtins.OverflowError")
    outcome = run_isolated(_requantize, data, quality, same)
    assert _clean(outcome, allowed), f"{outcome.status} {outcome.exc_type} {outcome.detail}"
    outcome = run_isolated(requant.verify, data)
    assert _clean(outcome, allowed), f"{outcome.status} {outcome.exc_type} {outcome.detail}"


@FUZZ
@given(data=damaged())
def test_fuzz_transcode_image_raises_only_image_faults(data):
    outcome = run_isolated(_transcode, data)
    allowed = ("shardstream.write.transcode.ImageFault",)
    assert _clean(outcome, allowed), f"{outcome.status} {outcome.exc_type} {outcome.detail}"


def test_bad_arguments_are_type_errors():
    for call in (
        lambda: requant.requantize("text", 90),
        lambda: requant.requantize(SOURCES[0], "90"),
        lambda: requant.verify(None),
        lambda: requant.requantize(SOURCES[0]),
    ):
        outcome = run_forked(call)
        assert outcome.status == "raised" and "builtins.TypeError" in outcome.exc_mro
