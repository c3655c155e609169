"""A device-mode DINO sample's colour parameters kept as their draws (ViewParams): read as
draw_params' dict, and collated for a whole batch at once into exactly what the default
collation of those dicts gives (the exact path's batch: same keys, order, dtypes, shapes, values).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from shardstream.engine.collate import default_collate
from shardstream.engine.scratch import FRESH, BatchBuffers
from shardstream.sets.demo import render_demo_image
from shardstream.vision.device_views import collate_shipped
from shardstream.vision.dino import DinoPreset
from shardstream.vision.view_params import ViewParams, collate_view_params

DEMO = [render_demo_image(i) for i in range(3)]


def _assert_same_tree(got, want) -> None:
    assert type(got) is dict and list(got) == list(want)
    for key, value in want.items():
        if isinstance(value, dict):
            _assert_same_tree(got[key], value)
        else:
            assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
            np.testing.assert_array_equal(got[key], value)


@pytest.mark.parametrize("local", [8, 3, 0])
def test_view_params_read_as_draw_params(local):
    preset = DinoPreset(resize="device", local_crops_number=local)
    for seed in range(5):
        rng_lazy, rng_dict = np.random.default_rng(seed), np.random.default_rng(seed)
        lazy = preset._view_params(rng_lazy)
        want = preset.draw_params(rng_dict)
        assert rng_lazy.integers(2**62) == rng_dict.integers(2**62)  # the same draws
        assert isinstance(lazy, ViewParams) and list(lazy) == list(want) and len(lazy) == 3
        _assert_same_tree({kind: lazy[kind] for kind in lazy}, want)
        _assert_same_tree(pickle.loads(pickle.dumps(lazy)), want)  # pickled: the plain dict


@pytest.mark.parametrize("local", [8, 0])
@pytest.mark.parametrize("in_slot", [False, True])
def test_batch_colour_parameters_are_the_exact_paths_collation(local, in_slot):
    exact = DinoPreset(colour="device", local_crops_number=local)
    shipped = DinoPreset(resize="device", local_crops_number=local)
    samples = [{"image": DEMO[i % len(DEMO)], "label": i} for i in range(5)]
    want = default_collate(
        [exact.worker(dict(s), np.random.default_rng(i)) for i, s in enumerate(samples)]
    )
    outs = [shipped.worker(dict(s), np.random.default_rng(i)) for i, s in enumerate(samples)]
    assert all(isinstance(out["photometric"], ViewParams) for out in outs)
    if in_slot:
        buffers, slot = BatchBuffers(reuse=True), np.zeros(8 << 20, np.uint8)
        with buffers.arena(slot):
            got = collate_shipped(outs, buffers)
        assert all(
            np.shares_memory(v, slot) for v in got["photometric"]["local"].values() if v.size
        )
    else:
        got = collate_shipped(outs, FRESH)
    _assert_same_tree(got["photometric"], want["photometric"])
    # the fields keep the samples' order (photometric between the boxes and the masks)
    assert [k for k in got if k in want] == [k for k in outs[0] if k in want]
    for key in ("masks", "mask_upperbound", "label"):
        np.testing.assert_array_equal(got[key], want[key])


def test_mixed_or_foreign_parameters_fall_back_to_the_default_collation():
    shipped = DinoPreset(resize="device", local_crops_number=2)
    other = DinoPreset(resize="device", local_crops_number=2)  # its own PhotometricDraws
    lazy = [shipped._view_params(np.random.default_rng(i)) for i in range(3)]
    _assert_same_tree(
        collate_view_params(lazy, "photometric", FRESH),
        default_collate([p.as_dict() for p in lazy]),
    )
    mixed = [*lazy[:2], other._view_params(np.random.default_rng(2))]
    assert collate_view_params(mixed, "photometric", FRESH) is None
    outs = [
        shipped.worker({"image": DEMO[0], "label": 0}, np.random.default_rng(i)) for i in range(3)
    ]
    want = default_collate([out["photometric"].as_dict() for out in outs])
    outs[1]["photometric"] = outs[1]["photometric"].as_dict()  # a plain dict among ViewParams
    got = collate_shipped(outs, FRESH)
    _assert_same_tree(got["photometric"], want)
