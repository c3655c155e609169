"""SupervisedPreset and EvalPreset against torchvision's transforms on the same images.

Tolerances: at a full-size decode the crop box is whole pixels and is resized by resize_crops,
bit-identical to Pillow (torchvision's PIL path) with the C extension: the pixels must be equal.
Without it, torch's uint8 antialiased interpolation, which follows Pillow's algorithm with its own
fixed-point rounding: every pixel within 1 grey level (2 for bicubic, whose overshoot rounds
differently), the mean difference under 0.3. On a reduced
DCT decode (large images) libjpeg-turbo's scaled IDCT stands in for part of the filter: mean
difference under 1.5 levels on a smooth picture, as in test_decode. The evaluation preset resizes
the centre box once instead of resizing then cropping: mean under 0.5, under 2 % of pixels off by
more than 2 levels. Normalisation equals ToTensor + Normalize within 1e-5.
"""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as F
from PIL import Image, ImageOps
from scipy.stats import binomtest, ks_2samp
from torchvision.transforms import (
    CenterCrop,
    InterpolationMode,
    Normalize,
    RandomResizedCrop,
    Resize,
)

from shardstream.errors import ConfigError, ImageDecodeError, LabelError, MissingFieldError
from shardstream.sets.demo import render_demo_image
from shardstream.vision import (
    center_crop_params,
    choose_scale,
    decode,
    decode_image,
    image_size,
    random_resized_crop_params,
)
from shardstream.vision.resize import EXACT_RESIZE
from shardstream.vision.supervised import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    EvalPreset,
    SupervisedPreset,
    _resize_whole_box,
)

from ..contracts.images import encode, smooth_rgb

DEMO = render_demo_image(3)
SMOOTH = encode(smooth_rgb(427, 455), quality=90)


def _pil(data: bytes) -> Image.Image:
    return ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")


def _torchvision_crop(data, box, size, flip, interpolation=InterpolationMode.BILINEAR):
    """torchvision's RandomResizedCrop + RandomHorizontalFlip on a PIL image, for a given box."""
    out = F.resized_crop(_pil(data), *box, list(size), interpolation, antialias=True)
    if flip:
        out = F.hflip(out)
    return np.asarray(out).transpose(2, 0, 1).astype(int)


def _run(preset, data, seed, key="img_0"):
    return preset.worker({"key": key, "image": data, "label": 7}, np.random.default_rng(seed))


def test_output_shapes_dtypes_and_label():
    out = _run(SupervisedPreset(), DEMO, 0)
    assert sorted(out) == ["image", "label"]
    image = out["image"]
    assert image.dtype == np.uint8 and image.shape == (3, 224, 224)
    assert image.flags.c_contiguous and image.flags.writeable
    assert out["label"].dtype == np.int64 and out["label"] == 7
    wide = SupervisedPreset(size=(96, 160), label_field=None)
    assert wide.fields == ("image",)
    out = wide.worker({"image": DEMO}, np.random.default_rng(0))
    assert list(out) == ["image"] and out["image"].shape == (3, 96, 160)
    assert SupervisedPreset().fields == ("image", "label")
    evaluated = EvalPreset().worker({"key": "k", "image": DEMO, "label": 2})
    assert evaluated["image"].shape == (3, 224, 224) and evaluated["image"].dtype == np.uint8
    assert evaluated["label"] == 2
    preset = SupervisedPreset(size=128, flip_p=0.25)
    assert pickle.loads(pickle.dumps(preset)) == preset  # sent to worker processes


def test_plan_is_the_torchvision_algorithm_on_the_sample_generator():
    preset = SupervisedPreset(scale=(0.2, 0.9), ratio=(0.5, 2.0))
    rng, replay = np.random.default_rng(11), np.random.default_rng(11)
    for _ in range(50):
        box, flip = preset.plan(300, 400, rng)
        assert box == random_resized_crop_params(300, 400, (0.2, 0.9), (0.5, 2.0), rng=replay)
        assert flip == (replay.random() < 0.5)
    # the fallback (no attempt fits) is deterministic: the same box as torchvision's get_params
    image = torch.empty(3, 1, 200)
    assert preset.plan(1, 200, rng)[0] == RandomResizedCrop.get_params(image, (0.2, 0.9), (0.5, 2))


def test_crop_distribution_and_flip_rate_match_torchvision():
    preset = SupervisedPreset()
    rng = np.random.default_rng(0)
    plans = [preset.plan(350, 398, rng) for _ in range(3000)]
    ours = np.array([box for box, _ in plans])
    torch.manual_seed(0)
    image = torch.empty(3, 350, 398)
    theirs = np.array(
        [RandomResizedCrop.get_params(image, (0.08, 1.0), (3 / 4, 4 / 3)) for _ in range(3000)]
    )
    for name, stat in {
        "area": lambda b: b[:, 2] * b[:, 3],
        "aspect": lambda b: b[:, 3] / b[:, 2],
        "top": lambda b: b[:, 0],
        "left": lambda b: b[:, 1],
    }.items():
        assert ks_2samp(stat(ours), stat(theirs)).pvalue > 0.01, name
    flips = sum(flip for _, flip in plans)
    assert binomtest(flips, 3000, 0.5).pvalue > 0.001
    never = SupervisedPreset(flip_p=0.0)
    assert not any(never.plan(350, 398, rng)[1] for _ in range(200))


@pytest.mark.parametrize("data", [DEMO, SMOOTH], ids=["demo", "smooth"])
def test_pixels_match_torchvision_on_the_same_box_full_decode(data):
    preset = SupervisedPreset()
    height, width = image_size(data)
    flips = 0
    for seed in range(12):
        box, flip = preset.plan(height, width, np.random.default_rng(seed))
        assert choose_scale(height, width, [box], [224]) == 1
        ours = _run(preset, data, seed)["image"].astype(int)
        diff = np.abs(ours - _torchvision_crop(data, box, (224, 224), flip))
        assert diff.max() <= (0 if EXACT_RESIZE else 1) and diff.mean() < 0.3, (seed, box)
        flips += flip
    assert 0 < flips < 12  # both paths were checked


def test_pixels_close_to_torchvision_on_a_reduced_decode():
    data = encode(smooth_rgb(1100, 1200), quality=90)
    preset = SupervisedPreset(size=160, scale=(0.6, 1.0), interpolation="bicubic")
    scales = set()
    for seed in range(6):
        box, flip = preset.plan(1100, 1200, np.random.default_rng(seed))
        scales.add(choose_scale(1100, 1200, [box], [160]))
        ours = _run(preset, data, seed)["image"].astype(int)
        ref = _torchvision_crop(data, box, (160, 160), flip, InterpolationMode.BICUBIC)
        diff = np.abs(ours - ref)
        assert diff.mean() < 1.5, (seed, box, diff.mean())
    assert scales == {4}


def test_bicubic_full_decode_exact_or_within_two_levels():
    preset = SupervisedPreset(interpolation="bicubic")
    for seed in range(4):
        box, flip = preset.plan(*image_size(DEMO), np.random.default_rng(seed))
        ours = _run(preset, DEMO, seed)["image"].astype(int)
        ref = _torchvision_crop(DEMO, box, (224, 224), flip, InterpolationMode.BICUBIC)
        diff = np.abs(ours - ref)
        assert diff.max() <= (0 if EXACT_RESIZE else 2) and diff.mean() < 0.05, (box, diff.max())


def test_same_generator_same_output_and_seeds_differ():
    preset = SupervisedPreset()
    a = _run(preset, DEMO, 5)["image"]
    assert (a == _run(preset, DEMO, 5)["image"]).all()
    assert not (a == _run(preset, DEMO, 6)["image"]).all()


def test_eval_preset_matches_resize_then_center_crop():
    for data in (DEMO, SMOOTH):
        ours = EvalPreset().worker({"image": data, "label": 0})["image"].astype(int)
        ref = np.asarray(CenterCrop(224)(Resize(256)(_pil(data)))).transpose(2, 0, 1)
        diff = np.abs(ours - ref.astype(int))
        assert diff.mean() < 0.5 and (diff > 2).mean() < 0.02, (diff.mean(), (diff > 2).mean())
    rect = EvalPreset(resize_size=160, crop_size=(128, 144), label_field=None)
    assert rect.worker({"image": DEMO})["image"].shape == (3, 128, 144)


def test_device_normalises_like_to_tensor_and_normalize():
    images = torch.from_numpy(
        np.stack([_run(SupervisedPreset(), DEMO, s)["image"] for s in range(3)])
    )
    labels = torch.tensor([1, 2, 3])
    index = torch.tensor([10, 11, 12])
    for preset in (SupervisedPreset(), EvalPreset()):
        out = preset.device({"image": images, "label": labels, "index": index})
        assert out["image"].dtype == torch.float32 and out["image"].shape == (3, 3, 224, 224)
        ref = Normalize(IMAGENET_MEAN, IMAGENET_STD)(images.float() / 255)
        assert torch.allclose(out["image"], ref, atol=1e-5, rtol=0)
        assert out["label"] is labels and out["index"] is index
    assert images.dtype == torch.uint8  # the input batch is left alone
    custom = SupervisedPreset(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    out = custom.device({"image": torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)})
    assert torch.equal(out["image"], torch.ones(1, 3, 2, 2))


def test_png_rgba_and_grayscale_and_rotated_inputs():
    preset = SupervisedPreset(size=64)
    png = encode(smooth_rgb(90, 120).convert("RGBA"), "PNG")
    gray = encode(smooth_rgb(90, 120).convert("L"), quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = encode(smooth_rgb(90, 120), exif=exif.tobytes(), quality=95)
    assert image_size(rotated) == (120, 90)
    for data in (png, gray, rotated):
        height, width = image_size(data)
        for seed in range(3):
            box, flip = preset.plan(height, width, np.random.default_rng(seed))
            ours = _run(preset, data, seed)["image"]
            assert ours.shape == (3, 64, 64)
            diff = np.abs(ours.astype(int) - _torchvision_crop(data, box, (64, 64), flip))
            assert diff.max() <= 1
    out = _run(preset, gray, 0)["image"]
    assert (out[0] == out[1]).all() and (out[1] == out[2]).all()
    small_eval = EvalPreset(resize_size=80, crop_size=64, label_field=None)
    assert small_eval.worker({"image": png})["image"].shape == (3, 64, 64)


@pytest.mark.parametrize("preset", [SupervisedPreset(), EvalPreset()], ids=["train", "eval"])
def test_bad_images_raise_naming_the_key(preset):
    cases = [
        (b"hello, not an image", "not an image Pillow recognises"),
        (SMOOTH[:200], "truncated JPEG"),
        (SMOOTH[: len(SMOOTH) // 3], "corrupt JPEG"),
    ]
    for data, problem in cases:
        with pytest.raises(ImageDecodeError, match=problem) as caught:
            _run(preset, data, 0, key="cls/bad_007.jpg")
        assert caught.value.key == "cls/bad_007.jpg"
        assert str(caught.value).startswith("cls/bad_007.jpg: ")
    small = SupervisedPreset(max_pixels=100_000)
    with pytest.raises(ImageDecodeError, match="more than the limit of 100000") as caught:
        _run(small, SMOOTH, 0, key="big")
    assert caught.value.key == "big"
    with pytest.raises(MissingFieldError, match="sample 'k' has no field 'image'"):
        preset.worker({"key": "k", "label": 1}, np.random.default_rng(0))
    with pytest.raises(MissingFieldError, match="sample 'k' has no field 'label'"):
        preset.worker({"key": "k", "image": DEMO}, np.random.default_rng(0))
    with pytest.raises(LabelError, match="sample 'k': label field 'label' must be an int"):
        preset.worker({"key": "k", "image": DEMO, "label": "dog"}, np.random.default_rng(0))


def test_argument_validation():
    with pytest.raises(ConfigError, match="size must be an int or a"):
        SupervisedPreset(size="224")
    with pytest.raises(ConfigError, match="scale must be finite"):
        SupervisedPreset(scale=(1.0, 0.5))
    with pytest.raises(ConfigError, match="ratio must be finite .* and min > 0"):
        SupervisedPreset(ratio=(0.0, 1.0))
    with pytest.raises(ConfigError, match="flip_p must be a probability"):
        SupervisedPreset(flip_p=1.5)
    with pytest.raises(ConfigError, match="interpolation must be one of"):
        SupervisedPreset(interpolation="nearest")
    with pytest.raises(ConfigError, match="std must be positive"):
        SupervisedPreset(std=(0.2, 0.0, 0.2))
    with pytest.raises(ConfigError, match="mean must be 3 finite numbers"):
        EvalPreset(mean=(0.5, 0.5))
    with pytest.raises(ConfigError, match="max_pixels must be a positive int or None"):
        EvalPreset(max_pixels=0)
    with pytest.raises(ConfigError, match="crop_size 300 is larger than resize_size 256"):
        EvalPreset(crop_size=300)
    with pytest.raises(ConfigError, match="resize_size must be an int"):
        EvalPreset(resize_size=(256, 256))
    with pytest.raises(TypeError):
        SupervisedPreset(224)  # keyword-only
    assert SupervisedPreset(size=(10, 20), scale=[0.5, 1]).scale == (0.5, 1.0)


def test_normalising_in_the_workers_equals_normalising_on_the_device():
    data = render_demo_image(5)
    sample = {"key": "k", "image": data, "label": 3}
    for make in (SupervisedPreset, EvalPreset):
        on_device = make(normalize_in="device")
        in_workers = make(normalize_in="workers")
        a = [on_device.worker(sample, np.random.default_rng(i)) for i in range(3)]
        b = [in_workers.worker(sample, np.random.default_rng(i)) for i in range(3)]
        assert all(np.array_equal(x["image"], y["image"]) for x, y in zip(a, b))  # uint8 both
        collated_a, collated_b = on_device.collate(a), in_workers.collate(b)
        assert list(collated_b) == ["image", "label"] and collated_b["label"].tolist() == [3] * 3
        assert collated_a["image"].dtype == np.uint8 and collated_b["image"].dtype == np.float32
        batch_a = on_device.device({"image": torch.from_numpy(collated_a["image"])})
        batch_b = in_workers.device({"image": torch.from_numpy(collated_b["image"])})
        assert batch_b["image"].shape == (3, 3, 224, 224)
        assert torch.equal(batch_a["image"], batch_b["image"])  # LUT == ToTensor + Normalize
    assert SupervisedPreset().for_device("cpu").normalize_in == "workers"
    assert SupervisedPreset().for_device(None).normalize_in == "workers"
    assert EvalPreset().for_device("cuda:0").normalize_in == "device"
    assert SupervisedPreset(normalize_in="device").for_device("cpu").normalize_in == "device"
    with pytest.raises(ConfigError, match="normalize_in must be"):
        SupervisedPreset(normalize_in="gpu")


# --- region decoding: the output is the one of the full-decode path, bit for bit ---------------


def _full_decode_worker(preset, data, rng):
    """SupervisedPreset.worker as it was before region decoding: decode the whole image."""
    height, width = image_size(data)
    box, flip = preset.plan(height, width, rng)
    scale = choose_scale(height, width, [box], [preset.size])
    if scale == 1:
        image = decode_image(data)
        return _resize_whole_box(image, box, preset.size, preset.interpolation, flip)
    image, y_map, x_map, window = decode._decode(
        data, lambda h, w: scale, None, boxes=[box], region=False
    )
    resample = decode.INTERPOLATIONS[preset.interpolation]
    out = decode._resized_crop(image, box, y_map, x_map, window, preset.size, resample, flip)
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def _grainy_jpeg(height, width, orientation=1, grey=False, **options):
    pixels = np.asarray(smooth_rgb(height, width)).astype(int)
    pixels += np.random.default_rng(height).integers(-30, 31, pixels.shape)
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    if grey:
        image = image.convert("L")
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, quality=90, exif=exif.tobytes(), **options)


REGION_IMAGES = {
    "demo": DEMO,
    "rot6": _grainy_jpeg(353, 401, orientation=6),
    "rot3-422": _grainy_jpeg(301, 257, orientation=3, subsampling=1),
    "rot7-progressive": _grainy_jpeg(240, 333, orientation=7, progressive=True),
    "grey": _grainy_jpeg(299, 350, grey=True),
    "large": _grainy_jpeg(1001, 900, orientation=8),  # reduced DCT scales for big boxes
}


@pytest.mark.parametrize("name", sorted(REGION_IMAGES))
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_region_decode_output_equals_full_decode_output(name, interpolation):
    data = REGION_IMAGES[name]
    preset = SupervisedPreset(
        interpolation=interpolation, size=(160, 128) if name == "grey" else 224
    )
    scales = set()
    for seed in range(40 if name != "large" else 16):
        ours = _run(preset, data, seed)["image"]
        theirs = _full_decode_worker(preset, data, np.random.default_rng(seed))
        assert ours.shape == theirs.shape and np.array_equal(ours, theirs), (name, seed)
        height, width = image_size(data)
        box, _ = preset.plan(height, width, np.random.default_rng(seed))
        scales.add(choose_scale(height, width, [box], [preset.size]))
    assert scales == ({1, 2} if name == "large" else {1})
    evaluated = EvalPreset(interpolation=interpolation).worker({"image": data, "label": 0})
    height, width = image_size(data)
    box = center_crop_params(height, width, resize_size=256, crop_size=(224, 224))
    scale = choose_scale(height, width, [box], [(224, 224)])
    expected = _full_path_crop(data, box, (224, 224), scale, interpolation)
    assert np.array_equal(evaluated["image"], expected.transpose(2, 0, 1))


def _full_path_crop(data, box, size, scale, interpolation):
    image, y_map, x_map, window = decode._decode(
        data, lambda h, w: scale, None, boxes=[box], region=False
    )
    resample = decode.INTERPOLATIONS[interpolation]
    return decode._resized_crop(image, box, y_map, x_map, window, size, resample, False)
