"""The real presets through the loader: batches are bit-identical whatever the worker layout.

With workers, the presets' own collations run in the worker processes, write the batch straight
into its shared-memory slot and hand the consumer views of it; without workers they run in this
process. Either way the batches must be the same, and equal to the presets' own steps.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shardstream import FileWriter, Loader, MsgpackReader
from shardstream.order.samplers.seeds import sample_rng
from shardstream.sets.demo import render_demo_image
from shardstream.vision.dino import DinoPreset
from shardstream.vision.supervised import EvalPreset, SupervisedPreset

COUNT = 24


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    path = tmp_path_factory.mktemp("presets") / "demo.msgpack"
    with FileWriter(path) as writer:
        for i in range(COUNT):
            writer.write({"key": f"img_{i:03d}", "image": render_demo_image(i), "label": i % 3})
    return path


def _batches(path, preset, workers, threads=1, device="cpu"):
    loader = (
        Loader(path, seed=5)
        .shuffle()
        .batch(8)
        .preset(preset, device=device)
        .pytorch(num_workers=workers, num_threads=threads)
    )
    try:
        # copies: the comparison must not depend on lent memory staying put
        return [{k: v.clone() if torch.is_tensor(v) else v for k, v in b.items()} for b in loader]
    finally:
        loader.close()


def _assert_same(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert list(a) == list(b)
        for key in a:
            if torch.is_tensor(a[key]):
                assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key
            else:
                assert a[key] == b[key], key


@pytest.mark.parametrize("make", [SupervisedPreset, EvalPreset])
def test_supervised_presets_give_identical_batches_for_every_worker_layout(packed, make):
    reference = _batches(packed, make(), 0)
    assert reference[0]["image"].shape == (8, 3, 224, 224)
    assert reference[0]["image"].dtype == torch.float32  # normalised in the workers' collate
    for workers, threads in ((1, 1), (2, 2)):
        _assert_same(_batches(packed, make(), workers, threads), reference)
    # normalising on the consuming side gives the very same floats
    _assert_same(_batches(packed, make(normalize_in="device"), 2), reference)


def test_supervised_batch_equals_the_presets_own_steps(packed):
    preset = SupervisedPreset().for_device("cpu")
    reader = MsgpackReader(packed)
    loader = Loader(reader, seed=5).batch(8).preset(preset, device="cpu").pytorch(num_workers=2)
    first = next(iter(loader))
    loader.close()
    outs = [preset.worker({**reader.get(i), "index": i}, sample_rng(5, 0, i)) for i in range(8)]
    expected = preset.collate(outs)
    assert torch.equal(first["image"], torch.from_numpy(expected["image"]))
    assert first["label"].tolist() == [i % 3 for i in range(8)]


def test_dino_preset_gives_identical_batches_for_every_worker_layout(packed):
    preset = DinoPreset(local_crops_number=2)
    reference = _batches(packed, preset, 0)
    first = reference[0]
    assert first["collated_global_crops"].shape == (16, 3, 224, 224)
    assert first["collated_local_crops"].shape == (16, 3, 96, 96)
    assert first["collated_local_crops"].dtype == torch.float32
    for workers, threads in ((1, 1), (2, 2)):
        _assert_same(_batches(packed, preset, workers, threads), reference)
    # colour on the "device" (torch, CPU here): same keys and shapes, colour within a few levels
    on_device = _batches(packed, DinoPreset(local_crops_number=2, colour="device"), 2)
    assert [list(b) for b in on_device] == [list(b) for b in reference]
    std = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
    levels = (on_device[0]["collated_global_crops"] - first["collated_global_crops"]) * std * 255
    assert float(levels.abs().mean()) < 2.5
    assert np.array_equal(on_device[0]["labels"].numpy(), first["labels"].numpy())


class _CopiedViews:
    """A DinoPreset without in_place_fields: its views go through the default collation."""

    def __init__(self, preset):
        self.preset = preset
        self.fields = preset.fields

    def worker(self, sample, rng):
        return self.preset.worker(sample, rng)

    def device(self, batch):
        return self.preset.device(batch)


@pytest.fixture(scope="module")
def packed_with_bad(tmp_path_factory):
    path = tmp_path_factory.mktemp("presets_bad") / "demo.msgpack"
    with FileWriter(path) as writer:
        for i in range(COUNT):
            image = render_demo_image(i)
            if i in (3, 10, 11):
                image = image[: len(image) // 3]  # truncated: skipped by policy
            writer.write({"key": f"img_{i:03d}", "image": image, "label": i % 3})
    return path


def test_dino_views_cut_into_the_batch_equal_collated_ones_with_skips(packed_with_bad):
    preset = DinoPreset(local_crops_number=3, colour="device", on_error="skip")
    assert set(preset.in_place_fields()) == {"global_crops", "local_crops"}
    reference = _batches(packed_with_bad, _CopiedViews(preset), 0)
    assert sum(b["collated_global_crops"].shape[0] // 2 for b in reference) == COUNT - 3
    for workers, threads in ((0, 1), (2, 2)):
        _assert_same(_batches(packed_with_bad, preset, workers, threads), reference)
