"""MaskingGenerator and the per-sample masks: bit-identical to dinov2's algorithm, same statistics."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest, ks_2samp

from shardstream.errors import ConfigError, ConfigTypeError
from shardstream.vision.masking import MaskingGenerator, masks_upperbound, sample_masks

# --- dinov2's algorithm, re-written here from the behavioural notes (reference section C) -------


class Dinov2Masking:
    """dinov2's MaskingGenerator as described: global ``random``, per-cell loops, ``or`` fallback."""

    def __init__(
        self,
        input_size,
        num_masking_patches=None,
        min_num_patches=4,
        max_num_patches=None,
        min_aspect=0.3,
        max_aspect=None,
        source=random,
    ):
        if not isinstance(input_size, tuple):
            input_size = (input_size, input_size)
        self.height, self.width = input_size
        self.min_num_patches = min_num_patches
        self.max_num_patches = num_masking_patches if max_num_patches is None else max_num_patches
        max_aspect = max_aspect or 1 / min_aspect
        self.log_aspect_ratio = (math.log(min_aspect), math.log(max_aspect))
        self.source = source

    def block(self, mask, budget, shapes=None):
        delta = 0
        for _ in range(10):
            area = self.source.uniform(self.min_num_patches, budget)
            aspect = math.exp(self.source.uniform(*self.log_aspect_ratio))
            h = int(round(math.sqrt(area * aspect)))
            w = int(round(math.sqrt(area / aspect)))
            if w < self.width and h < self.height:
                top = self.source.randint(0, self.height - h)
                left = self.source.randint(0, self.width - w)
                already = mask[top : top + h, left : left + w].sum()
                if 0 < h * w - already <= budget:
                    for i in range(top, top + h):
                        for j in range(left, left + w):
                            if mask[i, j] == 0:
                                mask[i, j] = 1
                                delta += 1
                    if shapes is not None:
                        shapes.append((h, w))
            if delta > 0:
                break
        return delta

    def __call__(self, num_masking_patches=0, shapes=None):
        mask = np.zeros((self.height, self.width), dtype=bool)
        count = 0
        while count < num_masking_patches:
            budget = min(num_masking_patches - count, self.max_num_patches)
            delta = self.block(mask, budget, shapes)
            if delta == 0:
                break
            count += delta
        return mask


TRAIN_MAX = 0.5 * 224 // 16 * 224 // 16  # dinov2's training value: 98.0, a float


# --- bit-identical masks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_size": (14, 14), "max_num_patches": TRAIN_MAX},
        {"input_size": 14, "num_masking_patches": 60},
        {"input_size": (7, 20), "max_num_patches": 30, "min_num_patches": 2},
        {"input_size": (16, 16), "max_num_patches": 50, "min_aspect": 0.5, "max_aspect": 4.0},
        {"input_size": (6, 6), "max_num_patches": 10, "min_num_patches": 16},
    ],
)
def test_masks_are_bit_identical_to_dinov2_under_the_same_random_state(kwargs):
    ours = MaskingGenerator(**kwargs)
    reference = Dinov2Masking(**kwargs)
    patches = ours.height * ours.width
    for seed in range(150):
        target = seed * 7 % (patches + 3)
        random.seed(seed)
        expected = reference(target)
        state_after_reference = random.getstate()
        random.seed(seed)
        mask = ours(target)
        assert mask.dtype == np.bool_ and mask.shape == (ours.height, ours.width)
        assert np.array_equal(mask, expected), (seed, target)
        assert random.getstate() == state_after_reference  # the same draws, no more, no fewer


def test_a_random_instance_draws_exactly_like_the_global_module():
    generator = MaskingGenerator(14, max_num_patches=TRAIN_MAX)
    for seed in range(40):
        random.seed(seed)
        expected = generator(40 + seed)
        assert np.array_equal(generator(40 + seed, rng=random.Random(seed)), expected)


def test_a_numpy_generator_seeds_one_private_random_from_one_draw():
    generator = MaskingGenerator(14, max_num_patches=TRAIN_MAX)
    rng = np.random.default_rng(7)
    twin = np.random.default_rng(7)
    for target in (10, 50, 98, 150):
        mask = generator(target, rng=rng)
        expected = Dinov2Masking(
            14, max_num_patches=TRAIN_MAX, source=random.Random(int(twin.integers(2**63)))
        )(target)
        assert np.array_equal(mask, expected)
    assert rng.integers(2**63) == twin.integers(2**63)  # exactly one draw per call


def test_target_zero_returns_an_empty_mask_without_drawing():
    generator = MaskingGenerator((5, 9), max_num_patches=10)
    random.seed(3)
    state = random.getstate()
    mask = generator()
    assert mask.shape == (5, 9) and not mask.any()
    assert random.getstate() == state


# --- counts --------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_num_patches", [TRAIN_MAX, 30, 12])
def test_each_block_adds_between_one_and_its_budget_and_the_total_stays_within_the_target(
    max_num_patches,
):
    generator = MaskingGenerator(14, max_num_patches=max_num_patches)
    source = random.Random(11)
    block_sizes = []
    for trial in range(300):
        target = 1 + trial % 196
        state = source.getstate()
        mask = np.zeros((14, 14), dtype=bool)
        count = 0
        while count < target:
            budget = min(target - count, max_num_patches)
            before = mask.copy()
            added = generator._place_block(mask, budget, source)
            assert np.count_nonzero(mask & ~before) == added and not (before & ~mask).any()
            if added == 0:
                break
            assert 1 <= added <= budget <= max_num_patches
            block_sizes.append(added)
            count += added
        assert count == np.count_nonzero(mask) <= target
        replay = random.Random()
        replay.setstate(state)
        assert np.array_equal(generator(target, rng=replay), mask)  # the call makes these blocks
    assert len(block_sizes) > 300 and max(block_sizes) <= max_num_patches


def test_first_blocks_on_an_empty_grid_are_rectangles_of_at_least_three_patches():
    # area is drawn in [min_num_patches, budget] = [4, budget]; rounding h and w can shrink an
    # area of 4 to 1 x 3 (aspect ~0.5), never further: so blocks hold 3..budget patches.
    generator = MaskingGenerator(14, max_num_patches=TRAIN_MAX)
    source = random.Random(5)
    sizes = []
    for trial in range(2000):
        budget = 4 + trial % 95
        mask = np.zeros((14, 14), dtype=bool)
        added = generator._place_block(mask, budget, source)
        if added == 0:
            continue
        rows, cols = np.nonzero(mask)
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert h * w == added and mask[rows.min() :, cols.min() :][:h, :w].all()
        assert 3 <= added <= budget
        sizes.append(added)
    assert len(sizes) > 1900
    assert min(sizes) == 3 and max(sizes) > 80


def test_masks_reach_their_target_closely_on_dinov2_settings():
    generator = MaskingGenerator(14, max_num_patches=TRAIN_MAX)
    random.seed(0)
    shortfalls = []
    for target in range(19, 98):
        count = int(generator(target).sum())
        assert count <= target
        shortfalls.append(target - count)
    assert np.mean(shortfalls) < 2.0


# --- distributions -------------------------------------------------------------------------------


def _block_shapes(draw_block, n):
    shapes = []
    for trial in range(n):
        mask = np.zeros((14, 14), dtype=bool)
        if draw_block(mask, 20 + trial % 60) == 0:
            continue
        rows, cols = np.nonzero(mask)
        shapes.append((rows.max() - rows.min() + 1, cols.max() - cols.min() + 1))
    return np.array(shapes, dtype=float)


def test_block_aspect_statistics_match_dinov2_with_a_numpy_generator():
    generator = MaskingGenerator(14, max_num_patches=TRAIN_MAX)
    rng = np.random.default_rng(2024)
    ours = _block_shapes(
        lambda m, b: generator._place_block(m, b, random.Random(int(rng.integers(2**63)))), 3000
    )
    reference = Dinov2Masking(14, max_num_patches=TRAIN_MAX, source=random.Random(99))
    theirs = _block_shapes(reference.block, 3000)
    assert (
        ks_2samp(np.log(ours[:, 0] / ours[:, 1]), np.log(theirs[:, 0] / theirs[:, 1])).pvalue > 0.01
    )
    assert ks_2samp(ours[:, 0] * ours[:, 1], theirs[:, 0] * theirs[:, 1]).pvalue > 0.01
    log_aspect = np.log(ours[:, 0] / ours[:, 1])
    assert abs(log_aspect.mean()) < 0.05  # log-uniform on [ln 0.3, ln 1/0.3]: symmetric
    assert np.abs(log_aspect).max() <= math.log(1 / 0.3) + math.log(3)  # rounding widens a bit
    taller, wider = np.mean(log_aspect > 0), np.mean(log_aspect < 0)
    assert abs(taller - wider) < 0.04


def test_mask_ratio_distribution_matches_dinov2_batch_scheme_per_crop():
    # per crop, sample_masks' law equals dinov2's stratified batch draw when B * p is whole
    generator = MaskingGenerator(14, max_num_patches=TRAIN_MAX)
    rng = np.random.default_rng(1)
    ours = np.concatenate(
        [sample_masks(generator, 2, (0.1, 0.5), 0.5, rng).sum((1, 2)) for _ in range(2000)]
    )
    reference = Dinov2Masking(14, max_num_patches=TRAIN_MAX, source=random.Random(4))
    theirs = []
    for _ in range(125):  # batches of B = 32 crops, 16 of them masked
        edges = np.linspace(0.1, 0.5, 17)
        for i in range(16):
            theirs.append(
                int(reference(int(196 * reference.source.uniform(edges[i], edges[i + 1]))).sum())
            )
        theirs.extend([0] * 16)
    theirs = np.array(theirs)
    masked = int(np.count_nonzero(ours))
    assert binomtest(masked, ours.size, 0.5).pvalue > 0.001
    assert ks_2samp(ours[ours > 0], theirs[theirs > 0]).pvalue > 0.01
    ratios = ours[ours > 0] / 196
    assert ratios.min() > 0.09 and ratios.max() <= 0.5
    assert abs(ratios.mean() - theirs[theirs > 0].mean() / 196) < 0.01


# --- property tests ------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(1, 20),
    width=st.integers(1, 20),
    min_num_patches=st.integers(0, 12),
    max_num_patches=st.one_of(st.integers(1, 200), st.floats(1, 200)),
    min_aspect=st.floats(0.1, 1.0),
    max_aspect=st.one_of(st.none(), st.floats(1.0, 10.0)),
    target=st.integers(0, 420),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_identical_to_dinov2_and_within_the_target(
    height, width, min_num_patches, max_num_patches, min_aspect, max_aspect, target, seed
):
    kwargs = {
        "input_size": (height, width),
        "min_num_patches": min_num_patches,
        "max_num_patches": max_num_patches,
        "min_aspect": min_aspect,
        "max_aspect": max_aspect,
    }
    generator = MaskingGenerator(**kwargs)
    mask = generator(target, rng=random.Random(seed))
    expected = Dinov2Masking(**kwargs, source=random.Random(seed))(target)
    assert np.array_equal(mask, expected)
    assert mask.shape == (height, width) and mask.dtype == np.bool_
    assert np.count_nonzero(mask) <= min(target, height * width)


@settings(max_examples=40, deadline=None)
@given(
    n_masks=st.integers(0, 4),
    low=st.floats(0, 1),
    span=st.floats(0, 1),
    probability=st.floats(0, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_sample_masks_draws_as_documented(n_masks, low, span, probability, seed):
    high = min(1.0, low + span)
    generator = MaskingGenerator((9, 11), max_num_patches=40)
    masks = sample_masks(generator, n_masks, (low, high), probability, np.random.default_rng(seed))
    source = random.Random(int(np.random.default_rng(seed).integers(2**63)))
    reference = Dinov2Masking((9, 11), max_num_patches=40, source=source)
    expected = np.zeros((n_masks, 9, 11), dtype=bool)
    for i in range(n_masks):
        if source.random() < probability:
            expected[i] = reference(int(99 * source.uniform(low, high)))
    assert np.array_equal(masks, expected)
    assert masks_upperbound(masks, (low, high)) >= np.count_nonzero(masks)


# --- sample_masks and masks_upperbound -----------------------------------------------------------


def test_sample_masks_probability_zero_and_one():
    generator = MaskingGenerator(14, max_num_patches=TRAIN_MAX)
    rng = np.random.default_rng(0)
    none = np.stack([sample_masks(generator, 2, (0.1, 0.5), 0.0, rng) for _ in range(50)])
    assert none.shape == (50, 2, 14, 14) and not none.any()
    every = np.stack([sample_masks(generator, 2, (0.1, 0.5), 1.0, rng) for _ in range(50)])
    counts = every.sum((2, 3))
    assert (counts >= 15).all() and (counts <= 98).all()
    assert sample_masks(generator, 0, (0.1, 0.5), 1.0, rng).shape == (0, 14, 14)


def test_sample_masks_is_a_function_of_the_generator_state():
    generator = MaskingGenerator(14, max_num_patches=TRAIN_MAX)
    first = sample_masks(generator, 2, (0.1, 0.5), 0.5, np.random.default_rng(123))
    again = sample_masks(generator, 2, (0.1, 0.5), 0.5, np.random.default_rng(123))
    assert np.array_equal(first, again)
    random.seed(5)
    global_draw = sample_masks(generator, 3, (0.2, 0.4), 1.0)
    assert np.array_equal(
        global_draw, sample_masks(generator, 3, (0.2, 0.4), 1.0, random.Random(5))
    )


def test_sample_masks_n_tokens_sets_the_ratio_base():
    generator = MaskingGenerator(14, max_num_patches=1000)
    # ratio exactly 0.25 of 100 tokens = 25 patches targeted, never more
    masks = sample_masks(generator, 20, (0.25, 0.25), 1.0, random.Random(0), n_tokens=100)
    assert (masks.sum((1, 2)) <= 25).all() and (masks.sum((1, 2)) >= 20).all()
    default = sample_masks(generator, 20, (0.25, 0.25), 1.0, random.Random(0))
    explicit = sample_masks(generator, 20, (0.25, 0.25), 1.0, random.Random(0), n_tokens=196)
    assert np.array_equal(default, explicit)
    assert (default.sum((1, 2)) <= 49).all()


def test_masks_upperbound_counts_each_masked_crop_at_the_top_ratio():
    masks = np.zeros((3, 2, 14, 14), dtype=bool)
    masks[0, 1, 0, 0] = True
    masks[2, 0, 3:5, 3:5] = True
    assert masks_upperbound(masks, (0.1, 0.5)) == 2 * 98
    assert masks_upperbound(masks, (0.1, 0.5), n_tokens=100) == 2 * 50
    assert masks_upperbound(masks[:1, 0], (0.1, 0.5)) == 0
    with pytest.raises(ConfigError, match="masks"):
        masks_upperbound(np.zeros(5, dtype=bool), (0.1, 0.5))


# --- repr, shape, errors -------------------------------------------------------------------------


def test_repr_and_get_shape_follow_dinov2():
    generator = MaskingGenerator((14, 12), num_masking_patches=50)
    assert generator.get_shape() == (14, 12)
    assert generator.num_patches == 168 and generator.max_num_patches == 50
    assert repr(generator) == "Generator(14, 12 -> [4 ~ 50], max = 50, -1.204 ~ 1.204)"
    training = MaskingGenerator((14, 14), max_num_patches=TRAIN_MAX)
    assert repr(training) == "Generator(14, 14 -> [4 ~ 98], max = None, -1.204 ~ 1.204)"
    assert MaskingGenerator(8, max_aspect=0, min_aspect=0.5).log_aspect_ratio == (
        math.log(0.5),
        math.log(2.0),
    )


def test_a_positive_target_without_any_maximum_is_a_type_error():
    generator = MaskingGenerator(14)
    assert not generator(0).any()
    with pytest.raises(ConfigTypeError, match="max_num_patches") as error:
        generator(10)
    assert isinstance(error.value, TypeError)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"input_size": 0}, "input_size"),
        ({"input_size": (14,)}, "input_size"),
        ({"input_size": (14, 2.5)}, "input_size"),
        ({"input_size": "14"}, "input_size"),
        ({"input_size": True}, "input_size"),
        ({"input_size": 14, "num_masking_patches": -1}, "num_masking_patches"),
        ({"input_size": 14, "min_num_patches": float("nan")}, "min_num_patches"),
        ({"input_size": 14, "max_num_patches": float("inf")}, "max_num_patches"),
        ({"input_size": 14, "max_num_patches": "98"}, "max_num_patches"),
        ({"input_size": 14, "min_aspect": 0}, "min_aspect"),
        ({"input_size": 14, "min_aspect": -0.3}, "min_aspect"),
        ({"input_size": 14, "max_aspect": -2.0}, "max_aspect"),
    ],
)
def test_bad_constructor_arguments_raise_config_errors_naming_them(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        MaskingGenerator(**kwargs)


def test_bad_call_arguments_raise_config_errors_naming_them():
    generator = MaskingGenerator(14, max_num_patches=98)
    with pytest.raises(ConfigError, match="num_masking_patches"):
        generator(-3)
    with pytest.raises(ConfigError, match="num_masking_patches"):
        generator(None)
    with pytest.raises(ConfigTypeError, match="rng"):
        generator(10, rng=np.random.RandomState(0))
    with pytest.raises(ConfigError, match="n_masks"):
        sample_masks(generator, -1, (0.1, 0.5), 0.5)
    with pytest.raises(ConfigError, match="mask_ratio_tuple"):
        sample_masks(generator, 2, (0.5, 0.1), 0.5)
    with pytest.raises(ConfigError, match="mask_ratio_tuple"):
        sample_masks(generator, 2, 0.5, 0.5)
    with pytest.raises(ConfigError, match="mask_probability"):
        sample_masks(generator, 2, (0.1, 0.5), 1.5)
    with pytest.raises(ConfigError, match="n_tokens"):
        sample_masks(generator, 2, (0.1, 0.5), 0.5, n_tokens=0)
    with pytest.raises(ConfigTypeError, match="mask_generator"):
        sample_masks(Dinov2Masking(14, 98), 2, (0.1, 0.5), 0.5)


# --- the C replay of sample_masks' draws -------------------------------------------------------


def _python_sample_masks(*args, **kwargs):
    from shardstream.vision import masking

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(masking, "_masking", None)
        return sample_masks(*args, **kwargs)


def test_masking_extension_is_built():
    # CI runs the image these tests run in: the C replay must be there, not silently missing
    from shardstream.vision import masking

    assert masking._masking is not None


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    grid=st.sampled_from([(14, 14), (9, 11), (1, 5), (16, 16)]),
    max_patches=st.sampled_from([98.0, 40, 7, 0.5]),
    min_patches=st.sampled_from([4, 1, 2.5]),
    probability=st.floats(0, 1),
)
def test_c_replay_equals_the_python_draws(seed, grid, max_patches, min_patches, probability):
    generator = MaskingGenerator(grid, max_num_patches=max_patches, min_num_patches=min_patches)
    args = (generator, 3, (0.1, 0.5), probability)
    native = sample_masks(*args, np.random.default_rng(seed))
    python = _python_sample_masks(*args, np.random.default_rng(seed))
    assert np.array_equal(native, python)


@pytest.mark.parametrize("seed", [0, 1, 2**32 - 1, 2**32, 2**63 - 1])
def test_c_replay_seeds_random_random_as_python_does(seed):
    # one 32-bit key word below 2**32 (zero included), two from 2**32 on
    from shardstream.vision import masking

    generator = MaskingGenerator(14, max_num_patches=TRAIN_MAX)
    masks = np.zeros((4, 14, 14), dtype=bool)
    nonempty = masking._masking.sample_masks(
        masks, 4, 14, 14, seed, 0.7, 0.1, 0.5, 196, 4.0, float(TRAIN_MAX),
        *generator.log_aspect_ratio,
    )  # fmt: skip
    assert nonempty == int(masks.any((1, 2)).sum())
    source = random.Random(seed)
    reference = Dinov2Masking(14, max_num_patches=TRAIN_MAX, source=source)
    expected = np.zeros((4, 14, 14), dtype=bool)
    for i in range(4):
        if source.random() < 0.7:
            expected[i] = reference(int(196 * source.uniform(0.1, 0.5)))
    assert np.array_equal(masks, expected)
    assert masks.any()


def test_numpy_counts_and_missing_maximum_take_the_python_path(monkeypatch):
    from shardstream.vision import masking

    calls = []
    monkeypatch.setattr(
        masking, "_masking", type("Spy", (), {"sample_masks": staticmethod(calls.append)})
    )
    float32_counts = MaskingGenerator(14, max_num_patches=np.float32(98))
    masks = sample_masks(float32_counts, 2, (0.1, 0.5), 1.0, np.random.default_rng(3))
    assert masks.any() and calls == []
    no_maximum = MaskingGenerator(14)
    with pytest.raises(ConfigTypeError, match="max_num_patches"):
        sample_masks(no_maximum, 1, (0.1, 0.5), 1.0, np.random.default_rng(3))
    assert calls == []


def test_c_replay_refuses_a_buffer_of_the_wrong_size():
    from shardstream.vision import masking

    with pytest.raises(ValueError, match="n_masks \\* height \\* width"):
        masking._masking.sample_masks(
            np.zeros((2, 14, 13), dtype=bool),
            2,
            14,
            14,
            5,
            0.5,
            0.1,
            0.5,
            196,
            4.0,
            98.0,
            -1.2,
            1.2,
        )


@pytest.mark.parametrize("native", [True, False])
def test_mask_sampler_draws_as_sample_masks_with_its_upperbound(native):
    from shardstream.vision import masking
    from shardstream.vision.masking import MaskSampler

    generator = MaskingGenerator(14, max_num_patches=TRAIN_MAX)
    with pytest.MonkeyPatch.context() as patch:
        if not native:
            patch.setattr(masking, "_masking", None)
        sampler = MaskSampler(
            mask_generator=generator, n_masks=2, mask_ratio_tuple=(0.1, 0.5), mask_probability=0.5
        )
        assert sampler._native is native
        for seed in range(40):
            masks, upperbound = sampler.draw(np.random.default_rng(seed))
            expected = sample_masks(generator, 2, (0.1, 0.5), 0.5, np.random.default_rng(seed))
            assert np.array_equal(masks, expected)
            assert (
                upperbound
                == masks_upperbound(masks, (0.1, 0.5))
                == (int(masks.any((1, 2)).sum()) * 98)
            )
    with pytest.raises(ConfigError, match="mask_probability"):
        MaskSampler(
            mask_generator=generator, n_masks=2, mask_ratio_tuple=(0.1, 0.5), mask_probability=2
        )
    with pytest.raises(ConfigTypeError, match="mask_generator"):
        MaskSampler(
            mask_generator="grid", n_masks=2, mask_ratio_tuple=(0.1, 0.5), mask_probability=0.5
        )
