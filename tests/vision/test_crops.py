"""Crop geometry: torchvision's RandomResizedCrop distribution, resize + centre crop, DCT scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp
from torchvision.transforms import RandomResizedCrop

from shardstream.errors import ConfigError
from shardstream.vision import (
    center_crop_params,
    choose_scale,
    random_resized_crop_params,
    resize_shorter_side,
)

DRAWS = 3000


def _torchvision_boxes(height, width, scale, ratio, n):
    torch.manual_seed(0)
    image = torch.empty(3, height, width)
    return np.array([RandomResizedCrop.get_params(image, scale, ratio) for _ in range(n)])


def _our_boxes(height, width, scale, ratio, n):
    rng = np.random.default_rng(0)
    return np.array(
        [random_resized_crop_params(height, width, scale, ratio, rng=rng) for _ in range(n)]
    )


@pytest.mark.parametrize(
    ("height", "width", "scale", "ratio"),
    [
        (427, 455, (0.08, 1.0), (3 / 4, 4 / 3)),  # ImageNet-like, supervised recipe
        (427, 455, (0.32, 1.0), (3 / 4, 4 / 3)),  # DINO global crops
        (500, 333, (0.05, 0.32), (3 / 4, 4 / 3)),  # DINO local crops, portrait
        (12, 40, (0.08, 1.0), (3 / 4, 4 / 3)),  # small and wide: the fallback often triggers
        (5, 5, (0.08, 1.0), (1 / 2, 2.0)),  # tiny: zero-size rounds and fallbacks
    ],
)
def test_distribution_matches_torchvision(height, width, scale, ratio):
    ours = _our_boxes(height, width, scale, ratio, DRAWS)
    theirs = _torchvision_boxes(height, width, scale, ratio, DRAWS)
    for boxes in (ours, theirs):
        top, left, h, w = boxes.T
        assert (top >= 0).all() and (left >= 0).all() and (h >= 1).all() and (w >= 1).all()
        assert (top + h <= height).all() and (left + w <= width).all()
    statistics = {
        "area": lambda b: b[:, 2] * b[:, 3],
        "aspect": lambda b: b[:, 3] / b[:, 2],
        "top": lambda b: b[:, 0],
        "left": lambda b: b[:, 1],
    }
    for name, statistic in statistics.items():
        p = ks_2samp(statistic(ours), statistic(theirs)).pvalue
        assert p > 0.01, f"{name}: KS p = {p:.4g}"


def test_fallback_is_torchvision_central_crop():
    # 1 x 200: no attempt can fit (h rounds to >= 2), so every draw is the fallback.
    rng = np.random.default_rng(3)
    assert random_resized_crop_params(1, 200, rng=rng) == (0, 99, 1, 1)
    image = torch.empty(3, 1, 200)
    assert RandomResizedCrop.get_params(image, (0.08, 1.0), (3 / 4, 4 / 3)) == (0, 99, 1, 1)
    # tall: width kept, height = round(width / min ratio)
    assert random_resized_crop_params(300, 1, rng=rng) == (149, 0, 1, 1)
    # inside the ratio range with an impossible scale: the whole image
    assert random_resized_crop_params(10, 10, (5.0, 6.0), rng=rng) == (0, 0, 10, 10)


def test_same_seed_same_boxes_and_validation():
    a = _our_boxes(100, 80, (0.08, 1.0), (3 / 4, 4 / 3), 50)
    b = _our_boxes(100, 80, (0.08, 1.0), (3 / 4, 4 / 3), 50)
    assert (a == b).all()
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="height must be a positive int"):
        random_resized_crop_params(0, 10, rng=rng)
    with pytest.raises(ConfigError, match="scale must be"):
        random_resized_crop_params(10, 10, (1.0, 0.5), rng=rng)
    with pytest.raises(ConfigError, match="ratio must be"):
        random_resized_crop_params(10, 10, ratio=(0.0, 1.0), rng=rng)


def test_resize_shorter_side_matches_torchvision_rule():
    assert resize_shorter_side(427, 455, 256) == (256, 272)  # int(256 * 455 / 427) = 272
    assert resize_shorter_side(500, 333, 256) == (384, 256)  # int(256 * 500 / 333) = 384
    assert resize_shorter_side(300, 300, 256) == (256, 256)
    assert resize_shorter_side(100, 50, 256) == (512, 256)  # upscaling


def test_center_crop_params_exact():
    top, left, h, w = center_crop_params(427, 455)
    # resized 256 x 272; crop offsets round(32 / 2) = 16 and round(48 / 2) = 24
    assert (top, left, h, w) == pytest.approx(
        (16 * 427 / 256, 24 * 455 / 272, 224 * 427 / 256, 224 * 455 / 272)
    )
    assert center_crop_params(256, 256) == (16.0, 16.0, 224.0, 224.0)
    assert center_crop_params(256, 257, crop_size=(224, 225)) == (16.0, 16.0, 224.0, 225.0)
    with pytest.raises(ConfigError, match="larger than the resized image"):
        center_crop_params(100, 100, resize_size=64, crop_size=96)


@pytest.mark.parametrize(
    ("crops", "sizes", "expected"),
    [
        ([(0, 0, 1000, 1000)], 224, 4),  # 1000 / 4 = 250 >= 224, 1000 / 8 = 125 < 224
        ([(0, 0, 896, 896)], 224, 4),  # exactly 224 at 1/4
        ([(0, 0, 895, 896)], 224, 2),  # one row short of 1/4
        ([(0, 0, 1000, 1000)], 96, 8),  # 125 >= 96
        ([(0, 0, 800, 800), (0, 0, 200, 300)], [96, 96], 2),  # the smaller crop decides
        ([(0, 0, 800, 400)], [(100, 50)], 8),  # non-square output, both dims fit at 1/8
        ([(0, 0, 800, 399)], [(100, 50)], 4),  # width short of 8 x 50
        ([(0, 0, 50, 50)], 224, 1),  # smaller than the output: full decode, upscaled
        ([], [], 8),  # nothing to crop
    ],
)
def test_choose_scale(crops, sizes, expected):
    assert choose_scale(1000, 1000, crops, sizes) == expected


def test_choose_scale_validation():
    with pytest.raises(ConfigError, match="out_sizes has 1 entries for 2 crops"):
        choose_scale(10, 10, [(0, 0, 5, 5), (0, 0, 5, 5)], [4])
    with pytest.raises(ConfigError, match=r"out_sizes\[0\] must hold positive ints"):
        choose_scale(10, 10, [(0, 0, 5, 5)], [0])


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(1, 600),
    width=st.integers(1, 600),
    scale=st.tuples(st.floats(0.01, 1.0), st.floats(0.01, 1.0)).map(sorted),
    seed=st.integers(0, 2**32 - 1),
)
def test_rrc_box_makes_the_same_draws_and_boxes_as_the_checked_function(height, width, scale, seed):
    from shardstream.vision.crops import random_resized_crop_params, rrc_box

    checked, fast = np.random.default_rng(seed), np.random.default_rng(seed)
    for _ in range(5):
        box = random_resized_crop_params(height, width, scale, rng=checked)
        assert rrc_box(height, width, *scale, 3 / 4, 4 / 3, fast) == box
    assert checked.random() == fast.random()  # the streams are in step
