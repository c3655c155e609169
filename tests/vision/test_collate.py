"""collate_data_and_cast equals dinov2's collate key by key; collate_masks serves the fast path."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream.errors import ConfigError, ConfigTypeError
from shardstream.vision.collate import collate_data_and_cast, collate_masks, stratified_masks
from shardstream.vision.masking import MaskingGenerator, masks_upperbound, sample_masks

from .test_masking import TRAIN_MAX, Dinov2Masking

KEYS = [
    "collated_global_crops",
    "collated_local_crops",
    "collated_masks",
    "mask_indices_list",
    "masks_weight",
    "upperbound",
    "n_masked_patches",
]


def dinov2_collate(samples_list, mask_ratio_tuple, mask_probability, dtype, n_tokens, generator):
    """dinov2's collate_data_and_cast as the behavioural notes describe it (section D)."""
    n_global = len(samples_list[0][0]["global_crops"])
    n_local = len(samples_list[0][0]["local_crops"])
    global_crops = torch.stack(
        [s[0]["global_crops"][i] for i in range(n_global) for s in samples_list]
    )
    local_crops = torch.stack(
        [s[0]["local_crops"][i] for i in range(n_local) for s in samples_list]
    )
    B = len(global_crops)
    N = n_tokens
    n_masked = int(B * mask_probability)
    probs = torch.linspace(*mask_ratio_tuple, n_masked + 1)
    upperbound = 0
    masks = []
    for i in range(n_masked):
        masks.append(torch.BoolTensor(generator(int(N * random.uniform(probs[i], probs[i + 1])))))
        upperbound += int(N * probs[i + 1])
    for _ in range(n_masked, B):
        masks.append(torch.BoolTensor(generator(0)))
    random.shuffle(masks)
    collated_masks = torch.stack(masks).flatten(1)
    indices = collated_masks.flatten().nonzero().flatten()
    weight = (
        (1 / collated_masks.sum(-1).clamp(min=1.0))
        .unsqueeze(-1)
        .expand_as(collated_masks)[collated_masks]
    )
    return {
        "collated_global_crops": global_crops.to(dtype),
        "collated_local_crops": local_crops.to(dtype),
        "collated_masks": collated_masks,
        "mask_indices_list": indices,
        "masks_weight": weight,
        "upperbound": upperbound,
        "n_masked_patches": torch.full((1,), fill_value=indices.shape[0], dtype=torch.long),
    }


def augmented_samples(batch, n_global=2, n_local=3, seed=0, global_size=16, local_size=8):
    """(augmented dict, target) pairs shaped like DataAugmentationDINO's output."""
    generator = torch.Generator().manual_seed(seed)
    samples = []
    for index in range(batch):
        global_crops = [
            torch.randn(3, global_size, global_size, generator=generator) for _ in range(n_global)
        ]
        views = {
            "global_crops": global_crops,
            "global_crops_teacher": global_crops,
            "local_crops": [
                torch.randn(3, local_size, local_size, generator=generator) for _ in range(n_local)
            ],
            "offsets": (),
        }
        samples.append((views, index))
    return samples


def assert_equal_key_by_key(ours, expected):
    assert list(ours) == KEYS == list(expected)
    for key in KEYS:
        if key == "upperbound":
            assert type(ours[key]) is int and ours[key] == expected[key]
            continue
        assert ours[key].dtype == expected[key].dtype, key
        assert ours[key].shape == expected[key].shape, key
        assert torch.equal(ours[key], expected[key]), key


def run_both(samples, ratios, probability, dtype, n_tokens, grid=14, max_patches=TRAIN_MAX, seed=0):
    random.seed(seed)
    expected = dinov2_collate(
        samples,
        ratios,
        probability,
        dtype,
        n_tokens,
        Dinov2Masking(grid, max_num_patches=max_patches),
    )
    state = random.getstate()
    random.seed(seed)
    ours = collate_data_and_cast(
        samples,
        ratios,
        probability,
        dtype,
        n_tokens,
        MaskingGenerator(grid, max_num_patches=max_patches),
    )
    assert random.getstate() == state  # the same draws, in the same order
    return ours, expected


# --- key by key against the reference -------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equal_to_dinov2_key_by_key_on_training_settings(dtype, seed):
    samples = augmented_samples(8, seed=seed)
    ours, expected = run_both(samples, (0.1, 0.5), 0.5, dtype, 196, seed=seed)
    assert_equal_key_by_key(ours, expected)
    assert ours["collated_global_crops"].dtype == dtype
    assert ours["collated_global_crops"].shape == (16, 3, 16, 16)
    assert ours["collated_local_crops"].shape == (24, 3, 8, 8)
    assert ours["collated_masks"].shape == (16, 196)
    assert ours["n_masked_patches"].shape == (1,)
    assert int(ours["n_masked_patches"]) == int(ours["collated_masks"].sum())
    assert int(ours["n_masked_patches"]) <= ours["upperbound"]
    assert int(ours["collated_masks"].any(1).sum()) <= 8  # int(16 * 0.5) crops masked


def test_crops_are_stacked_crop_major_and_cast():
    samples = augmented_samples(3)
    out = collate_data_and_cast(
        samples, (0.1, 0.5), 0.5, torch.float16, 196, MaskingGenerator(14, max_num_patches=98)
    )
    global_crops = out["collated_global_crops"]
    assert torch.equal(global_crops[1], samples[1][0]["global_crops"][0].half())
    assert torch.equal(global_crops[3], samples[0][0]["global_crops"][1].half())
    assert torch.equal(out["collated_local_crops"][7], samples[1][0]["local_crops"][2].half())


@settings(max_examples=30, deadline=None)
@given(
    batch=st.integers(1, 6),
    n_global=st.integers(1, 3),
    low=st.floats(0, 0.6),
    span=st.floats(0, 0.4),
    probability=st.floats(0, 1),
    grid=st.integers(3, 14),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_equal_to_dinov2(batch, n_global, low, span, probability, grid, seed):
    samples = augmented_samples(batch, n_global=n_global, n_local=1, global_size=4, local_size=2)
    ours, expected = run_both(
        samples,
        (low, low + span),
        probability,
        torch.float32,
        grid * grid,
        grid,
        grid * grid // 2,
        seed,
    )
    assert_equal_key_by_key(ours, expected)


# --- n_tokens, probabilities, rng ----------------------------------------------------------------


def test_n_tokens_defaults_to_the_grid_and_may_differ_from_it():
    samples = augmented_samples(4)
    generator = MaskingGenerator(14, max_num_patches=98)
    random.seed(3)
    default = collate_data_and_cast(samples, (0.1, 0.5), 0.5, torch.half, None, generator)
    random.seed(3)
    explicit = collate_data_and_cast(samples, (0.1, 0.5), 0.5, torch.half, 196, generator)
    assert_equal_key_by_key(default, explicit)
    ours, expected = run_both(samples, (0.1, 0.5), 1.0, torch.half, 100, seed=9)
    assert_equal_key_by_key(ours, expected)
    assert ours["upperbound"] == expected["upperbound"] < 8 * 50


def test_mask_probability_zero_masks_nothing():
    ours, expected = run_both(augmented_samples(4), (0.1, 0.5), 0.0, torch.half, 196)
    assert_equal_key_by_key(ours, expected)
    assert not ours["collated_masks"].any()
    assert ours["mask_indices_list"].shape == (0,) and ours["masks_weight"].shape == (0,)
    assert ours["upperbound"] == 0
    assert ours["n_masked_patches"].tolist() == [0]


def test_mask_probability_one_masks_every_crop():
    ours, expected = run_both(augmented_samples(4), (0.2, 0.5), 1.0, torch.half, 196, seed=4)
    assert_equal_key_by_key(ours, expected)
    counts = ours["collated_masks"].sum(1)
    assert (counts > 0).all()
    edges = torch.linspace(0.2, 0.5, 9)
    assert ours["upperbound"] == sum(int(196 * edge) for edge in edges[1:])
    weights = torch.repeat_interleave(1 / counts.float(), counts)
    assert torch.equal(ours["masks_weight"], weights)


def test_a_numpy_generator_draws_like_a_random_seeded_from_it():
    samples = augmented_samples(4)
    generator = MaskingGenerator(14, max_num_patches=98)
    ours = collate_data_and_cast(
        samples, (0.1, 0.5), 0.5, torch.half, 196, generator, rng=np.random.default_rng(8)
    )
    source = random.Random(int(np.random.default_rng(8).integers(2**63)))
    again = collate_data_and_cast(samples, (0.1, 0.5), 0.5, torch.half, 196, generator, rng=source)
    assert_equal_key_by_key(ours, again)
    random.seed(1)
    state = random.getstate()
    collate_data_and_cast(
        samples, (0.1, 0.5), 0.5, torch.half, 196, generator, rng=random.Random(2)
    )
    assert random.getstate() == state  # an explicit source leaves the global one alone


def test_stratified_masks_returns_shuffled_masks_and_the_bin_upper_bound():
    generator = MaskingGenerator(14, max_num_patches=98)
    masks, upperbound = stratified_masks(generator, 10, (0.1, 0.5), 0.4, 196, rng=random.Random(0))
    assert len(masks) == 10 and all(m.shape == (14, 14) and m.dtype == np.bool_ for m in masks)
    edges = torch.linspace(0.1, 0.5, 5)
    assert upperbound == sum(int(196 * edge) for edge in edges[1:])
    assert sum(bool(m.any()) for m in masks) == 4
    assert stratified_masks(generator, 0, (0.1, 0.5), 0.4, 196) == ([], 0)


# --- collate_masks: the part shared with the fast path -------------------------------------------


def test_collate_masks_reorders_sample_major_masks_crop_major():
    generator = MaskingGenerator(6, max_num_patches=18)
    rng = np.random.default_rng(0)
    per_sample = np.stack([sample_masks(generator, 2, (0.2, 0.5), 0.7, rng) for _ in range(5)])
    assert per_sample.shape == (5, 2, 6, 6)
    four_d = collate_masks(per_sample, 7)
    crop_major = collate_masks([per_sample[b, c] for c in range(2) for b in range(5)], 7)
    assert_equal_key_by_key(
        {"collated_global_crops": torch.zeros(1), "collated_local_crops": torch.zeros(1), **four_d},
        {
            "collated_global_crops": torch.zeros(1),
            "collated_local_crops": torch.zeros(1),
            **crop_major,
        },
    )
    flat = per_sample.transpose(1, 0, 2, 3).reshape(10, 36)
    assert torch.equal(four_d["collated_masks"], torch.from_numpy(flat))
    assert four_d["mask_indices_list"].tolist() == np.flatnonzero(flat).tolist()
    counts = flat.sum(1)
    expected_weight = np.repeat(1 / np.maximum(counts, 1), counts).astype(np.float32)
    assert four_d["masks_weight"].dtype == torch.float32
    assert np.array_equal(four_d["masks_weight"].numpy(), expected_weight)
    assert four_d["n_masked_patches"].tolist() == [int(counts.sum())]
    assert four_d["upperbound"] == 7


def test_fast_path_masks_give_a_valid_upper_bound():
    generator = MaskingGenerator(14, max_num_patches=TRAIN_MAX)
    rng = np.random.default_rng(5)
    for _ in range(20):
        per_sample = np.stack([sample_masks(generator, 2, (0.1, 0.5), 0.5, rng) for _ in range(8)])
        out = collate_masks(torch.from_numpy(per_sample), masks_upperbound(per_sample, (0.1, 0.5)))
        assert out["collated_masks"].shape == (16, 196)
        assert 0 <= int(out["n_masked_patches"]) <= out["upperbound"]
        assert out["upperbound"] == 98 * int(out["collated_masks"].any(1).sum())


# --- edge cases and errors -----------------------------------------------------------------------


def test_no_local_crops_and_bare_dicts():
    samples = augmented_samples(2, n_local=0)
    out = collate_data_and_cast(
        [views for views, _ in samples],
        (0.1, 0.5),
        0.5,
        torch.float32,
        196,
        MaskingGenerator(14, max_num_patches=98),
    )
    assert out["collated_local_crops"].shape == (0,)
    assert out["collated_global_crops"].shape == (4, 3, 16, 16)


@pytest.mark.parametrize(
    ("args", "kwargs", "name"),
    [
        (([], (0.1, 0.5), 0.5, torch.half), {}, "samples_list"),
        (([(1, 2)], (0.1, 0.5), 0.5, torch.half), {}, "samples_list"),
        ((5, (0.1, 0.5), 0.5, torch.half), {}, "samples_list"),
        ((None, (0.6, 0.5), 0.5, torch.half), {}, "mask_ratio_tuple"),
        ((None, (0.1, 1.5), 0.5, torch.half), {}, "mask_ratio_tuple"),
        ((None, (0.1, 0.5), -0.1, torch.half), {}, "mask_probability"),
        ((None, (0.1, 0.5), 0.5, "float16"), {}, "dtype"),
        ((None, (0.1, 0.5), 0.5, torch.half), {"mask_generator": None}, "mask_generator"),
        ((None, (0.1, 0.5), 0.5, torch.half), {"n_tokens": 0}, "n_tokens"),
        ((None, (0.1, 0.5), 0.5, torch.half), {"n_tokens": 19.6}, "n_tokens"),
        ((None, (0.1, 0.5), 0.5, torch.half), {"rng": 3}, "rng"),
    ],
)
def test_bad_arguments_raise_config_errors_naming_them(args, kwargs, name):
    samples = augmented_samples(2) if args[0] is None else args[0]
    kwargs = {"mask_generator": MaskingGenerator(14, max_num_patches=98), **kwargs}
    with pytest.raises(ConfigError, match=name):
        collate_data_and_cast(samples, *args[1:], **kwargs)


def test_mismatched_samples_and_bad_masks_raise_config_errors():
    samples = augmented_samples(2) + augmented_samples(1, n_local=2)
    with pytest.raises(ConfigError, match=r"samples_list\[2\] has 2 local_crops"):
        collate_data_and_cast(
            samples, (0.1, 0.5), 0.5, torch.half, 196, MaskingGenerator(14, max_num_patches=98)
        )
    with pytest.raises(ConfigError, match="global_crops differ in shape"):
        collate_data_and_cast(
            augmented_samples(1) + augmented_samples(1, global_size=8),
            (0.1, 0.5),
            0.5,
            torch.half,
            196,
            MaskingGenerator(14, max_num_patches=98),
        )
    with pytest.raises(ConfigError, match="masks"):
        collate_masks(np.zeros((3, 4), dtype=bool), 0)
    with pytest.raises(ConfigError, match="masks"):
        collate_masks([], 0)
    with pytest.raises(ConfigError, match="upperbound"):
        collate_masks(np.zeros((3, 4, 4), dtype=bool), 1.5)
    with pytest.raises(ConfigTypeError, match="mask_generator"):
        collate_data_and_cast(augmented_samples(1), (0.1, 0.5), 0.5, torch.half, 196, "gen")


def test_ratio_bins_use_float32_edges_as_dinov2_tensors_do():
    # linspace(0, 0.7, 11) in float32 gives upper edges whose 100-fold truncations sum to 384;
    # in float64 they would sum to 377.
    ours, expected = run_both(augmented_samples(10), (0.0, 0.7), 0.5, torch.half, 100, seed=2)
    assert_equal_key_by_key(ours, expected)
    assert ours["upperbound"] == 384
