"""SegmentationPreset and DenseEvalPreset against torchvision's transforms.v2 for the same parameters.

Masks must be equal exactly (tv_tensors.Mask is resized with torch's "nearest"). Images are
resized by resize_crops, bit-identical to Pillow (torchvision's PIL path) where the C extension is
built: equal then; without it within 1 grey level (2 for bicubic), as in test_supervised.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

from shardstream.errors import ConfigError, MissingFieldError, TargetError
from shardstream.sets.demo import render_demo_image
from shardstream.vision.dense import DenseEvalPreset, SegmentationPreset
from shardstream.vision.dense_targets import crop_pad, decode_mask, nearest_indices, resize_mask
from shardstream.vision.resize import EXACT_RESIZE

IMAGE = render_demo_image(3)
PIL_IMAGE = Image.open(io.BytesIO(IMAGE)).convert("RGB")
WIDTH, HEIGHT = PIL_IMAGE.size
LABELS = np.random.default_rng(0).integers(0, 21, (HEIGHT, WIDTH), dtype=np.uint8)
LABELS[:, :7] = 255  # a void border


def _png(array: np.ndarray, mode: str | None = None, palette: bool = False) -> bytes:
    image = Image.fromarray(array, mode) if mode else Image.fromarray(array)
    if palette:
        image.putpalette(np.random.default_rng(1).integers(0, 256, 768).tolist())
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


PALETTE_PNG = _png(LABELS, "P", palette=True)
SAMPLE = {"key": "s0", "image": IMAGE, "label_image": PALETTE_PNG}


def _mask(array: np.ndarray) -> tv_tensors.Mask:
    return tv_tensors.Mask(torch.from_numpy(np.ascontiguousarray(array))[None])


def _assert_image(actual: np.ndarray, expected_pil: Image.Image, bicubic: bool = False) -> None:
    expected = np.asarray(expected_pil).transpose(2, 0, 1)
    assert actual.shape == expected.shape and actual.dtype == np.uint8
    if EXACT_RESIZE:
        assert np.array_equal(actual, expected)
    else:
        assert np.abs(actual.astype(int) - expected).max() <= (2 if bicubic else 1)


def test_nearest_indices_equal_torch_nearest_for_many_sizes():
    for n_in in (1, 2, 3, 7, 100, 319, 399, 1000):
        for n_out in (1, 2, 5, 64, 199, 200, 512, 777):
            source = torch.arange(n_in, dtype=torch.float32)[None, None, None]
            expected = torch.nn.functional.interpolate(source, size=(1, n_out), mode="nearest")
            assert nearest_indices(n_in, n_out).tolist() == expected.flatten().long().tolist()


@pytest.mark.parametrize("size", [(200, 300), (512, 512), (97, 61)])
def test_resized_crop_equals_torchvision_v2_for_the_drawn_box(size):
    preset = SegmentationPreset(size=size)
    flips = set()
    for seed in range(12):
        out = preset.worker(dict(SAMPLE), np.random.default_rng(seed))
        plan = preset.plan_for(HEIGHT, WIDTH, np.random.default_rng(seed))
        flips.add(plan.flip)
        image = F.resized_crop(PIL_IMAGE, *plan.box, list(size), antialias=True)
        mask = F.resized_crop(_mask(LABELS), *plan.box, list(size))
        if plan.flip:
            image, mask = F.horizontal_flip(image), F.horizontal_flip(mask)
        assert out["label_image"].dtype == np.uint8 and out["label_image"].shape == size
        assert np.array_equal(out["label_image"], mask[0].numpy())
        _assert_image(out["image"], image)
    assert flips == {True, False}


def test_bicubic_image_and_sixteen_bit_mask():
    labels16 = (LABELS.astype(np.uint16) * 1000).astype(np.uint16)
    sample = {"image": IMAGE, "seg": _png(labels16)}
    preset = SegmentationPreset(size=128, interpolation="bicubic", targets={"seg": "mask"})
    out = preset.worker(sample, np.random.default_rng(4))
    plan = preset.plan_for(HEIGHT, WIDTH, np.random.default_rng(4))
    mask = F.resized_crop(_mask(labels16.astype(np.int32)), *plan.box, [128, 128])
    image = F.resized_crop(
        PIL_IMAGE, *plan.box, [128, 128], InterpolationMode.BICUBIC, antialias=True
    )
    if plan.flip:
        image, mask = F.horizontal_flip(image), F.horizontal_flip(mask)
    assert out["seg"].dtype == np.uint16
    assert np.array_equal(out["seg"].astype(np.int32), mask[0].numpy())
    _assert_image(out["image"], image, bicubic=True)


def test_scale_mode_equals_resize_pad_crop_flip_in_torchvision():
    preset = SegmentationPreset(size=(300, 420), mode="scale", scale_range=(0.5, 1.5))
    padded = 0
    for seed in range(10):
        out = preset.worker(dict(SAMPLE), np.random.default_rng(seed))
        plan = preset.plan_for(HEIGHT, WIDTH, np.random.default_rng(seed))
        rh, rw = plan.resized
        short = min(rh, rw)
        image = F.resize(PIL_IMAGE, [short], antialias=True)
        mask = F.resize(_mask(LABELS), [short])
        assert image.size == (rw, rh)
        pad_h, pad_w = max(300 - rh, 0), max(420 - rw, 0)
        padded += bool(pad_h or pad_w)
        image = F.pad(image, [0, 0, pad_w, pad_h], fill=0)
        mask = F.pad(mask, [0, 0, pad_w, pad_h], fill=255)
        top, left = plan.window[:2]
        image, mask = F.crop(image, top, left, 300, 420), F.crop(mask, top, left, 300, 420)
        if plan.flip:
            image, mask = F.horizontal_flip(image), F.horizontal_flip(mask)
        assert np.array_equal(out["label_image"], mask[0].numpy())
        _assert_image(out["image"], image)
    assert 0 < padded < 10  # both cases were met


@pytest.mark.parametrize("resize, crop", [(256, 224), (200, (150, 250)), (100, 160)])
def test_eval_preset_equals_resize_then_center_crop(resize, crop):
    out = DenseEvalPreset(resize_size=resize, crop_size=crop).worker(dict(SAMPLE))
    image = F.center_crop(F.resize(PIL_IMAGE, [resize], antialias=True), crop)
    # CenterCrop pads with 0; the preset pads masks with the ignore index
    mask = F.center_crop(F.resize(_mask(LABELS.astype(np.int64) + 1), [resize]), crop)
    expected = mask[0].numpy() - 1
    expected[expected < 0] = 255
    assert np.array_equal(out["label_image"], expected)
    _assert_image(out["image"], image)


def test_eval_tiles_cover_the_resized_image():
    preset = DenseEvalPreset(resize_size=(300, 400), crop_size=128, tile_stride=100)
    out = preset.worker(dict(SAMPLE))
    tiles = out["tiles"]
    assert tiles[:, 0].tolist() == sorted(tiles[:, 0].tolist())
    assert sorted({t for t in tiles[:, 0].tolist()}) == [0, 100, 172]
    assert sorted({x for x in tiles[:, 1].tolist()}) == [0, 100, 200, 272]
    assert out["image"].shape == (12, 3, 128, 128)
    whole = DenseEvalPreset(resize_size=(300, 400)).worker(dict(SAMPLE))
    assert np.array_equal(out["label_image"], whole["label_image"])
    for tile, (t, x, h, w) in zip(out["image"], tiles.tolist()):
        assert np.array_equal(tile, whole["image"][:, t : t + h, x : x + w])
    expected = F.resize(_mask(LABELS), [300, 400])[0].numpy()
    assert np.array_equal(whole["label_image"], expected)


def test_decode_mask_gives_palette_indices_grey_values_and_refuses_colour():
    assert np.array_equal(decode_mask(PALETTE_PNG), LABELS)
    assert np.array_equal(decode_mask(_png(LABELS)), LABELS)  # grey L
    big = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000
    assert decode_mask(_png(big)).tolist() == big.tolist()
    assert decode_mask(np.ones((2, 3), bool)).dtype == np.uint8
    with pytest.raises(TargetError, match="RGB image"):
        decode_mask(_png(np.zeros((4, 4, 3), np.uint8)), field="seg")
    with pytest.raises(TargetError, match="'seg' is not an image"):
        decode_mask(b"not a png", field="seg")
    with pytest.raises(TargetError, match="3 x 4 pixels, its image 4 x 4"):
        decode_mask(_png(big), field="seg", size=(4, 4))


def test_target_errors_name_the_sample_and_field():
    preset = SegmentationPreset(size=64)
    small = _png(LABELS[:50, :50], "P", palette=True)
    with pytest.raises(TargetError) as info:
        preset.worker(
            {"key": "bad", "image": IMAGE, "label_image": small}, np.random.default_rng(0)
        )
    assert info.value.key == "bad" and "label_image" in str(info.value) and "bad" in str(info.value)
    with pytest.raises(MissingFieldError, match="label_image"):
        preset.worker({"key": "k", "image": IMAGE}, np.random.default_rng(0))


def test_ignore_index_too_large_for_uint8_promotes_masks():
    preset = DenseEvalPreset(resize_size=100, crop_size=160, ignore_index=1000)
    out = preset.worker(dict(SAMPLE))
    assert out["label_image"].dtype == np.int32 and out["label_image"].max() == 1000


def test_fields_and_validation():
    preset = SegmentationPreset(
        targets={"seg": "mask", "sal": "saliency", "bb": "boxes"},
        box_labels={"bb": "bb_labels"},
        label_field="label",
    )
    assert preset.fields == ("image", "label", "seg", "sal", "bb", "bb_labels")
    bad = [
        {"targets": {"seg": "depth"}},
        {"targets": {"image": "mask"}},
        {"targets": {"seg": "mask"}, "box_labels": {"seg": "x"}},
        {"mode": "zoom"},
        {"ignore_index": -1},
        {"max_objects": 0},
        {"min_size": float("inf")},
        {"scale_range": (0, 2)},
        {"flip_p": 2},
        {"interpolation": "nearest"},
    ]
    for kwargs in bad:
        with pytest.raises(ConfigError):
            SegmentationPreset(**kwargs)
    with pytest.raises(ConfigError, match="tiles need"):
        DenseEvalPreset(resize_size=256, crop_size=128, tile_stride=64)
    with pytest.raises(ConfigError, match="rng"):
        SegmentationPreset().worker(dict(SAMPLE), None)


def test_same_generator_same_output():
    preset = SegmentationPreset(size=96, mode="scale")
    a = preset.worker(dict(SAMPLE), np.random.default_rng(9))
    b = preset.worker(dict(SAMPLE), np.random.default_rng(9))
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_exported_from_the_package_root():
    import shardstream
    import shardstream.vision.dense as dense

    assert shardstream.SegmentationPreset is dense.SegmentationPreset is SegmentationPreset
    assert shardstream.DenseEvalPreset is dense.DenseEvalPreset is DenseEvalPreset
    assert dense.TARGET_KINDS == ("mask", "saliency", "points", "boxes")


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(1, 60),
    width=st.integers(1, 60),
    out=st.tuples(st.integers(1, 90), st.integers(1, 90)),
    corner=st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)),
    flip=st.booleans(),
)
def test_resize_mask_equals_torchvision_for_any_box_and_size(height, width, out, corner, flip):
    labels = np.arange(height * width, dtype=np.int32).reshape(height, width)
    top, left = int(corner[0] * (height - 1)), int(corner[1] * (width - 1))
    h = 1 + int(corner[2] * (height - top - 1))
    w = 1 + int(corner[3] * (width - left - 1))
    expected = F.resized_crop(_mask(labels), top, left, h, w, list(out))
    if flip:
        expected = F.horizontal_flip(expected)
    actual = resize_mask(labels, (top, left, h, w), out, flip)
    assert actual.flags.c_contiguous and np.array_equal(actual, expected[0].numpy())


@settings(max_examples=40, deadline=None)
@given(
    size=st.tuples(st.integers(1, 20), st.integers(1, 20)),
    window=st.tuples(
        st.integers(-25, 25), st.integers(-25, 25), st.integers(1, 30), st.integers(1, 30)
    ),
)
def test_crop_pad_equals_pad_then_crop(size, window):
    layer = np.arange(size[0] * size[1], dtype=np.int32).reshape(size) + 1
    top, left, h, w = window
    pad = 60
    padded = np.pad(layer, pad, constant_values=-7)
    expected = padded[top + pad : top + pad + h, left + pad : left + pad + w]
    assert np.array_equal(crop_pad(layer, top, left, h, w, -7), expected)


def test_target_error_is_an_image_decode_error_and_pickles():
    import pickle

    from shardstream.errors import ImageDecodeError

    error = TargetError("field 'seg' is 3 x 4 pixels", key="s1")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, TargetError) and isinstance(copy, ImageDecodeError)
    assert isinstance(copy, ValueError) and copy.key == "s1" and str(copy) == str(error)


def test_rotated_jpeg_targets_are_in_the_displayed_frame():
    from PIL import ImageOps

    exif = Image.Exif()
    exif[0x0112] = 6  # stored 90 x 120, displayed 120 x 90 (height x width)
    stored = Image.fromarray(np.asarray(PIL_IMAGE)[:90, :120])
    data = io.BytesIO()
    stored.save(data, "JPEG", exif=exif.tobytes(), quality=95)
    shown = ImageOps.exif_transpose(Image.open(io.BytesIO(data.getvalue()))).convert("RGB")
    assert shown.size == (90, 120)
    labels = LABELS[:120, :90].copy()
    sample = {"image": data.getvalue(), "label_image": _png(labels, "P", palette=True)}
    preset = SegmentationPreset(size=48)
    for seed in range(4):
        out = preset.worker(sample, np.random.default_rng(seed))
        plan = preset.plan_for(120, 90, np.random.default_rng(seed))
        image = F.resized_crop(shown, *plan.box, [48, 48], antialias=True)
        mask = F.resized_crop(_mask(labels), *plan.box, [48, 48])
        if plan.flip:
            image, mask = F.horizontal_flip(image), F.horizontal_flip(mask)
        assert np.array_equal(out["label_image"], mask[0].numpy())
        _assert_image(out["image"], image)
    with pytest.raises(TargetError, match="90 x 120 pixels, its image 120 x 90"):
        preset.worker({**sample, "label_image": _png(labels.T.copy())}, np.random.default_rng(0))
