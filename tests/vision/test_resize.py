"""resize_crops against Pillow's own resize, byte for byte, and its torch fallback within tolerance.

A resize in one direction only is a single pass, the same in every Pillow release, so the exact
reference for either pass order is two single-direction Pillow resizes in that order.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from shardstream.errors import ConfigError
from shardstream.vision import resize
from shardstream.vision.resize import EXACT_RESIZE, pillow_horizontal_first, resize_crops

from ..contracts.images import photo_crops

needs_extension = pytest.mark.skipif(
    not EXACT_RESIZE, reason="the _resample extension is not built"
)
KERNELS = resize._resample.kernels() if EXACT_RESIZE else ()  # this CPU's, the default last


@contextlib.contextmanager
def _kernel(name):
    resize._resample.use_kernel(name)
    try:
        yield
    finally:
        resize._resample.use_kernel(KERNELS[-1])


PHOTO = np.ascontiguousarray(photo_crops(1, 1, 150)[0][:120])  # (120, 150, 3) uint8, a photo


def _reference(image, box, size, flip, horizontal_first, interpolation="bicubic"):
    top, left, h, w = box
    oh, ow = size
    crop = Image.fromarray(np.ascontiguousarray(image[top : top + h, left : left + w]))
    shrink_h, shrink_w = h - oh, w - ow
    vertical_first = not horizontal_first and shrink_h > 0 and shrink_h > 2 * shrink_w
    resample = Image.BILINEAR if interpolation == "bilinear" else Image.BICUBIC
    if vertical_first:
        out = crop.resize((w, oh), resample).resize((ow, oh), resample)
    else:
        out = crop.resize((ow, h), resample).resize((ow, oh), resample)
    array = np.asarray(out)
    return array[:, ::-1] if flip else array


def _out(size, layout):
    oh, ow = size
    if layout == "channels_last":
        return np.zeros((oh, ow, 3), np.uint8)
    if layout == "channels_first":
        return np.zeros((3, oh, ow), np.uint8).transpose(1, 2, 0)
    return np.zeros((oh, 2 * ow, 3), np.uint8)[:, ::2]  # every other pixel of a wider array


def test_extension_is_built():
    # CI runs the image these tests run in: the exact kernel must be there, not silently missing
    # (without it every exactness test below would be skipped)
    assert EXACT_RESIZE is True
    assert resize._resample is not None
    assert KERNELS[0] == "portable" and set(KERNELS) <= {"portable", "avx2", "avx512", "avx512vnni"}


@needs_extension
@pytest.mark.parametrize("kernel", KERNELS)
def test_every_kernel_gives_the_same_bytes_on_long_and_short_lines(kernel):
    # line lengths around the vector widths (8, 32, 64) and their overlapping last blocks
    image = np.random.default_rng(3).integers(0, 256, (140, 150, 3), dtype=np.uint8)
    sizes = [(1, 1), (5, 7), (11, 31), (33, 32), (64, 21), (21, 65), (130, 97), (140, 150)]
    boxes = [(0, 0, 140, 150), (3, 5, 70, 90), (10, 20, 100, 100), (0, 0, 129, 11)] * 2
    outs = [np.zeros((*size, 3), np.uint8) for size in sizes]
    with _kernel(kernel):
        resize_crops(image, boxes, [False, True] * 4, outs, horizontal_first=True)
    for box, size, flip, out in zip(boxes, sizes, [False, True] * 4, outs):
        assert np.array_equal(out, _reference(image, box, size, flip, True)), (kernel, box, size)
    with pytest.raises(ValueError, match="not available"):
        resize._resample.use_kernel("sse9")


@needs_extension
@pytest.mark.parametrize("kernel", KERNELS)
def test_extreme_shrinks_and_a_huge_union_are_exact(kernel):
    # ~3,700 taps per output (more than the SIMD kernels keep on their stack: the portable
    # kernel takes those lines), then a union of 28 MB (more than the per-thread scratch keeps),
    # then a small call again: the same bytes as Pillow every time
    rng = np.random.default_rng(8)
    wide = rng.integers(0, 256, (40, 3700, 3), dtype=np.uint8)
    big = rng.integers(0, 256, (2200, 2200, 3), dtype=np.uint8)
    cases = [
        (wide, (0, 0, 40, 3700), (40, 1), False),
        (wide, (0, 0, 40, 3700), (33, 2), True),
        (big, (0, 0, 2200, 2200), (64, 48), False),
        (PHOTO, (10, 20, 100, 120), (40, 50), True),
    ]
    with _kernel(kernel):
        for image, box, size, flip in cases:
            out = np.zeros((*size, 3), np.uint8)
            resize_crops(image, [box], [flip], [out], horizontal_first=True)
            assert np.array_equal(out, _reference(image, box, size, flip, True)), (box, size)


crop_cases = st.lists(
    st.tuples(
        st.integers(1, 120),  # h
        st.integers(1, 150),  # w
        st.floats(0, 1),  # top, as a fraction of the room left
        st.floats(0, 1),  # left
        st.integers(1, 160),  # out h
        st.integers(1, 160),  # out w
        st.booleans(),  # flip
        st.sampled_from(["channels_last", "channels_first", "strided"]),
    ),
    min_size=1,
    max_size=12,
)


@needs_extension
@settings(max_examples=120, deadline=None)
@given(
    cases=crop_cases,
    horizontal_first=st.booleans(),
    interpolation=st.sampled_from(["bicubic", "bilinear"]),
    kernel=st.sampled_from(KERNELS or ("none",)),
)
def test_equals_pillow_byte_for_byte_in_either_pass_order(
    cases, horizontal_first, interpolation, kernel
):
    boxes, flips, outs, sizes = [], [], [], []
    for h, w, top_f, left_f, oh, ow, flip, layout in cases:
        top, left = int(top_f * (120 - h)), int(left_f * (150 - w))
        boxes.append((top, left, h, w))
        flips.append(flip)
        sizes.append((oh, ow))
        outs.append(_out((oh, ow), layout))
    with _kernel(kernel):
        resize_crops(
            PHOTO,
            boxes,
            flips,
            outs,
            horizontal_first=horizontal_first,
            interpolation=interpolation,
        )
    for box, size, flip, out in zip(boxes, sizes, flips, outs):
        expected = _reference(PHOTO, box, size, flip, horizontal_first, interpolation)
        assert np.array_equal(out, expected), (box, size, flip)


span_cases = st.lists(
    st.tuples(
        st.integers(1, 120),
        st.integers(1, 150),
        st.floats(0, 1),  # x0, y0, x1, y1 as fractions of what is left
        st.floats(0, 1),
        st.floats(0, 1),
        st.floats(0, 1),
        st.integers(1, 90),
        st.integers(1, 90),
        st.booleans(),
    ),
    min_size=1,
    max_size=6,
)


@needs_extension
@settings(max_examples=60, deadline=None)
@given(cases=span_cases, interpolation=st.sampled_from(["bicubic", "bilinear"]))
def test_fractional_spans_equal_pillows_resize_box(cases, interpolation):
    resample = Image.BILINEAR if interpolation == "bilinear" else Image.BICUBIC
    boxes, flips, outs, spans = [], [], [], []
    for h, w, fx0, fy0, fx1, fy1, oh, ow, flip in cases:
        x0, y0 = fx0 * w, fy0 * h
        boxes.append((120 - h, 150 - w, h, w))
        spans.append((x0, y0, x0 + fx1 * (w - x0), y0 + fy1 * (h - y0)))
        flips.append(flip)
        outs.append(np.zeros((oh, ow, 3), np.uint8))
    resize_crops(PHOTO, boxes, flips, outs, interpolation=interpolation, spans=spans)
    for (top, left, h, w), span, flip, out in zip(boxes, spans, flips, outs):
        region = Image.fromarray(np.ascontiguousarray(PHOTO[top : top + h, left : left + w]))
        expected = np.asarray(region.resize(out.shape[1::-1], resample, box=span))
        assert np.array_equal(out, expected[:, ::-1] if flip else expected), (span, out.shape)


def test_spans_outside_their_box_are_refused_on_both_paths(monkeypatch):
    out = np.zeros((8, 8, 3), np.uint8)
    for path in ("extension", "pillow"):
        if path == "pillow":
            monkeypatch.setattr(resize, "_resample", None)
        elif not EXACT_RESIZE:
            continue
        with pytest.raises(ConfigError, match="can't exceed"):
            resize_crops(PHOTO, [(0, 0, 30, 30)], [False], [out], spans=[(0, 0, 31, 30)])
        with pytest.raises(ConfigError, match="negative"):
            resize_crops(PHOTO, [(0, 0, 30, 30)], [False], [out], spans=[(-1, 0, 20, 30)])
        with pytest.raises(ConfigError, match="not inside"):
            resize_crops(PHOTO, [(100, 0, 30, 30)], [False], [out], spans=[(0, 0, 20, 30)])
        with pytest.raises(ConfigError, match="same length"):
            resize_crops(PHOTO, [(0, 0, 30, 30)], [False], [out], spans=[None, None])


@needs_extension
def test_default_order_is_the_installed_pillows():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (90, 80, 3), dtype=np.uint8)  # noise: any order change shows
    # shapes where Pillow 13 runs the vertical pass first, and where it does not
    cases = [((0, 0, 90, 80), (20, 70)), ((5, 3, 60, 70), (50, 20)), ((0, 0, 90, 80), (100, 30))]
    for box, size in cases:
        out = np.zeros((*size, 3), np.uint8)
        resize_crops(image, [box], [False], [out])
        top, left, h, w = box
        crop = Image.fromarray(image[top : top + h, left : left + w])
        assert np.array_equal(out, np.asarray(crop.resize(size[::-1], Image.BICUBIC))), box
    assert pillow_horizontal_first() == (int(Image.__version__.split(".")[0]) < 13)


@needs_extension
def test_orders_really_differ_on_noise():
    # guards the test above: on noise the two orders give different bytes for this shape
    image = np.random.default_rng(1).integers(0, 256, (90, 80, 3), dtype=np.uint8)
    a, b = np.zeros((20, 70, 3), np.uint8), np.zeros((20, 70, 3), np.uint8)
    resize_crops(image, [(0, 0, 90, 80)], [False], [a], horizontal_first=True)
    resize_crops(image, [(0, 0, 90, 80)], [False], [b], horizontal_first=False)
    assert not np.array_equal(a, b)


@needs_extension
def test_one_and_four_channels_and_strided_sources():
    rng = np.random.default_rng(2)
    for channels in (1, 4):
        image = rng.integers(0, 256, (40, 50, channels), dtype=np.uint8)
        out = np.zeros((17, 23, channels), np.uint8)
        resize_crops(image, [(3, 4, 30, 40)], [True], [out], horizontal_first=True)
        crop = image[3:33, 4:44]
        # per channel as "L" images: Pillow's RGBA resize premultiplies alpha, a mode matter
        planes = [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(crop[..., c]))
                .resize((23, 30), Image.BICUBIC)
                .resize((23, 17), Image.BICUBIC)
            )
            for c in range(channels)
        ]
        assert np.array_equal(out, np.stack(planes, axis=-1)[:, ::-1])
    # rows of a bigger array, and a transposed (EXIF-like) view that must be made contiguous
    wide = np.ascontiguousarray(np.concatenate([PHOTO, PHOTO], axis=1))[:, :150]
    rotated = PHOTO.transpose(1, 0, 2)
    for source in (wide, rotated):
        out = np.zeros((31, 29, 3), np.uint8)
        resize_crops(source, [(2, 5, 90, 100)], [False], [out], horizontal_first=True)
        assert np.array_equal(
            out, _reference(np.ascontiguousarray(source), (2, 5, 90, 100), (31, 29), False, True)
        )


@needs_extension
def test_more_crops_than_one_call_takes():
    boxes = [(i % 50, i % 70, 60, 70) for i in range(70)]
    outs = [np.zeros((12, 13, 3), np.uint8) for _ in boxes]
    resize_crops(PHOTO, boxes, [False] * 70, outs, horizontal_first=True)
    for box, out in zip(boxes, outs):
        assert np.array_equal(out, _reference(PHOTO, box, (12, 13), False, True))


@needs_extension
def test_threads_resize_concurrently_with_the_same_result():
    boxes = [(10, 10, 100, 120), (0, 0, 120, 150), (30, 40, 50, 60)]
    expected = [np.zeros((64, 64, 3), np.uint8) for _ in boxes]
    resize_crops(PHOTO, boxes, [False, True, False], expected)
    results: list[list[np.ndarray]] = []

    def work():
        for _ in range(20):
            outs = [np.zeros((64, 64, 3), np.uint8) for _ in boxes]
            resize_crops(PHOTO, boxes, [False, True, False], outs)
            results.append(outs)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 80
    for outs in results:
        for out, want in zip(outs, expected):
            assert np.array_equal(out, want)


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_torch_fallback_is_within_a_level_of_pillow(interpolation):
    boxes = [(10, 10, 100, 120), (0, 0, 120, 150), (30, 40, 50, 60), (5, 5, 64, 64)]
    flips = [False, True, False, True]
    outs = [
        _out((64, 64), layout)
        for layout in ("channels_last", "channels_first", "strided", "strided")
    ]
    resize._resize_with_torch(PHOTO, boxes, flips, outs, interpolation)
    diffs = []
    for box, flip, out in zip(boxes, flips, outs):
        expected = np.asarray(
            Image.fromarray(PHOTO[box[0] : box[0] + box[2], box[1] : box[1] + box[3]]).resize(
                (64, 64), Image.BILINEAR if interpolation == "bilinear" else Image.BICUBIC
            )
        )
        if flip:
            expected = expected[:, ::-1]
        diffs.append(np.abs(out.astype(int) - expected).ravel())
    assert np.array_equal(outs[3], PHOTO[5:69, 5:69][:, ::-1])  # same size: a mirrored copy
    diffs = np.concatenate(diffs)
    assert diffs.mean() < 0.1
    assert (diffs <= 1).mean() > 0.99


@pytest.mark.parametrize("path", ["extension", "torch"])
def test_bad_arguments_raise_config_errors(path, monkeypatch):
    if path == "extension" and not EXACT_RESIZE:
        pytest.skip("the _resample extension is not built")
    if path == "torch":
        monkeypatch.setattr(resize, "_resample", None)
    out = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ConfigError, match="not inside"):
        resize_crops(PHOTO, [(100, 0, 30, 30)], [False], [out])
    with pytest.raises(ConfigError, match="not inside"):
        resize_crops(PHOTO, [(0, 0, 0, 30)], [False], [out])
    with pytest.raises(ConfigError, match="same length"):
        resize_crops(PHOTO, [(0, 0, 30, 30)], [False, True], [out])
    with pytest.raises(ConfigError):
        resize_crops(PHOTO.astype(np.float32), [(0, 0, 30, 30)], [False], [out])
    with pytest.raises(ConfigError):
        resize_crops(PHOTO, [(0, 0, 30, 30)], [False], [np.zeros((8, 8, 4), np.uint8)])
    with pytest.raises(ConfigError, match="interpolation"):
        resize_crops(PHOTO, [(0, 0, 30, 30)], [False], [out], interpolation="lanczos")
    assert not out.any()  # nothing written on a refused call


def test_without_the_extension_spans_go_through_pillow_exactly(monkeypatch):
    monkeypatch.setattr(resize, "_resample", None)
    boxes = [(3, 4, 100, 120), (0, 0, 120, 150)]
    spans = [(0.5, 1.25, 99.75, 80.5), None]
    outs = [np.zeros((40, 50, 3), np.uint8), np.zeros((30, 31, 3), np.uint8)]
    resize_crops(PHOTO, boxes, [True, False], outs, interpolation="bilinear", spans=spans)
    first = Image.fromarray(np.ascontiguousarray(PHOTO[3:103, 4:124]))
    expected = np.asarray(first.resize((50, 40), Image.BILINEAR, box=spans[0]))[:, ::-1]
    assert np.array_equal(outs[0], expected)
    whole = np.asarray(Image.fromarray(PHOTO).resize((31, 30), Image.BILINEAR))
    assert np.array_equal(outs[1], whole)
