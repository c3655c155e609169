"""The C extensions' entry points take any argument without crashing (issue 14, item 3).

Each call runs in a forked child (:mod:`._forked`; the fuzzed ones through ``run_isolated``,
which keeps the arrays' layouts), so a segfault is a failed assertion, not the end of the test
run. The public Python wrappers raise :class:`~shardstream.errors.ConfigError`; the extensions
themselves raise ``ValueError`` / ``TypeError`` / ``OverflowError`` /
``BufferError`` (``NotImplementedError`` for JPEGs the region decoder declines).
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import as_strided
from PIL import Image

from shardstream.errors import ConfigError
from shardstream.vision import _jpegregion, _masking, _resample
from shardstream.vision.decode import decode_crops, decode_region
from shardstream.vision.masking import MaskingGenerator, sample_masks
from shardstream.vision.resize import resize_crops

from ._forked import is_typed, run_forked, run_isolated

#: what the extensions may raise on bad arguments (anything else, or a crash, fails)
C_ERRORS = frozenset(
    f"builtins.{name}"
    for name in ("ValueError", "TypeError", "OverflowError", "BufferError", "NotImplementedError")
)
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def c_clean(outcome) -> bool:
    """Returned, or raised one of the extensions' argument errors (or a typed error)."""
    return is_typed(outcome) or (
        outcome.status == "raised" and any(name in C_ERRORS for name in outcome.exc_mro)
    )


def describe(outcome) -> str:
    return f"{outcome.status} {outcome.exc_type} {outcome.detail}"


# --- the reproductions ------------------------------------------------------------------------


def test_resize_crops_box_past_int_range_is_a_config_error():
    image = np.zeros((20, 20, 3), np.uint8)
    out = np.zeros((8, 8, 3), np.uint8)

    def call():
        try:
            resize_crops(image, [(2**31 - 10, 0, 100, 8)], [False], [out])
        except ConfigError as error:
            return str(error)
        return "no error"

    outcome = run_forked(call)
    assert outcome.status == "returned", describe(outcome)
    assert "is not inside the 20 x 20 image" in outcome.value


def test_resample_extension_checks_the_box_in_64_bits():
    image = np.zeros((20, 20, 3), np.uint8)
    out = np.zeros((8, 8, 3), np.uint8)
    for box in [(2**31 - 10, 0, 100, 8), (0, 2**31 - 5, 8, 10), (10, 10, 2**31 - 1, 2**31 - 1)]:
        outcome = run_forked(lambda box=box: _resample.resize_crops(image, [box], [0], [out]))
        assert outcome.status == "raised", describe(outcome)
        assert outcome.exc_type == "builtins.ValueError"
        assert "is not inside the 20 x 20 image" in outcome.detail


def test_resample_extension_refuses_nan_spans_and_huge_outs():
    image = np.zeros((20, 20, 3), np.uint8)
    out = np.zeros((8, 8, 3), np.uint8)
    outcome = run_forked(
        lambda: _resample.resize_crops(image, [(0, 0, 10, 10)], [0], [out], spans=[(math.nan,) * 4])
    )
    assert outcome.status == "raised" and "finite" in outcome.detail, describe(outcome)
    # writable views of 3 bytes claiming 2**30 x 2**30 pixels, or 2**29 rows
    for shape in [(2**30, 2**30, 3), (2**29, 1, 3), (2**16, 2**15, 3)]:
        huge = as_strided(np.zeros(3, np.uint8), shape=shape, strides=(0, 0, 1))
        outcome = run_forked(
            lambda huge=huge: _resample.resize_crops(image, [(0, 0, 10, 10)], [0], [huge])
        )
        assert outcome.status == "raised" and "at most" in outcome.detail, describe(outcome)


def test_sample_masks_extension_size_that_wraps_to_zero():
    # 2**30 * 2**17 * 2**17 = 2**64 wraps to 0 bytes in 64 bits: an empty buffer must not pass
    args = (1, 1.0, 0.1, 0.5, 100, 4.0, 50.0, -1.0, 1.0)
    outcome = run_forked(
        lambda: _masking.sample_masks(np.zeros(0, bool), 2**30, 2**17, 2**17, *args)
    )
    assert outcome.status == "raised", describe(outcome)
    assert outcome.exc_type == "builtins.ValueError"
    assert "n_masks * height * width" in outcome.detail


def test_sample_masks_too_many_masks_is_a_config_error():
    def call():
        generator = MaskingGenerator((2**17, 2**17), 10)
        try:
            sample_masks(generator, 2**30, (0.1, 0.5), 0.5, np.random.default_rng(0))
        except ConfigError as error:
            return str(error)
        return "no error"

    outcome = run_forked(call)
    assert outcome.status == "returned", describe(outcome)
    assert "more than MAX_MASK_BYTES" in outcome.value


def _jpeg(height: int = 24, width: int = 40) -> bytes:
    rng = np.random.default_rng(5)
    buffer = io.BytesIO()
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


JPEG = _jpeg()


def test_jpegregion_refuses_wrapped_coordinates():
    out = np.zeros((4, 4, 3), np.uint8)
    for top in (-1, 2**64 + 2, 2**63):
        outcome = run_forked(lambda top=top: _jpegregion.decode_region(JPEG, out, top, 0, 4, 4))
        assert outcome.status == "raised", describe(outcome)
        assert outcome.exc_type in ("builtins.ValueError", "builtins.OverflowError")
    outcome = run_forked(lambda: _jpegregion.decode_region(JPEG, out, 0, 0, 4, 4, 2**32 + 1))
    assert outcome.status == "raised", describe(outcome)
    outcome = run_forked(lambda: _jpegregion.decode_region(JPEG, out, 4, 8, 4, 4))
    assert outcome.status == "returned" and outcome.value == (24, 40), describe(outcome)


# --- fuzzing every entry point ----------------------------------------------------------------

EXTREME_INTS = st.one_of(
    st.sampled_from(
        [0, 1, -1, 2, 7, 8, 16, 255, 65535, 65536, 2**31 - 1, 2**31, -(2**31), 2**32 - 1, 2**32]
        + [2**32 + 1, 2**62, 2**63 - 1, 2**63, -(2**63), 2**64 - 1, 2**64, 2**64 + 5, 10**30]
    ),
    st.integers(-40, 400),
    st.integers(),
)
SMALL_INTS = st.integers(0, 40)
FLOATS = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, math.nan, math.inf, -math.inf, 1e300, 5e-324]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-100, 100),
)


@st.composite
def arrays(draw, channels: int | None = None, writable: bool = False):
    """uint8 images and outs of every layout: contiguous, strided, reversed, transposed,
    zero-strided, read-only, zero-sized, the wrong dtype or rank."""
    kind = draw(
        st.sampled_from(
            ["plain", "plain", "plain", "sliced", "reversed", "transposed", "zero-stride"]
            + ["readonly", "dtype", "rank", "empty", "channels-first"]
        )
    )
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    c = channels if channels is not None else draw(st.integers(1, 5))
    base = np.arange(h * w * c, dtype=np.uint32).astype(np.uint8).reshape(h, w, c)
    if kind == "sliced":
        return np.zeros((h, 2 * w, c), np.uint8)[:, ::2]
    if kind == "reversed":
        return base[::-1]
    if kind == "transposed":
        return base.transpose(1, 0, 2)
    if kind == "zero-stride":
        return as_strided(np.zeros(c, np.uint8), shape=(h, w, c), strides=(0, 0, 1))
    if kind == "readonly":
        base.flags.writeable = False
        return base
    if kind == "dtype":
        return base.astype(draw(st.sampled_from([np.float32, np.uint16, np.int8, bool])))
    if kind == "rank":
        return base.reshape(-1) if draw(st.booleans()) else base[None]
    if kind == "empty":
        return np.zeros((draw(st.integers(0, 1)), 0, c), np.uint8)
    if kind == "channels-first":
        return np.zeros((c, h, w), np.uint8).transpose(1, 2, 0)
    return base


BOXES = st.one_of(
    st.tuples(EXTREME_INTS, EXTREME_INTS, EXTREME_INTS, EXTREME_INTS),
    st.tuples(SMALL_INTS, SMALL_INTS, st.integers(1, 40), st.integers(1, 40)),
    st.sampled_from([(), (1, 2, 3), (0.5, 0, 4, 4), None, "abcd", (0, 0, 1, 1, 1)]),
)
SPANS = st.one_of(st.none(), st.tuples(FLOATS, FLOATS, FLOATS, FLOATS), st.just((0, 0)))


@st.composite
def resize_calls(draw):
    image = draw(arrays())
    n = draw(st.integers(0, 4))
    channels = image.shape[-1] if image.ndim == 3 and draw(st.booleans()) else None
    boxes = [draw(BOXES) for _ in range(n)]
    outs = [draw(arrays(channels=channels)) for _ in range(n + draw(st.sampled_from([0, 0, 1])))]
    flips = [draw(st.sampled_from([True, False, 0, 1, None, "x"])) for _ in range(n)]
    spans = draw(st.one_of(st.none(), st.lists(SPANS, min_size=n, max_size=n)))
    options = {"horizontal_first": draw(st.booleans()), "bilinear": draw(st.booleans())}
    return image, boxes, flips, outs, spans, options


def _resample_call(image, boxes, flips, outs, spans, options):
    return _resample.resize_crops(image, boxes, flips, outs, spans=spans, **options)


def _resize_crops_call(image, boxes, flips, outs, spans, options):
    return resize_crops(
        image,
        boxes,
        flips,
        outs,
        spans=spans,
        interpolation="bilinear" if options["bilinear"] else "bicubic",
        horizontal_first=options["horizontal_first"],
    )


@FUZZ
@given(call=resize_calls())
def test_fuzz_resample_extension(call):
    outcome = run_isolated(_resample_call, *call)
    assert c_clean(outcome), describe(outcome)


@FUZZ
@given(call=resize_calls())
def test_fuzz_resize_crops_raises_config_error(call):
    outcome = run_isolated(_resize_crops_call, *call)
    assert is_typed(outcome), describe(outcome)


@st.composite
def mask_calls(draw):
    n, h, w = (draw(st.one_of(st.integers(0, 6), EXTREME_INTS)) for _ in range(3))
    size = n * h * w if 0 <= n * h * w <= 4096 and draw(st.booleans()) else draw(SMALL_INTS)
    masks = draw(
        st.sampled_from(
            [
                np.zeros(size, bool),
                np.zeros(size, bool),
                np.zeros(2 * size, bool)[::2],
                np.frombuffer(bytes(size), bool),
                bytes(size),
                bytearray(size),
                None,
            ]
        )
    )
    seed = draw(EXTREME_INTS)
    floats = [draw(FLOATS) for _ in range(3)]
    tokens = draw(EXTREME_INTS)
    patches = [draw(FLOATS) for _ in range(4)]
    return masks, n, h, w, seed, *floats, tokens, *patches


@FUZZ
@given(args=mask_calls())
def test_fuzz_masking_extension(args):
    outcome = run_isolated(_masking.sample_masks, *args)
    assert c_clean(outcome), describe(outcome)
    if outcome.status == "returned":
        assert 0 <= outcome.value <= max(args[1], 0)


def _sample_masks_call(n_masks, grid, ratio, probability, n_tokens, seed):
    generator = MaskingGenerator(grid, 10)
    masks = sample_masks(
        generator, n_masks, ratio, probability, np.random.default_rng(seed), n_tokens=n_tokens
    )
    return masks.shape


@FUZZ
@given(
    n_masks=st.one_of(st.integers(0, 4), EXTREME_INTS),
    grid=st.tuples(st.integers(1, 20), st.integers(1, 20)) | st.tuples(EXTREME_INTS, EXTREME_INTS),
    ratio=st.tuples(FLOATS, FLOATS),
    probability=FLOATS,
    n_tokens=st.none() | EXTREME_INTS,
    seed=st.integers(0, 2**32),
)
def test_fuzz_sample_masks_raises_config_error(n_masks, grid, ratio, probability, n_tokens, seed):
    if isinstance(n_masks, int) and n_masks > 8 and 0 < n_masks * abs(grid[0] * grid[1]) <= 2**30:
        n_masks = 8  # a valid but huge request only takes long; its rejection is what we test

    outcome = run_isolated(_sample_masks_call, n_masks, grid, ratio, probability, n_tokens, seed)
    assert is_typed(outcome), describe(outcome)


@st.composite
def region_calls(draw):
    data = draw(
        st.sampled_from([JPEG, JPEG[:200], JPEG[:2], b"", b"\xff\xd8\xff", bytes(100), "text"])
    )
    coordinates = [draw(st.one_of(st.integers(0, 48), EXTREME_INTS)) for _ in range(4)]
    height, width = coordinates[2], coordinates[3]
    size = height * width * 3 if 0 <= height * width <= 4096 else draw(SMALL_INTS)
    out = draw(
        st.sampled_from(
            [
                np.zeros(size, np.uint8),
                np.zeros(size, np.uint8),
                np.zeros(2 * size, np.uint8)[::2],
                bytes(size),
                np.zeros(max(size, 1), np.float32),
            ]
        )
    )
    options = {}
    if draw(st.booleans()):
        options["denominator"] = draw(st.one_of(st.sampled_from([1, 2, 4, 8]), EXTREME_INTS))
    if draw(st.booleans()):
        options["margin"] = draw(EXTREME_INTS)
    if draw(st.booleans()):
        options["crop_columns"] = draw(st.booleans())
    return data, out, *coordinates, options


def _region_call(*call):
    *args, options = call
    return _jpegregion.decode_region(*args, **options)


@pytest.mark.skipif(_jpegregion is None, reason="the region decoder is not built")
@FUZZ
@given(call=region_calls())
def test_fuzz_jpegregion_extension(call):
    outcome = run_isolated(_region_call, *call)
    assert c_clean(outcome), describe(outcome)


BOX_VALUES = st.one_of(FLOATS, EXTREME_INTS, st.integers(0, 40))
CROP_BOXES = st.one_of(
    st.tuples(BOX_VALUES, BOX_VALUES, BOX_VALUES, BOX_VALUES),
    st.tuples(st.integers(0, 20), st.integers(0, 30), st.integers(1, 4), st.integers(1, 10)),
    st.sampled_from([(), None, "abcd", (0, 0, 1)]),
)
OUT_SIZES = st.one_of(
    st.integers(1, 32),
    EXTREME_INTS,
    st.tuples(EXTREME_INTS, EXTREME_INTS),
    st.sampled_from([None, "8", (8,), 2.5, True]),
)


def _decode_call(boxes, size, scale, interpolation, flip):
    try:
        crops = decode_crops(JPEG, boxes, size, flip=flip, interpolation=interpolation, scale=scale)
        shapes = [c.shape for c in crops]
    except ConfigError:
        shapes = None
    region = decode_region(JPEG, boxes[0], scale=scale if scale is not None else 1)
    return shapes, region[0].shape


@FUZZ
@given(
    boxes=st.lists(CROP_BOXES, min_size=1, max_size=3),
    size=OUT_SIZES,
    scale=st.one_of(st.none(), st.sampled_from([1, 2, 4, 8, 3, 0, -1, True, 2**64])),
    interpolation=st.sampled_from(["bicubic", "bilinear", "nearest", "lanczos", "box", None]),
    flip=st.one_of(st.none(), st.lists(st.booleans(), max_size=3)),
)
def test_fuzz_decode_crops_and_region_arguments(boxes, size, scale, interpolation, flip):
    outcome = run_isolated(_decode_call, boxes, size, scale, interpolation, flip)
    assert is_typed(outcome), describe(outcome)
