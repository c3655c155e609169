"""The device side of the presets' device modes, run on the CPU (the CPU decoder standing in).

Pixel differences to the exact path (Pillow's fixed-point bicubic, rounded to uint8 between its
two passes, and clipped there) are measured per view size on the uint8 views before colour, over
the demo images (sharp synthetic shapes: bicubic overshoot that Pillow clips after its first pass
shows at their edges) and a smooth picture. Measured on 12 demo images (seed 0; these bounds
leave room):

=========  =====  =========  ===========  ===========
view       max    mean       > 1 level    > 2 levels
=========  =====  =========  ===========  ===========
224 x 224  18     0.25       1.2 %        0.6 %
96 x 96    15     0.20       0.8 %        0.3 %
=========  =====  =========  ===========  ===========

(28 further demo images: 18 / 0.23 and 14 / 0.20; the smooth picture: max 2, mean 0.11). The batched matrix-product resize (the CUDA path)
equals one ``interpolate(antialias=True)`` call per view to float rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional

from shardstream.engine.collate import to_torch
from shardstream.errors import DeviceUnavailableError, ImageDecodeError
from shardstream.sets.demo import render_demo_image
from shardstream.vision import device_views
from shardstream.vision.device_resize import (
    filter_weights,
    payload_images,
    resize_views,
    shipped_views,
)
from shardstream.vision.dino import DinoPreset
from shardstream.vision.supervised import SupervisedPreset

from ..contracts.images import encode, smooth_rgb

DEMO = [render_demo_image(i) for i in range(12)]
SMOOTH = encode(smooth_rgb(300, 340), quality=90)


def _standin(make, **kwargs):
    with device_views._cpu_decoder_standin():
        return make(**kwargs)


def _shipped_batch(preset, datas, seed=0):
    outs = [
        preset.worker({"key": f"k{i}", "image": d, "label": i}, np.random.default_rng([seed, i]))
        for i, d in enumerate(datas)
    ]
    return to_torch(preset.collate(outs))


def test_weights_are_torchs_antialiased_interpolate():
    generator = torch.Generator().manual_seed(0)
    for interpolation in ("bicubic", "bilinear"):
        for length, out in ((37, 11), (11, 37), (64, 64), (200, 96), (5, 1)):
            weights = filter_weights(torch.tensor([length]), out, length + 3, interpolation)
            assert weights.shape == (1, out, length + 3)
            assert torch.all(weights[0, :, length:] == 0)
            torch.testing.assert_close(weights.sum(-1), torch.ones(1, out))
            signal = torch.rand(length, generator=generator, dtype=torch.float64)
            ours = weights[0, :, :length].double() @ signal
            theirs = functional.interpolate(
                signal[None, None, None], size=(1, out), mode=interpolation, antialias=True
            )[0, 0, 0]
            torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
        flipped = filter_weights(
            torch.tensor([9, 9]), 4, 9, interpolation, torch.tensor([0, 1]).bool()
        )
        assert torch.equal(flipped[1], flipped[0].flip(0))


def test_batched_matmul_resize_equals_one_interpolate_per_view():
    generator = torch.Generator().manual_seed(1)
    images = [
        torch.randint(0, 256, (60, 70, 3), dtype=torch.uint8, generator=generator),
        torch.randint(0, 256, (45, 33, 3), dtype=torch.uint8, generator=generator)[:, :, :],
    ]
    boxes = torch.tensor(
        [
            [[0, 0, 60, 70], [5, 7, 20, 30], [10, 3, 8, 9]],
            [[3, 2, 40, 30], [0, 0, 45, 33], [1, 1, 5, 30]],
        ]
    )
    flips = torch.tensor([[False, True, False], [True, False, True]])
    sizes = [(24, 24), (16, 12), (16, 12)]
    for interpolation in ("bicubic", "bilinear"):
        per_view = resize_views(
            images, boxes, flips, sizes, interpolation=interpolation, method="interpolate"
        )
        batched = resize_views(
            images, boxes, flips, sizes, interpolation=interpolation, method="matmul"
        )
        for a, b, size in zip(per_view, batched, sizes):
            assert a.shape == b.shape == (2, 3, *size) and a.dtype == torch.uint8
            diff = (a.int() - b.int()).abs()
            assert diff.max() <= 1 and (diff > 0).float().mean() < 0.01  # a value at a half
        # each view is the crop through interpolate(antialias=True), rounded, mirrored if asked
        top, left, h, w = boxes[1, 0].tolist()
        crop = images[1][top : top + h, left : left + w].permute(2, 0, 1)[None].float()
        direct = functional.interpolate(crop, size=(24, 24), mode=interpolation, antialias=True)
        direct = direct[0].round().clamp(0, 255).to(torch.uint8).flip(-1)
        assert torch.equal(per_view[0][1], direct)


def test_chunked_gathers_give_the_same_views(monkeypatch):
    from shardstream.vision import device_resize

    generator = torch.Generator().manual_seed(2)
    images = [torch.randint(0, 256, (40, 50, 3), dtype=torch.uint8, generator=generator)] * 3
    boxes = torch.tensor([[[0.0, 0, 40, 50], [3.5, 2.25, 20.5, 30]]] * 3)
    flips = torch.tensor([[False, True], [True, False], [True, True]])
    sizes = [(16, 16), (8, 12)]
    whole = resize_views(images, boxes, flips, sizes, method="matmul")
    monkeypatch.setitem(device_resize._GATHER_BUDGET, "cpu", 1)  # one view per chunk
    for a, b in zip(whole, resize_views(images, boxes, flips, sizes, method="matmul")):
        assert torch.equal(a, b)


def _view_diffs(datas, seed=0):
    exact, shipped = DinoPreset(colour="device"), DinoPreset(resize="device")
    diffs = {224: [], 96: []}
    for index, data in enumerate(datas):
        want = exact.worker({"image": data, "label": 0}, np.random.default_rng([seed, index]))
        out = shipped.worker({"image": data, "label": 0}, np.random.default_rng([seed, index]))
        views = shipped_views(to_torch(shipped.collate([out])), shipped._sizes(), "bicubic")
        reference = [*want["global_crops"], *want["local_crops"]]
        for view, ref in zip(views, reference):
            size = view.shape[-1]
            diffs[size].append(np.abs(view[0].numpy().astype(int) - ref.astype(int)).ravel())
    return {size: np.concatenate(values) for size, values in diffs.items()}


def test_pixel_difference_to_the_exact_path_per_view_size():
    diffs = _view_diffs(DEMO)
    for size, (max_bound, mean_bound, over_one, over_two) in {
        224: (24, 0.35, 0.02, 0.008),
        96: (24, 0.30, 0.015, 0.006),
    }.items():
        diff = diffs[size]
        assert diff.max() <= max_bound, size
        assert diff.mean() < mean_bound, size
        assert (diff > 1).mean() < over_one and (diff > 2).mean() < over_two, size
    for size, diff in _view_diffs([SMOOTH] * 3, seed=2).items():
        assert diff.max() <= 2 and diff.mean() < 0.15, size


def test_reduced_scale_decode_resamples_the_exact_paths_fractional_boxes():
    data = encode(smooth_rgb(1600, 1800), quality=90)
    exact = DinoPreset(colour="device", local_crops_scale=(0.3, 0.32), local_crops_number=2)
    shipped = DinoPreset(resize="device", local_crops_scale=(0.3, 0.32), local_crops_number=2)
    for seed in range(2):
        want = exact.worker({"image": data, "label": 0}, np.random.default_rng(seed))
        out = shipped.worker({"image": data, "label": 0}, np.random.default_rng(seed))
        assert out["payload"].shape[0] < 800  # decoded at a reduced scale
        assert (out["boxes"] != np.round(out["boxes"])).any()  # fractional boxes
        batch = to_torch(shipped.collate([out]))
        for method in ("interpolate", "matmul"):
            images = payload_images(batch, torch.device("cpu"))
            views = resize_views(
                images, batch["boxes"], batch["flips"], shipped._sizes(), method=method
            )
            reference = [*want["global_crops"], *want["local_crops"]]
            for view, ref in zip(views, reference):
                diff = np.abs(view[0].numpy().astype(int) - ref.astype(int))
                assert diff.max() <= 4 and diff.mean() < 0.2, (seed, method, diff.mean())


def test_supervised_pixel_difference_to_the_exact_path():
    for interpolation in ("bilinear", "bicubic"):
        exact = SupervisedPreset(interpolation=interpolation, normalize_in="device")
        shipped = SupervisedPreset(interpolation=interpolation, resize="device")
        diffs = []
        for index, data in enumerate(DEMO[:6]):
            want = exact.worker({"image": data, "label": 0}, np.random.default_rng(index))
            batch = to_torch(
                shipped.collate(
                    [shipped.worker({"image": data, "label": 0}, np.random.default_rng(index))]
                )
            )
            (view,) = shipped_views(batch, [(224, 224)], interpolation)
            diffs.append(np.abs(view[0].numpy().astype(int) - want["image"].astype(int)).ravel())
        diff = np.concatenate(diffs)
        assert diff.max() <= 24 and diff.mean() < 0.35 and (diff > 2).mean() < 0.01, interpolation
        out = shipped.device(batch)
        assert out["image"].dtype == torch.float32 and out["image"].shape == (1, 3, 224, 224)
        assert sorted(out) == ["image", "label"]


def test_device_step_output_equals_the_exact_paths_keys_and_close_values():
    exact, shipped = DinoPreset(colour="device"), DinoPreset(resize="device")
    outs = [
        exact.worker({"image": d, "label": i}, np.random.default_rng([0, i]))
        for i, d in enumerate(DEMO[:3])
    ]
    want = exact.device(to_torch(exact.collate(outs)))
    got = shipped.device(_shipped_batch(shipped, DEMO[:3]))
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            assert got[key].shape == value.shape and got[key].dtype == value.dtype
            assert (got[key] - value).abs().mean() < 0.02, key  # normalised units
        elif isinstance(value, torch.Tensor):
            assert torch.equal(got[key], value), key
        else:
            assert got[key] == value, key


@pytest.mark.parametrize("make", [DinoPreset, SupervisedPreset])
def test_cpu_decoder_standin_gives_the_resize_on_device_output(make):
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = encode(smooth_rgb(200, 260), exif=exif.tobytes(), quality=90)
    png = encode(smooth_rgb(120, 150), "PNG")
    datas = [*DEMO[:3], rotated, png]
    resized = make(resize="device")
    decoded = _standin(make, decode="device")
    with device_views._cpu_decoder_standin():
        batch = _shipped_batch(decoded, datas)
        assert batch["payload_kind"].tolist() == [1, 1, 1, 1, 0]  # the PNG ships pixels
        got = decoded.device(batch)
    want = resized.device(_shipped_batch(resized, datas))
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            assert (got[key] - value).abs().max() < 1e-5, key
        elif isinstance(value, torch.Tensor):
            assert torch.equal(got[key], value), key


def test_decoding_on_the_cpu_is_refused_outside_the_standin():
    preset = _standin(DinoPreset, decode="device", local_crops_number=0)
    with device_views._cpu_decoder_standin():
        batch = _shipped_batch(preset, DEMO[:1])
    with pytest.raises(DeviceUnavailableError, match="needs the batch on a CUDA device"):
        payload_images(batch, torch.device("cpu"))


def test_a_jpeg_that_does_not_decode_fails_on_the_device_as_an_image_decode_error():
    data = bytearray(DEMO[0])
    table = data.index(b"\xff\xc4")
    data[table + 5 : table + 21] = b"\xff" * 16  # code counts no Huffman table can have
    preset = _standin(DinoPreset, decode="device", local_crops_number=0)
    with device_views._cpu_decoder_standin():
        batch = _shipped_batch(preset, [bytes(data)])
        assert batch["payload_kind"].tolist() == [device_views.KIND_JPEG]
        with pytest.raises(ImageDecodeError, match="did not decode.*Huffman"):
            preset.device(batch)


def _to(tree, device, keep=()):
    if isinstance(tree, torch.Tensor):
        return tree.to(device)
    if isinstance(tree, dict):
        return {k: v if k in keep else _to(v, device) for k, v in tree.items()}
    return tree


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device_modes_match_the_cpu_device_step():
    """On CUDA: shipped planes give the CPU's RGB bytes, the batched resize equals the CPU's
    per-view one to a level, and nvJPEG's decode (its own IDCT and chroma upsampling) stays
    within a level or two of libjpeg's."""
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = encode(smooth_rgb(200, 260), exif=exif.tobytes(), quality=90)
    datas = [*DEMO[:4], rotated, encode(smooth_rgb(120, 150), "PNG")]
    resized, decoded = DinoPreset(resize="device"), DinoPreset(decode="device")
    batch = _shipped_batch(resized, datas)
    # the demo JPEGs ship raw planes (upsampled and converted on the device: batched on CUDA,
    # per sample on the CPU, the same integer arithmetic), the rotated one and the PNG pixels
    assert batch["payload_kind"].tolist() == [2, 2, 2, 2, 0, 0]
    on_cuda = payload_images(_to(batch, "cuda"), torch.device("cuda"))
    for a, b in zip(payload_images(batch, torch.device("cpu")), on_cuda):
        assert b.device.type == "cuda" and torch.equal(a, b.cpu())
    sizes = resized._sizes()
    want = shipped_views(batch, sizes, "bicubic")
    got = shipped_views(_to(batch, "cuda"), sizes, "bicubic")
    for a, b in zip(want, got):
        assert b.device.type == "cuda"
        diff = (a.int() - b.cpu().int()).abs()
        assert diff.max() <= 1 and (diff > 0).float().mean() < 0.01
    encoded = _shipped_batch(decoded, datas)
    assert encoded["payload_kind"].tolist() == [1, 1, 1, 1, 1, 0]
    nvjpeg = shipped_views(_to(encoded, "cuda", keep=("payload",)), sizes, "bicubic")
    for a, b in zip(want, nvjpeg):
        diff = (a.int() - b.cpu().int()).abs().float()
        assert diff.mean() < 1.0, diff.mean()
    out = decoded.device(_to(encoded, "cuda", keep=("payload",)))
    reference = resized.device(batch)
    for key, value in reference.items():
        if isinstance(value, torch.Tensor):
            assert out[key].shape == value.shape and out[key].device.type == "cuda", key
