"""DinoPreset against dinov2's torchvision pipeline and collate, on real encoded images.

Tolerances: at a full-size decode the views are resized by torch's uint8 antialiased bicubic
interpolation, which follows Pillow's algorithm (torchvision's PIL path) with its own fixed-point
rounding and, for some shapes, the other order of its two 1-D passes: per view, mean absolute
difference under 0.6 levels and under 4 % of pixels off by more than 2 levels (grainy photos, where
the intermediate rounding matters most); over all views, mean under 0.1, over 99 % of pixels within
1 level and under 0.5 % off by more than 2. On a reduced DCT decode (large images) libjpeg-turbo's scaled IDCT stands in for
part of the filter: mean difference under 1.5 levels (as in test_decode). Rates of random ops are
checked with two-sided binomial tests (p > 1e-3), crop geometry with two-sample KS tests (p > 0.01).
"""

from __future__ import annotations

import dataclasses
import io
import pickle

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as F
from PIL import Image, ImageOps
from scipy.stats import binomtest, ks_2samp
from torchvision.transforms import InterpolationMode, RandomResizedCrop

from shardstream.engine import SKIPPED
from shardstream.engine.collate import default_collate, to_torch
from shardstream.errors import ConfigError, ImageDecodeError, LabelError, MissingFieldError
from shardstream.sets.demo import render_demo_image
from shardstream.vision.collate import collate_data_and_cast
from shardstream.vision.dino import DINO_OUTPUT_KEYS, DinoPreset
from shardstream.vision.masking import MaskingGenerator
from shardstream.vision.photometric import IMAGENET_MEAN, IMAGENET_STD, PARAM_KEYS
from shardstream.vision.resize import EXACT_RESIZE

from ..contracts.images import encode, smooth_rgb

DEMO = render_demo_image(3)
SMOOTH = encode(smooth_rgb(300, 340), quality=90)


def _sample(data: bytes, key: str = "img_0", label: int = 7) -> dict:
    return {"key": key, "image": data, "label": label}


def _batch(preset: DinoPreset, datas: list[bytes], seed: int = 0) -> dict:
    outs = [
        preset.worker(_sample(d, f"img_{i}", i), np.random.default_rng([seed, i]))
        for i, d in enumerate(datas)
    ]
    return to_torch(default_collate(outs))


def _reference_view(data: bytes, box, size: int, flip: bool) -> np.ndarray:
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    out = F.resized_crop(image, *box, [size, size], InterpolationMode.BICUBIC)
    if flip:
        out = F.hflip(out)
    return np.asarray(out).transpose(2, 0, 1).astype(int)


# --- output structure -----------------------------------------------------------------------


def test_worker_output_shapes_and_dtypes():
    out = DinoPreset().worker(_sample(DEMO), np.random.default_rng(0))
    assert set(out) == {
        "global_crops",
        "local_crops",
        "photometric",
        "masks",
        "mask_upperbound",
        "label",
    }
    assert out["global_crops"].shape == (2, 3, 224, 224)
    assert out["global_crops"].dtype == np.uint8
    assert out["local_crops"].shape == (8, 3, 96, 96)
    assert out["local_crops"].dtype == np.uint8
    assert out["masks"].shape == (2, 14, 14) and out["masks"].dtype == bool
    assert out["mask_upperbound"].dtype == np.int64
    assert out["label"] == 7 and out["label"].dtype == np.int64
    params = out["photometric"]
    assert set(params) == {"global_1", "global_2", "local"}
    assert params["global_1"]["order"].shape == (4,)
    assert params["local"]["order"].shape == (8, 4)
    assert params["local"]["sigma"].shape == (8,) and params["local"]["sigma"].dtype == np.float32
    assert params["local"]["blur"].dtype == bool


@pytest.mark.parametrize("dtype", [torch.half, torch.float32])
def test_device_output_matches_dinov2_collate_keys_shapes_dtypes(dtype):
    batch_size = 4
    preset = DinoPreset(dtype=dtype)
    ours = preset.device(_batch(preset, [DEMO, SMOOTH, DEMO, SMOOTH]))
    fake = [
        (
            {
                "global_crops": [torch.zeros(3, 224, 224)] * 2,
                "local_crops": [torch.zeros(3, 96, 96)] * 8,
            },
            None,
        )
    ] * batch_size
    reference = collate_data_and_cast(
        fake,
        (0.1, 0.5),
        0.5,
        dtype,
        n_tokens=196,
        mask_generator=MaskingGenerator((14, 14), max_num_patches=0.5 * 14 * 14),
    )
    assert set(ours) == set(reference) | {"labels"}
    assert set(reference) == set(DINO_OUTPUT_KEYS)
    for key, value in reference.items():
        if isinstance(value, torch.Tensor):
            assert ours[key].dtype == value.dtype, key
            if key not in ("mask_indices_list", "masks_weight"):  # lengths depend on the draw
                assert ours[key].shape == value.shape, key
            assert ours[key].ndim == value.ndim, key
        else:
            assert type(ours[key]) is type(value), key
    assert ours["labels"].tolist() == [0, 1, 2, 3]
    masked = ours["collated_masks"]
    assert ours["n_masked_patches"].tolist() == [int(masked.sum())]
    assert ours["mask_indices_list"].tolist() == masked.flatten().nonzero().flatten().tolist()
    counts = masked.sum(-1)
    expected_weight = (1 / counts.clamp(min=1)).unsqueeze(-1).expand_as(masked)[masked]
    assert torch.equal(ours["masks_weight"], expected_weight)
    masked_crops = int(masked.any(-1).sum())
    assert ours["upperbound"] == masked_crops * int(196 * 0.5)


def test_device_orders_views_like_dinov2_and_routes_recipes():
    """Global crop 1 of every sample, then crop 2; locals crop-major; each view kind's recipe."""
    preset = DinoPreset(blur="documented")
    batch = _batch(preset, [DEMO, SMOOTH, DEMO])
    params = batch["photometric"]
    for kind in ("global_1", "global_2", "local"):  # switch every op off ...
        for key in ("jitter", "grayscale", "blur", "solarize"):
            params[kind][key] = torch.zeros_like(params[kind][key])
    params["global_2"]["grayscale"][:] = True  # ... but grayscale on global crop 2
    out = preset.device(batch)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    plain = (batch["global_crops"].float() / 255 - mean.unsqueeze(0)) / std.unsqueeze(0)
    collated = out["collated_global_crops"]
    assert collated.shape == (6, 3, 224, 224)
    assert torch.allclose(collated[:3], plain[:, 0], atol=1e-5)
    restored = collated[3:] * std + mean
    assert torch.allclose(restored[:, 0], restored[:, 1], atol=1e-5)
    assert torch.allclose(restored[:, 1], restored[:, 2], atol=1e-5)
    local = out["collated_local_crops"]
    assert local.shape == (24, 3, 96, 96)
    for view in range(8):
        for sample in range(3):
            expected = (batch["local_crops"][sample, view].float() / 255 - mean[0]) / std[0]
            assert torch.allclose(local[view * 3 + sample], expected, atol=1e-5)
    # masks: (batch, 2, h, w) from the workers -> crop-major rows of collated_masks
    masks = batch["masks"]
    assert torch.equal(out["collated_masks"][:3], masks[:, 0].flatten(1))
    assert torch.equal(out["collated_masks"][3:], masks[:, 1].flatten(1))


def test_masks_off_and_no_local_crops_and_no_label():
    preset = DinoPreset(masks=False, local_crops_number=0, label_field=None)
    assert preset.fields == ("image",)
    worker_out = preset.worker({"image": DEMO}, np.random.default_rng(0))
    assert set(worker_out) == {"global_crops", "local_crops", "photometric"}
    assert worker_out["local_crops"].shape == (0, 3, 96, 96)
    assert worker_out["photometric"]["local"]["order"].shape == (0, 4)
    out = preset.device(to_torch(default_collate([worker_out, worker_out])))
    assert set(out) == {"collated_global_crops", "collated_local_crops"}
    assert out["collated_global_crops"].shape == (4, 3, 224, 224)
    assert out["collated_local_crops"].shape == (0,)


def test_custom_sizes_and_patch_grid():
    preset = DinoPreset(
        global_crops_size=64, local_crops_size=32, local_crops_number=3, patch_size=8
    )
    assert preset.n_tokens == 64
    out = preset.worker(_sample(DEMO), np.random.default_rng(0))
    assert out["global_crops"].shape == (2, 3, 64, 64)
    assert out["local_crops"].shape == (3, 3, 32, 32)
    assert out["masks"].shape == (2, 8, 8)


# --- randomness -------------------------------------------------------------------------------


def test_deterministic_from_rng_and_picklable():
    preset = DinoPreset()
    a = preset.worker(_sample(DEMO), np.random.default_rng(5))
    b = pickle.loads(pickle.dumps(preset)).worker(_sample(DEMO), np.random.default_rng(5))
    c = preset.worker(_sample(DEMO), np.random.default_rng(6))
    for key in ("global_crops", "local_crops", "masks"):
        assert np.array_equal(a[key], b[key]), key
    for kind in ("global_1", "global_2", "local"):
        for key in PARAM_KEYS:
            assert np.array_equal(a["photometric"][kind][key], b["photometric"][kind][key])
    assert not np.array_equal(a["global_crops"], c["global_crops"])
    torch.manual_seed(0)
    first = preset.device(_batch(preset, [DEMO, SMOOTH]))
    torch.manual_seed(1)  # the device step draws nothing
    second = preset.device(_batch(preset, [DEMO, SMOOTH]))
    assert torch.equal(first["collated_global_crops"], second["collated_global_crops"])
    assert torch.equal(first["collated_local_crops"], second["collated_local_crops"])


def test_views_are_the_planned_boxes_resized_like_torchvision():
    preset = DinoPreset()
    diffs = []
    for data, seed in ((DEMO, 0), (SMOOTH, 1), (DEMO, 2), (render_demo_image(8), 3)):
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
        width, height = image.size
        boxes, flips = preset.plan(height, width, np.random.default_rng(seed))
        out = preset.worker(_sample(data), np.random.default_rng(seed))
        views = [*out["global_crops"], *out["local_crops"]]
        sizes = [224, 224] + [96] * 8
        for view, box, size, flip in zip(views, boxes, sizes, flips):
            diff = np.abs(view.astype(int) - _reference_view(data, box, size, bool(flip)))
            assert diff.mean() < 0.6, (box, diff.mean())
            assert (diff > 2).mean() < 0.04, (box, (diff > 2).mean())
            diffs.append(diff.ravel())
    diffs = np.concatenate(diffs)
    assert diffs.mean() < 0.1
    assert (diffs > 2).mean() < 0.005
    assert (diffs <= 1).mean() > 0.99


@pytest.mark.skipif(not EXACT_RESIZE, reason="the _resample extension is not built")
def test_views_equal_torchvision_on_pil_exactly_with_the_extension():
    # a full-size decode (both decoders are libjpeg-turbo) and Pillow's own resize arithmetic
    preset = DinoPreset()
    for data, seed in ((DEMO, 0), (SMOOTH, 1), (render_demo_image(8), 3)):
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
        boxes, flips = preset.plan(image.size[1], image.size[0], np.random.default_rng(seed))
        out = preset.worker(_sample(data), np.random.default_rng(seed))
        views = [*out["global_crops"], *out["local_crops"]]
        for view, box, size, flip in zip(views, boxes, [224, 224] + [96] * 8, flips):
            assert np.array_equal(view, _reference_view(data, box, size, bool(flip))), box


def _box_stats(boxes, height, width):
    boxes = np.asarray(boxes, dtype=float)
    return boxes[:, 2] * boxes[:, 3] / (height * width), boxes[:, 3] / boxes[:, 2]


@pytest.mark.parametrize("height, width", [(350, 400), (500, 90)])
def test_crop_boxes_distributed_as_torchvision(height, width):
    preset = DinoPreset()
    rng = np.random.default_rng(11)
    ours_global, ours_local, flips = [], [], []
    for _ in range(1500):
        boxes, flip = preset.plan(height, width, rng)
        ours_global += boxes[:2]
        ours_local += boxes[2:]
        flips.append(flip)
    torch.manual_seed(0)
    image = torch.empty(3, height, width)
    theirs_global = [
        RandomResizedCrop.get_params(image, [0.32, 1.0], [3 / 4, 4 / 3]) for _ in range(3000)
    ]
    theirs_local = [
        RandomResizedCrop.get_params(image, [0.05, 0.32], [3 / 4, 4 / 3]) for _ in range(3000)
    ]
    for ours, theirs in ((ours_global, theirs_global), (ours_local, theirs_local)):
        ours_area, ours_aspect = _box_stats(ours, height, width)
        their_area, their_aspect = _box_stats(theirs, height, width)
        assert ks_2samp(ours_area, their_area).pvalue > 0.01
        assert ks_2samp(ours_aspect, their_aspect).pvalue > 0.01
        tops = np.asarray(ours)[:, 0] / np.maximum(1, height - np.asarray(ours)[:, 2])
        assert (
            ks_2samp(
                tops, np.asarray(theirs)[:, 0] / np.maximum(1, height - np.asarray(theirs)[:, 2])
            ).pvalue
            > 0.01
        )
    flips = np.concatenate(flips)
    assert binomtest(int(flips.sum()), flips.size, 0.5).pvalue > 1e-3


@pytest.mark.parametrize(
    "blur, rates",
    [("dinov2", (0.0, 0.9, 0.5)), ("documented", (1.0, 0.1, 0.5))],
)
def test_op_application_rates(blur, rates):
    preset = DinoPreset(blur=blur, local_crops_number=2)
    rng = np.random.default_rng(3)
    draws = [preset.draw_params(rng) for _ in range(2000)]
    expected = {
        "global_1": {"jitter": 0.8, "grayscale": 0.2, "blur": rates[0], "solarize": 0.0},
        "global_2": {"jitter": 0.8, "grayscale": 0.2, "blur": rates[1], "solarize": 0.2},
        "local": {"jitter": 0.8, "grayscale": 0.2, "blur": rates[2], "solarize": 0.0},
    }
    for kind, ops in expected.items():
        for op, rate in ops.items():
            hits = np.concatenate([np.ravel(d[kind][op]) for d in draws])
            if rate in (0.0, 1.0):
                assert hits.mean() == rate, (kind, op)
            else:
                assert binomtest(int(hits.sum()), hits.size, rate).pvalue > 1e-3, (kind, op)
        orders = np.concatenate([d[kind]["order"].reshape(-1, 4) for d in draws])
        assert (np.sort(orders, axis=1) == np.arange(4)).all()
        first = np.bincount(orders[:, 0], minlength=4)
        assert all(binomtest(int(n), len(orders), 0.25).pvalue > 1e-3 for n in first)


def test_mask_rate_and_sizes():
    preset = DinoPreset(local_crops_number=0, global_crops_size=64, patch_size=4)  # 16 x 16
    data = encode(smooth_rgb(64, 64))
    rng = np.random.default_rng(4)
    masks = []
    for _ in range(300):
        out = preset.worker({"image": data, "label": 0}, rng)
        masks.append(out["masks"])
        assert out["mask_upperbound"] == int(out["masks"].any((1, 2)).sum()) * 128
    counts = np.stack(masks).reshape(-1, 256).sum(1)
    masked = counts > 0
    assert binomtest(int(masked.sum()), masked.size, 0.5).pvalue > 1e-3
    assert counts[masked].max() <= 128 and counts[masked].min() >= 4
    assert (
        ks_2samp(counts[masked] / 256, np.random.default_rng(0).uniform(0.1, 0.5, 2000)).pvalue
        > 1e-3
    )


# --- image kinds --------------------------------------------------------------------------------


def _kinds() -> dict[str, bytes]:
    exif = Image.Exif()
    exif[0x0112] = 6
    return {
        "gray": encode(smooth_rgb(200, 260).convert("L")),
        "cmyk": encode(smooth_rgb(200, 260).convert("CMYK"), quality=95),
        "png": encode(smooth_rgb(200, 260), "PNG"),
        "exif": encode(smooth_rgb(200, 260), exif=exif.tobytes(), quality=90),
        "small": encode(smooth_rgb(20, 30)),
        "one_pixel": encode(smooth_rgb(1, 1), "PNG"),
    }


@pytest.mark.parametrize("kind", list(_kinds()))
def test_image_kinds(kind):
    data = _kinds()[kind]
    preset = DinoPreset(local_crops_number=2)
    out = preset.worker(_sample(data, kind), np.random.default_rng(0))
    assert out["global_crops"].shape == (2, 3, 224, 224)
    assert out["local_crops"].shape == (2, 3, 96, 96)
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    width, height = image.size
    boxes, flips = preset.plan(height, width, np.random.default_rng(0))
    views = [*out["global_crops"], *out["local_crops"]]
    for view, box, size, flip in zip(views, boxes, [224, 224, 96, 96], flips):
        diff = np.abs(view.astype(int) - _reference_view(data, box, size, bool(flip)))
        assert diff.mean() < 0.6, (kind, box, diff.mean())
    if kind == "gray":
        assert (out["global_crops"][:, 0] == out["global_crops"][:, 1]).all()
    if kind == "exif":
        assert (height, width) == (260, 200)


def test_reduced_scale_decode_for_large_image():
    data = encode(smooth_rgb(1600, 1800), quality=90)
    preset = DinoPreset(local_crops_scale=(0.3, 0.32), local_crops_number=2)
    out = preset.worker(_sample(data), np.random.default_rng(0))
    boxes, flips = preset.plan(1600, 1800, np.random.default_rng(0))
    for view, box, size, flip in zip(
        [*out["global_crops"], *out["local_crops"]], boxes, [224, 224, 96, 96], flips
    ):
        diff = np.abs(view.astype(int) - _reference_view(data, box, size, bool(flip)))
        assert diff.mean() < 1.5, (box, diff.mean())


# --- bad images ---------------------------------------------------------------------------------


def _zero_width_jpeg() -> bytes:
    data = bytearray(encode(smooth_rgb(16, 16)))
    sof = data.index(b"\xff\xc0")
    data[sof + 7 : sof + 9] = b"\x00\x00"  # width
    return bytes(data)


BAD = {
    "corrupt": (b"this is not an image", "not an image"),
    "truncated": (DEMO[: len(DEMO) // 2], "corrupt JPEG"),
    "header_cut": (DEMO[:300], "truncated JPEG"),
    "zero_pixels": (_zero_width_jpeg(), "zero pixels"),
    "huge": (DEMO, "more than the limit of 1000"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_images_raise_with_key_or_skip(name):
    data, problem = BAD[name]
    limit = 1000 if name == "huge" else 10**8
    preset = DinoPreset(max_pixels=limit)
    with pytest.raises(ImageDecodeError, match=problem) as caught:
        preset.worker(_sample(data, f"bad_{name}"), np.random.default_rng(0))
    assert caught.value.key == f"bad_{name}"
    assert f"bad_{name}" in str(caught.value)
    skipping = DinoPreset(max_pixels=limit, on_bad_image="skip")
    assert skipping.worker(_sample(data, name), np.random.default_rng(0)) is SKIPPED


def test_missing_fields_and_bad_labels():
    preset = DinoPreset()
    with pytest.raises(MissingFieldError, match="sample 'a' has no field 'image'"):
        preset.worker({"key": "a", "label": 1}, np.random.default_rng(0))
    with pytest.raises(MissingFieldError, match="no field 'label'"):
        preset.worker({"key": "a", "image": DEMO}, np.random.default_rng(0))
    with pytest.raises(LabelError, match="sample 'a': label field 'label' must be an int"):
        preset.worker({"key": "a", "image": DEMO, "label": "cat"}, np.random.default_rng(0))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"global_crops_scale": (0.5, 0.2)}, "global_crops_scale"),
        ({"local_crops_scale": "x"}, "local_crops_scale"),
        ({"local_crops_number": -1}, "local_crops_number"),
        ({"global_crops_size": 0}, "global_crops_size"),
        ({"patch_size": 500}, "patch_size"),
        ({"blur": "never"}, "blur must be"),
        ({"mask_ratio_tuple": (0.6, 0.2)}, "mask_ratio_tuple"),
        ({"mask_probability": 1.5}, "mask_probability"),
        ({"masks": "yes"}, "masks must be"),
        ({"max_pixels": 0}, "max_pixels"),
        ({"on_bad_image": "ignore"}, "on_bad_image"),
        ({"std": (0.2, 0.0, 0.2)}, "std must be positive"),
        ({"mean": (0.1, 0.2)}, "mean must be 3"),
        ({"dtype": torch.int64}, "dtype must be a floating"),
        ({"image_field": 3}, "image_field"),
    ],
)
def test_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DinoPreset(**kwargs)


# --- colour in the workers (the CPU path) ---------------------------------------------------


def test_colour_in_workers_matches_colour_on_the_device():
    """Same generator -> same boxes, flips, parameters and masks; the uint8 OpenCV colour ops
    (vision/colour_cpu.py, PIL's integer arithmetic) land within a few levels of the float ops:
    mean absolute difference under 2.5 levels per view kind (hue is the inexact op)."""
    datas = [DEMO, SMOOTH, render_demo_image(11), render_demo_image(12)]
    on_device = DinoPreset(colour="device", blur="documented")
    in_workers = DinoPreset(colour="workers", blur="documented")
    reference = on_device.device(_batch(on_device, datas, seed=3))
    batch = _batch(in_workers, datas, seed=3)
    out = in_workers.device(batch)
    assert set(out) == set(reference)
    assert torch.equal(out["collated_masks"], reference["collated_masks"])
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    for key in ("collated_global_crops", "collated_local_crops"):
        assert out[key].shape == reference[key].shape and out[key].dtype == reference[key].dtype
        levels = ((out[key] - reference[key]) * std * 255).abs()
        assert float(levels.mean()) < 2.5, (key, float(levels.mean()))
    # the workers coloured the views (still uint8), so they differ from the raw crops
    assert batch["global_crops"].dtype == torch.uint8
    raw = DinoPreset(colour="device")
    plain = raw.worker(_sample(DEMO), np.random.default_rng([3, 0]))
    assert batch["global_crops"][0].shape == plain["global_crops"].shape
    assert not np.array_equal(batch["global_crops"][0].numpy(), plain["global_crops"])
    # the preset's own collation lays the views out crop-major and normalises them there: the
    # device step then only casts, and the result equals the default collation's exactly
    outs = [
        in_workers.worker(_sample(d, f"img_{i}", i), np.random.default_rng([3, i]))
        for i, d in enumerate(datas)
    ]
    collated = to_torch(in_workers.collate(outs))
    assert collated["collated_global_crops"].shape == (8, 3, 224, 224)
    assert collated["collated_local_crops"].shape == (32, 3, 96, 96)
    assert "global_crops" not in collated and "photometric" not in collated
    fast = in_workers.device(collated)
    assert set(fast) == set(out)
    for key, value in out.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(fast[key], value), key
        else:
            assert fast[key] == value, key
    half = dataclasses.replace(in_workers, dtype=torch.half).device(collated)
    assert half["collated_local_crops"].dtype == torch.half


def test_preset_collate_without_colour_in_workers_is_the_default_collation():
    preset = DinoPreset(colour="device", local_crops_number=2)
    outs = [
        preset.worker(_sample(d), np.random.default_rng(i)) for i, d in enumerate([DEMO, SMOOTH])
    ]
    collated = preset.collate(outs)
    expected = default_collate(outs)
    assert set(collated) == set(expected)
    assert np.array_equal(collated["global_crops"], expected["global_crops"])
    assert np.array_equal(collated["masks"], expected["masks"])


def test_preset_collate_without_local_crops():
    preset = DinoPreset(colour="workers", local_crops_number=0)
    outs = [preset.worker(_sample(DEMO), np.random.default_rng(i)) for i in range(3)]
    out = preset.device(to_torch(preset.collate(outs)))
    assert out["collated_global_crops"].shape == (6, 3, 224, 224)
    assert out["collated_local_crops"].shape == (0,)


def test_loader_resolves_auto_colour_by_device():
    preset = DinoPreset()
    assert preset.colour == "auto"
    assert preset.for_device(None).colour == "workers"
    assert preset.for_device("cpu").colour == "workers"
    assert preset.for_device(torch.device("cuda", 0)).colour == "device"
    assert DinoPreset(colour="device").for_device("cpu").colour == "device"
    with pytest.raises(ConfigError, match="colour must be one of"):
        DinoPreset(colour="gpu")


def test_worker_cuts_into_given_arrays_and_checks_them():
    preset = DinoPreset(local_crops_number=2, colour="device", masks=False)
    sample = _sample(render_demo_image(4))
    expected = preset.worker(sample, np.random.default_rng(3))
    out = {
        "global_crops": np.zeros((2, 3, 224, 224), np.uint8),
        "local_crops": np.zeros((2, 3, 96, 96), np.uint8),
    }
    got = preset.worker(sample, np.random.default_rng(3), out=out)
    assert got["global_crops"] is out["global_crops"] and got["local_crops"] is out["local_crops"]
    for name in ("global_crops", "local_crops"):
        assert np.array_equal(got[name], expected[name])
    assert DinoPreset(colour="workers").in_place_fields() == {}
    bad = dict(out, local_crops=np.zeros((3, 3, 96, 96), np.uint8))
    with pytest.raises(ConfigError, match=r"out\['local_crops'\] must be a uint8 array of shape"):
        preset.worker(sample, np.random.default_rng(3), out=bad)
    with pytest.raises(ConfigError, match=r"out\['global_crops'\].*got NoneType"):
        preset.worker(sample, np.random.default_rng(3), out={})
