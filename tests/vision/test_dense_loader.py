"""The dense presets through the Loader: same batches for 0 and 2 workers, equal to the presets'
own steps on the samples' generators, and an exact resume from ``state_dict``."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from shardstream import FileWriter, Loader, MsgpackReader
from shardstream.order.samplers.seeds import sample_rng
from shardstream.sets.demo import render_demo_image
from shardstream.vision.dense import DenseEvalPreset, SegmentationPreset

COUNT = 20
TARGETS = {"label_image": "mask", "bb": "boxes"}


def _label_png(index: int, size: tuple[int, int]) -> bytes:
    rng = np.random.default_rng(index)
    labels = rng.integers(0, 21, (size[1] // 8 + 1, size[0] // 8 + 1), dtype=np.uint8)
    labels = np.kron(labels, np.ones((8, 8), np.uint8))[: size[1], : size[0]]
    image = Image.fromarray(labels, "P")
    image.putpalette(rng.integers(0, 256, 768).tolist())
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    path = tmp_path_factory.mktemp("dense") / "dense.msgpack"
    with FileWriter(path) as writer:
        for i in range(COUNT):
            image = render_demo_image(i)
            size = Image.open(io.BytesIO(image)).size
            boxes = [[1.5 * i, 2.0, 40.0 + i, 50.0], [10.0, 10.0, size[0] - 1.0, size[1] - 3.0]]
            writer.write(
                {
                    "key": f"img_{i:03d}",
                    "image": image,
                    "label_image": _label_png(i, size),
                    "bb": boxes,
                    "cls": [i, i + 1],
                }
            )
    return path


def _preset(**kwargs):
    return SegmentationPreset(
        size=(96, 128), targets=TARGETS, box_labels={"bb": "cls"}, max_objects=4, **kwargs
    )


def _loader(path, preset, workers):
    return (
        Loader(path, seed=11)
        .shuffle()
        .batch(6)
        .preset(preset, device="cpu")
        .pytorch(num_workers=workers, num_threads=1)
    )


def _copy(batch):
    return {k: v.clone() for k, v in batch.items()}


def _collect(loader, count=None):
    out = []
    for batch in loader:
        out.append(_copy(batch))
        if count is not None and len(out) == count:
            break
    return out


def _assert_same(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert list(a) == list(b)
        for key in a:
            assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("make", [_preset, lambda: _preset(mode="scale", base_size=200)])
def test_same_batches_for_zero_and_two_workers(packed, make):
    loaders = [_loader(packed, make(), workers) for workers in (0, 2)]
    try:
        reference, two = (_collect(loader) for loader in loaders)
    finally:
        for loader in loaders:
            loader.close()
    _assert_same(two, reference)
    first = reference[0]
    assert first["image"].shape == (6, 3, 96, 128) and first["image"].dtype == torch.float32
    assert first["label_image"].shape == (6, 96, 128) and first["label_image"].dtype == torch.uint8
    assert first["bb"].shape == (6, 4, 4) and first["bb_valid"].dtype == torch.bool
    assert first["cls"].shape == (6, 4)
    assert sum(len(b["image"]) for b in reference) == COUNT


def test_batch_equals_the_presets_own_steps(packed):
    preset = _preset().for_device("cpu")
    reader = MsgpackReader(packed)
    loader = Loader(reader, seed=11).batch(6).preset(preset, device="cpu").pytorch(num_workers=2)
    try:
        first = _copy(next(iter(loader)))
    finally:
        loader.close()
    outs = [preset.worker({**reader.get(i), "index": i}, sample_rng(11, 0, i)) for i in range(6)]
    expected = preset.collate(outs)
    for key, value in expected.items():
        assert torch.equal(first[key], torch.from_numpy(value)), key
    palette_labels = np.asarray(Image.open(io.BytesIO(reader.get(0)["label_image"])))
    assert set(np.unique(first["label_image"][0].numpy())) <= set(np.unique(palette_labels))


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_is_exact(packed, workers):
    whole = _loader(packed, _preset(), workers)
    try:
        expected = _collect(whole) + _collect(whole)  # two epochs
    finally:
        whole.close()
    first = _loader(packed, _preset(), workers)
    try:
        head = _collect(first, 2)
        state = first.state_dict()
    finally:
        first.close()
    resumed = _loader(packed, _preset(), 2 - workers)  # another worker layout too
    resumed.load_state_dict(state)
    try:
        tail = _collect(resumed) + _collect(resumed)
    finally:
        resumed.close()
    _assert_same(head + tail, expected)


def test_eval_preset_through_the_loader(packed):
    preset = DenseEvalPreset(resize_size=100, crop_size=96, targets=TARGETS, max_objects=2)
    loaders = [_loader(packed, preset, workers) for workers in (0, 2)]
    try:
        reference, two = (_collect(loader) for loader in loaders)
    finally:
        for loader in loaders:
            loader.close()
    _assert_same(two, reference)
    assert reference[0]["label_image"].shape == (6, 96, 96)


def test_normalising_in_the_workers_equals_normalising_on_the_device(packed):
    loaders = [_loader(packed, _preset(normalize_in=where), 2) for where in ("workers", "device")]
    try:
        workers, device = (_collect(loader) for loader in loaders)
    finally:
        for loader in loaders:
            loader.close()
    _assert_same(workers, device)
    assert workers[0]["image"].dtype == torch.float32
