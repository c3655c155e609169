"""The presets' device modes through the loader: batches bit-identical for every worker layout,
resume exact, and the same batches as the presets' own steps (the CPU decoder standing in for
nvJPEG with ``decode="device"``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shardstream import FileWriter, Loader, MsgpackReader
from shardstream.order.samplers.seeds import sample_rng
from shardstream.sets.demo import render_demo_image
from shardstream.vision import device_views
from shardstream.vision.dino import DinoPreset
from shardstream.vision.supervised import SupervisedPreset

from ..contracts.images import encode, smooth_rgb

COUNT = 18


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    path = tmp_path_factory.mktemp("device_modes") / "demo.msgpack"
    with FileWriter(path) as writer:
        for i in range(COUNT):
            image = render_demo_image(i) if i % 5 else encode(smooth_rgb(90, 120), "PNG")
            writer.write({"key": f"img_{i:03d}", "image": image, "label": i % 3})
    return path


@pytest.fixture(autouse=True)
def standin():
    with device_views._cpu_decoder_standin():
        yield


def _dino(mode: str) -> DinoPreset:
    return DinoPreset(
        global_crops_size=64,
        local_crops_size=32,
        local_crops_number=3,
        patch_size=8,
        resize="device" if mode != "cpu" else "cpu",
        decode="device" if mode == "decode" else "cpu",
        colour="device",
    )


def _supervised(mode: str) -> SupervisedPreset:
    return SupervisedPreset(
        size=48,
        resize="device" if mode != "cpu" else "cpu",
        decode="device" if mode == "decode" else "cpu",
        normalize_in="device",
    )


def _loader(path, preset, workers):
    return (
        Loader(path, seed=5)
        .shuffle()
        .batch(6)
        .preset(preset, device="cpu")
        .pytorch(num_workers=workers)
    )


def _collect(loader, limit=None):
    out = []
    for batch in loader:
        out.append({k: v.clone() if torch.is_tensor(v) else v for k, v in batch.items()})
        if limit is not None and len(out) == limit:
            break
    return out


def _assert_same(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert sorted(a) == sorted(b)
        for key in a:
            if torch.is_tensor(a[key]):
                assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key
            else:
                assert a[key] == b[key], key


@pytest.mark.parametrize("make", [_dino, _supervised])
@pytest.mark.parametrize("mode", ["resize", "decode"])  # "cpu": tests/vision/test_presets_in_loader
def test_batches_are_bit_identical_for_every_worker_count(packed, make, mode):
    runs = []
    for workers in (0, 1, 2):
        loader = _loader(packed, make(mode), workers)
        try:
            runs.append(_collect(loader))
        finally:
            loader.close()
    assert len(runs[0]) == 3
    for run in runs[1:]:
        _assert_same(run, runs[0])


@pytest.mark.parametrize("make", [_dino, _supervised])
def test_device_modes_keep_the_exact_paths_draws_in_the_loader(packed, make):
    """Masks and labels (Dino) are the exact path's, and the views close to its views."""
    batches = {}
    for mode in ("cpu", "resize"):
        loader = _loader(packed, make(mode), 2)
        try:
            batches[mode] = _collect(loader, 2)
        finally:
            loader.close()
    for exact, device in zip(batches["cpu"], batches["resize"]):
        assert sorted(exact) == sorted(device)
        for key, value in exact.items():
            if torch.is_tensor(value) and value.is_floating_point():
                assert (value - device[key]).abs().mean() < 0.02, key  # ~0.017 is a level
            elif torch.is_tensor(value):
                assert torch.equal(value, device[key]), key
            else:
                assert value == device[key], key


@pytest.mark.parametrize("mode", ["resize", "decode"])
def test_resume_is_exact(packed, mode):
    whole = _loader(packed, _dino(mode), 0)
    try:
        expected = _collect(whole) + _collect(whole)  # two epochs
    finally:
        whole.close()
    first = _loader(packed, _dino(mode), 0)
    try:
        head = _collect(first, 2)
        state = first.state_dict()
    finally:
        first.close()
    resumed = _loader(packed, _dino(mode), 2)  # another worker layout too
    resumed.load_state_dict(state)
    try:
        tail = _collect(resumed) + _collect(resumed)
    finally:
        resumed.close()
    _assert_same(head + tail, expected)


def test_loader_batch_equals_the_presets_own_steps(packed):
    preset = _dino("decode")
    reader = MsgpackReader(packed)
    loader = Loader(reader, seed=5).batch(6).preset(preset, device="cpu").pytorch(num_workers=2)
    try:
        first = next(iter(loader))
    finally:
        loader.close()
    from shardstream.engine.collate import to_torch

    outs = [preset.worker({**reader.get(i), "index": i}, sample_rng(5, 0, i)) for i in range(6)]
    expected = preset.device(to_torch(preset.collate(outs)))
    for key, value in expected.items():
        if torch.is_tensor(value):
            assert torch.equal(first[key], value), key
        else:
            assert first[key] == value, key
    assert first["labels"].tolist() == [i % 3 for i in range(6)]
    assert np.asarray(first["index"]).tolist() == list(range(6))
