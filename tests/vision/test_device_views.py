"""The worker side of the presets' device modes: same randomness as the exact path, what ships.

For fixed seeds the device modes draw the very boxes, flips, colour parameters and masks of the
exact (``resize="cpu"``) path, in the same order (the generators end in the same state). The
distribution checks of test_dino (crop geometry against torchvision by two-sample KS tests,
p > 0.01; flip and mask rates by binomial tests, p > 1e-3) run here on what the device-mode
workers ship.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import binomtest, ks_2samp
from torchvision.transforms import RandomResizedCrop

from shardstream.engine import SKIPPED
from shardstream.engine.scratch import FRESH, BatchBuffers
from shardstream.errors import ConfigError, DeviceUnavailableError, ImageDecodeError
from shardstream.sets.demo import render_demo_image
from shardstream.vision import device_views
from shardstream.vision.crops import rrc_box
from shardstream.vision.decode import decode_image
from shardstream.vision.device_planes import planes_to_rgb
from shardstream.vision.device_views import (
    KIND_JPEG,
    KIND_PIXELS,
    KIND_PLANES,
    check_decode_device,
    check_modes,
    collate_shipped,
    draw_crop_boxes,
    ship_encoded,
    ship_region,
)
from shardstream.vision.dino import DinoPreset
from shardstream.vision.supervised import SupervisedPreset

from ..contracts.images import encode, smooth_rgb

DEMO = [render_demo_image(i) for i in range(4)]


def _dino(**kwargs) -> DinoPreset:
    with device_views._cpu_decoder_standin():
        return DinoPreset(**kwargs)


def _supervised(**kwargs) -> SupervisedPreset:
    with device_views._cpu_decoder_standin():
        return SupervisedPreset(**kwargs)


def _check_boxes(out: dict, data: bytes, decode: str, boxes: list) -> None:
    """The shipped boxes are the planned ones: as they are with the bytes, or relative to the
    shipped region. DINO's crops span most of the image's width, so that region is the band of
    whole rows from the boxes' top to their bottom (decoded straight into the shipped array)."""
    planned = np.asarray(boxes)
    if decode == "device":
        np.testing.assert_array_equal(out["boxes"], planned)
        assert out["payload"].tobytes() == data
        return
    top, bottom = planned[:, 0].min(), (planned[:, 0] + planned[:, 2]).max()
    # the demo JPEGs are 4:2:0: the band ships as libjpeg's raw planes, which the device
    # upsamples and converts to the very pixels of the exact path's decode
    assert out["payload_kind"] == KIND_PLANES and out["payload"].ndim == 1
    pixels = shipped_pixels(out)
    assert (planned[:, 1] + planned[:, 3]).max() - planned[:, 1].min() >= 0.6 * pixels.shape[1]
    np.testing.assert_array_equal(out["boxes"], planned - np.array([top, 0, 0, 0]))
    np.testing.assert_array_equal(pixels, decode_image(data)[top:bottom])


def shipped_pixels(out: dict) -> np.ndarray:
    """The RGB pixels of one worker output's payload (planes converted as the device does)."""
    if out.get("payload_kind", KIND_PIXELS) != KIND_PLANES:
        return out["payload"]
    layout = torch.from_numpy(out["payload_layout"][None])
    (rgb,) = planes_to_rgb(torch.from_numpy(np.ascontiguousarray(out["payload"])), [0], layout)
    return rgb.numpy()


@pytest.mark.parametrize("decode", ["cpu", "device"])
@pytest.mark.parametrize("seed", [0, 7])
def test_dino_device_modes_draw_the_exact_paths_randomness(decode, seed):
    exact = DinoPreset(colour="device")
    shipped = _dino(resize="device", decode=decode)
    for index, data in enumerate(DEMO[:2]):
        sample = {"key": f"k{index}", "image": data, "label": index}
        rng_exact = np.random.default_rng([seed, index])
        rng_device = np.random.default_rng([seed, index])
        want = exact.worker(dict(sample), rng_exact)
        got = shipped.worker(dict(sample), rng_device)
        # the same draws, in the same order: the generators end in the same state
        assert rng_exact.integers(2**62) == rng_device.integers(2**62)
        height, width = decode_image(data).shape[:2]
        boxes, flips = exact.plan(height, width, np.random.default_rng([seed, index]))
        _check_boxes(got, data, decode, boxes)
        np.testing.assert_array_equal(got["flips"], flips)
        for kind in ("global_1", "global_2", "local"):
            for key, value in want["photometric"][kind].items():
                np.testing.assert_array_equal(got["photometric"][kind][key], value)
        np.testing.assert_array_equal(got["masks"], want["masks"])
        assert got["mask_upperbound"] == want["mask_upperbound"]
        assert got["label"] == index
        assert "global_crops" not in got and got["payload"].dtype == np.uint8
        expected_kind = KIND_JPEG if decode == "device" else KIND_PLANES
        assert got.get("payload_kind", KIND_PIXELS) == expected_kind


@pytest.mark.parametrize("decode", ["cpu", "device"])
def test_supervised_device_modes_draw_the_exact_paths_box_and_flip(decode):
    exact = SupervisedPreset(normalize_in="device")
    shipped = _supervised(resize="device", decode=decode)
    for index, data in enumerate(DEMO):
        rng_exact, rng_device = (np.random.default_rng([3, index]) for _ in range(2))
        exact.worker({"image": data, "label": 1}, rng_exact)
        got = shipped.worker({"image": data, "label": 1}, rng_device)
        assert rng_exact.integers(2**62) == rng_device.integers(2**62)
        height, width = decode_image(data).shape[:2]
        box, flip = exact.plan(height, width, np.random.default_rng([3, index]))
        if decode == "device":
            assert got["boxes"].tolist() == [list(box)]
            assert got["payload"].tobytes() == data
        else:  # only the box is decoded: the region is the box
            assert got["boxes"].tolist() == [[0, 0, box[2], box[3]]]
            top, left, h, w = box
            np.testing.assert_array_equal(
                got["payload"], decode_image(data)[top : top + h, left : left + w]
            )
        assert got["flips"].tolist() == [flip] and got["label"] == 1


def test_ship_region_at_a_reduced_scale_ships_the_exact_paths_fractional_boxes():
    data = encode(smooth_rgb(1600, 1800), quality=90)
    boxes = [(100, 200, 900, 1000), (802, 903, 697, 637)]
    pixels, relative = ship_region(data, 1600, 1800, boxes, [(224, 224), (96, 96)], max_pixels=None)
    # every box is at least 4x its output: decoded at 1/4 (choose_scale); the union reads rows
    # 25-375 and columns 50-385 of the 400 x 450 reduced image
    assert pixels.shape[:2] == (350, 335)
    assert relative.dtype == np.float64
    assert relative.tolist() == [[0, 0, 225, 250], [175.5, 175.75, 174.25, 159.25]]
    np.testing.assert_array_equal(pixels, decode_image(data, scale=4)[25:375, 50:385])
    full_size, relative = ship_region(
        data, 1600, 1800, [(10, 20, 300, 300)], [(224, 224)], max_pixels=None
    )
    assert relative.tolist() == [[0, 0, 300, 300]] and full_size.shape == (300, 300, 3)
    # other formats decode at full size whatever the scale: the boxes stay whole pixels
    png = encode(smooth_rgb(500, 520), "PNG")
    pixels, relative = ship_region(png, 500, 520, [(40, 60, 400, 420)], [(96, 96)], max_pixels=None)
    assert relative.tolist() == [[0, 0, 400, 420]] and pixels.shape == (400, 420, 3)


def test_ship_encoded_ships_bytes_or_pixels():
    jpeg = DEMO[0]
    out = ship_encoded(jpeg, [(1, 2, 3, 4)], max_pixels=None)
    assert out["payload_kind"] == KIND_JPEG and out["payload"].tobytes() == jpeg
    assert out["boxes"].dtype == np.float64 and out["boxes"].tolist() == [[1, 2, 3, 4]]
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = encode(smooth_rgb(40, 60), exif=exif.tobytes(), quality=90)
    assert ship_encoded(rotated, [(0, 0, 1, 1)], max_pixels=None)["payload_orientation"] == 6
    for other in (
        encode(smooth_rgb(40, 60), "PNG"),
        encode(smooth_rgb(40, 60).convert("CMYK"), quality=95),
    ):
        out = ship_encoded(other, [(0, 0, 1, 1)], max_pixels=None)
        assert out["payload_kind"] == KIND_PIXELS
        np.testing.assert_array_equal(out["payload"], decode_image(other))
    with pytest.raises(ImageDecodeError, match="more than the limit of 1000"):
        ship_encoded(jpeg, [(0, 0, 1, 1)], max_pixels=1000)
    with pytest.raises(ImageDecodeError, match="corrupt JPEG"):  # truncated: decoded here
        ship_encoded(jpeg[: len(jpeg) // 2], [(0, 0, 1, 1)], max_pixels=None)


def test_truncated_jpeg_is_skipped_in_the_worker_with_decode_on_the_device():
    preset = _dino(decode="device", on_bad_image="skip")
    assert preset.worker({"image": DEMO[0][:5000]}, np.random.default_rng(0)) is SKIPPED
    with pytest.raises(ImageDecodeError) as caught:
        _dino(decode="device").worker(
            {"key": "bad", "image": DEMO[0][:5000]}, np.random.default_rng(0)
        )
    assert caught.value.key == "bad"


def test_collate_shipped_lays_payloads_end_to_end():
    a = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    b = np.frombuffer(b"\xff\xd8abc", np.uint8)
    samples = [
        {"payload": a, "boxes": np.zeros((1, 4), np.int64), "label": np.int64(1)},
        {
            "payload": b,
            "payload_kind": np.int8(KIND_JPEG),
            "payload_orientation": np.int8(6),
            "boxes": np.ones((1, 4), np.int64),
            "label": np.int64(2),
        },
    ]
    batch = collate_shipped(samples)
    # each payload from a multiple of 64 bytes, zeros between
    assert batch["payload"].tobytes() == a.tobytes() + bytes(46) + b.tobytes() + bytes(59)
    assert batch["payload_offsets"].tolist() == [0, 64]
    assert batch["payload_shapes"].tolist() == [[2, 3, 3], [5, 0, 0]]
    assert batch["payload_kind"].tolist() == [KIND_PIXELS, KIND_JPEG]
    assert batch["payload_orientation"].tolist() == [1, 6]
    assert batch["boxes"].shape == (2, 1, 4) and batch["label"].tolist() == [1, 2]
    strided = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)[::-1].swapaxes(0, 1)
    out = collate_shipped([{"payload": strided}])
    np.testing.assert_array_equal(out["payload"][:48].reshape(4, 4, 3), strided)
    with pytest.raises(ConfigError, match="sample 0 of the batch has no uint8 'payload'"):
        collate_shipped([{"payload": np.zeros(3, np.float32)}])


def test_workers_decode_into_the_batch_slot_and_collate_without_a_copy():
    """In a loader worker (reusing buffers with an arena open over the batch's slot) the band
    of rows is decoded straight into the slot, and the collated ``payload`` is a view of it:
    the same bytes as the copying collation, which runs everywhere else."""
    preset = _dino(resize="device")
    samples = [{"image": data, "label": i} for i, data in enumerate(DEMO)]
    fresh = [preset.worker(dict(s), np.random.default_rng(i)) for i, s in enumerate(samples)]
    want = preset.collate(fresh)
    buffers = BatchBuffers(reuse=True)
    slot = np.full(1 << 22, 7, np.uint8)
    try:
        with buffers.arena(slot):
            preset.collate(fresh, buffers)  # the worker's first batch: copied, buffers noted
        with buffers.arena(slot) as arena:
            outs = [preset.worker(dict(s), np.random.default_rng(i)) for i, s in enumerate(samples)]
            got = preset.collate(outs, buffers)
            assert 0 < arena.used <= slot.size
        assert np.shares_memory(got["payload"], slot)
        assert got["payload"].ctypes.data == outs[0]["payload"].ctypes.data
        assert set(got) == set(want)
        for key, value in want.items():
            if key != "photometric":
                np.testing.assert_array_equal(got[key], value)
        # out of order in the slot (threads), or not in it: copied into the canonical layout
        swapped = preset.collate([outs[1], outs[0]], FRESH)
        assert not np.shares_memory(swapped["payload"], slot)
        second = -(-outs[1]["payload"].size // 64) * 64
        assert swapped["payload_offsets"].tolist() == [0, second]
        first, other = outs[1]["payload"], outs[0]["payload"]
        assert swapped["payload"][: first.size].tobytes() == first.tobytes()
        assert swapped["payload"][second : second + other.size].tobytes() == other.tobytes()
    finally:
        device_views._slot_payloads.buffers = None
    with buffers.arena(None):  # no arena: new arrays, not the slot
        out = preset.worker(dict(samples[0]), np.random.default_rng(0))
    assert not np.shares_memory(out["payload"], slot)


@pytest.mark.parametrize("bit_generator", [np.random.PCG64, np.random.Philox, np.random.MT19937])
def test_crop_boxes_drawn_in_c_are_the_python_draws(bit_generator):
    """The C planner draws what crops.rrc_box and rng.random(n) < 0.5 draw, and leaves the
    generator in the same state: every branch (accepted, rejected attempts, both fallbacks of
    extreme aspect ratios, 1-pixel images, ranges of one value)."""
    scales = np.array([(0.32, 1.0)] * 2 + [(0.05, 0.32)] * 8 + [(0.9, 1.0)], np.float64)
    sizes = np.random.default_rng(5)
    dims = [(1, 1), (1, 7000), (7000, 1), (2, 3), (3, 2), (16, 16), (224, 224)]
    dims += [tuple(int(v) for v in sizes.integers(1, 2500, 2)) for _ in range(120)]
    for case, (height, width) in enumerate(dims):
        ours = np.random.Generator(bit_generator(case))
        theirs = np.random.Generator(bit_generator(case))
        drawn = draw_crop_boxes(ours, height, width, scales, (3 / 4, 4 / 3))
        assert drawn is not None
        boxes, flips = drawn
        want = [rrc_box(height, width, lo, hi, 3 / 4, 4 / 3, theirs) for lo, hi in scales]
        assert boxes == want, (height, width)
        assert all(type(v) is int for box in boxes for v in box)
        np.testing.assert_array_equal(flips, theirs.random(len(scales)) < 0.5)
        assert str(ours.bit_generator.state) == str(theirs.bit_generator.state)
        # 32-bit draws too (a half-used 64-bit word the generator keeps for the next one)
        assert ours.integers(0, 5, 7).tolist() == theirs.integers(0, 5, 7).tolist()
    # not a numpy Generator, or sides past the C range: the caller draws in Python
    assert draw_crop_boxes(np.random.RandomState(0), 10, 10, scales, (0.75, 1.25)) is None
    assert draw_crop_boxes(np.random.default_rng(0), 1 << 31, 10, scales, (0.75, 1.25)) is None


def test_mode_settings_are_checked():
    assert check_modes("X", "cpu", "cpu") == "cpu"
    assert check_modes("X", "device", "cpu") == "device"
    for bad in ("gpu", None, 1):
        with pytest.raises(ConfigError, match="resize must be 'cpu' or 'device'"):
            DinoPreset(resize=bad)
        with pytest.raises(ConfigError, match="decode must be 'cpu' or 'device'"):
            SupervisedPreset(decode=bad)
    with pytest.raises(ConfigError, match="colour='workers' needs resize='cpu'"):
        DinoPreset(resize="device", colour="workers")
    with pytest.raises(ConfigError, match="normalize_in='workers' needs resize='cpu'"):
        SupervisedPreset(resize="device", normalize_in="workers")
    assert _dino(decode="device").resize == "device"  # decoding on the device resizes there
    assert _supervised(decode="device").host_fields == ("payload",)
    assert DinoPreset(resize="device").host_fields == ()
    # the views are made on the device even for CPU batches: colour and normalisation follow
    assert DinoPreset(resize="device").for_device("cpu").colour == "device"
    assert SupervisedPreset(resize="device").for_device(None).normalize_in == "device"
    assert DinoPreset(resize="device").in_place_fields() == {}


@pytest.mark.skipif(torch.cuda.is_available(), reason="refused only where there is no CUDA")
def test_decode_on_the_device_is_refused_without_cuda():
    for make in (DinoPreset, SupervisedPreset):
        with pytest.raises(DeviceUnavailableError, match=r"decode='device'.*no CUDA device"):
            make(decode="device")


def test_decode_on_the_device_needs_the_batches_on_cuda(tmp_path):
    check_decode_device("X", "cpu", None)  # decoding in the workers: anywhere
    check_decode_device("X", "device", "cuda:1")
    for device in (None, "cpu", torch.device("cpu")):
        with pytest.raises(DeviceUnavailableError, match=r"X\(decode='device'\).*device='cuda'"):
            check_decode_device("X", "device", device)
    from shardstream import FileWriter, Loader

    with FileWriter(tmp_path / "one.msgpack") as writer:
        writer.write({"key": "a", "image": DEMO[0], "label": 0})
    for preset in (_dino(decode="device"), _supervised(decode="device")):
        with pytest.raises(DeviceUnavailableError, match="Loader.preset"):
            Loader(tmp_path / "one.msgpack").batch(1).preset(preset, device="cpu")
        with device_views._cpu_decoder_standin():  # the tests' stand-in: allowed
            Loader(tmp_path / "one.msgpack").batch(1).preset(preset, device="cpu")


# --- the exact path's distribution checks, on what the device-mode workers ship --------------


def _box_stats(boxes, height, width):
    boxes = np.asarray(boxes, dtype=float)
    return boxes[:, 2] * boxes[:, 3] / (height * width), boxes[:, 3] / boxes[:, 2]


def test_shipped_crop_boxes_and_flips_distributed_as_torchvision():
    height, width = 350, 400
    data = encode(smooth_rgb(height, width), quality=80)
    preset = _dino(decode="device", masks=False, label_field=None)
    rng = np.random.default_rng(11)
    outs = [preset.worker({"image": data}, rng) for _ in range(1200)]
    boxes = np.stack([out["boxes"] for out in outs])
    flips = np.concatenate([out["flips"] for out in outs])
    image = torch.empty(3, height, width)
    torch.manual_seed(0)
    for ours, scale in ((boxes[:, :2], [0.32, 1.0]), (boxes[:, 2:], [0.05, 0.32])):
        ours = ours.reshape(-1, 4)
        theirs = np.array(
            [RandomResizedCrop.get_params(image, scale, [3 / 4, 4 / 3]) for _ in range(3000)]
        )
        for a, b in zip(_box_stats(ours, height, width), _box_stats(theirs, height, width)):
            assert ks_2samp(a, b).pvalue > 0.01
        tops = ours[:, 0] / np.maximum(1, height - ours[:, 2])
        their_tops = theirs[:, 0] / np.maximum(1, height - theirs[:, 2])
        assert ks_2samp(tops, their_tops).pvalue > 0.01
    assert binomtest(int(flips.sum()), flips.size, 0.5).pvalue > 1e-3


def test_shipped_mask_rate_and_sizes():
    preset = DinoPreset(
        resize="device", local_crops_number=0, global_crops_size=64, patch_size=4
    )  # 16 x 16 patches
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
    uniform = np.random.default_rng(0).uniform(0.1, 0.5, 2000)
    assert ks_2samp(counts[masked] / 256, uniform).pvalue > 1e-3


def test_shipped_colour_parameters_are_the_exact_paths():
    exact, shipped = (
        DinoPreset(colour="device", masks=False),
        DinoPreset(resize="device", masks=False),
    )
    data = encode(smooth_rgb(120, 150), quality=80)
    for seed in range(20):
        want = exact.worker({"image": data, "label": 0}, np.random.default_rng(seed))
        got = shipped.worker({"image": data, "label": 0}, np.random.default_rng(seed))
        for kind, params in want["photometric"].items():
            for key, value in params.items():
                np.testing.assert_array_equal(got["photometric"][kind][key], value)
