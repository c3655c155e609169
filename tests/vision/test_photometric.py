"""Batched photometric ops: equal to torchvision's ops per op, drawn with torchvision's rates.

Tolerances, per pixel on the [0, 1] scale unless said otherwise:
- against torchvision's functional ops on float tensors (same input, same parameters): 1e-5
  (measured: at most about 2.5e-6, float32 rounding; the hue op is a closed form of the same
  function; the blur, grayscale, brightness and solarise are bit-identical or nearly);
- against dinov2's PIL path (uint8 in, each op rounds to uint8), in uint8 levels:
  brightness / contrast / saturation at most 1.5 (PIL's blend truncates, on average 0.45 levels
  below the float result, and the contrast mean is rounded to an integer), grayscale and blur at
  most 1 (rounding), solarise 0; hue at most 16 with a mean under 1 level (PIL shifts hue in
  1/255 steps on a uint8 HSV image, so dark, weakly saturated pixels move by several levels).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare, kstest
from torchvision.transforms import ColorJitter, Normalize

from shardstream.errors import ConfigError
from shardstream.vision.photometric import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PARAM_KEYS,
    PhotometricRecipe,
    apply_photometric,
    dinov2_recipes,
    draw_photometric_params,
    normalize,
    stack_photometric_params,
)

from ..contracts.images import photo_crops

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FLOAT_TOL = 1e-5
ALL_OPS = PhotometricRecipe(jitter_p=1.0, grayscale_p=1.0, blur_p=1.0, solarize_p=1.0)


@pytest.fixture(scope="module")
def crops() -> torch.Tensor:
    """32 crops of 64 x 64 pixels from the real photos scikit-image ships, uint8 (B, 3, H, W)."""
    return torch.from_numpy(photo_crops()).permute(0, 3, 1, 2).contiguous()


def _identity_params(batch: int) -> dict[str, np.ndarray]:
    """Parameters under which no op is applied (factors neutral)."""
    return {
        "jitter": np.zeros(batch, bool),
        "order": np.tile(np.arange(4), (batch, 1)),
        "brightness": np.ones(batch, np.float32),
        "contrast": np.ones(batch, np.float32),
        "saturation": np.ones(batch, np.float32),
        "hue": np.zeros(batch, np.float32),
        "grayscale": np.zeros(batch, bool),
        "blur": np.zeros(batch, bool),
        "sigma": np.ones(batch, np.float32),
        "solarize": np.zeros(batch, bool),
    }


def _as_tensors(params: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {key: torch.from_numpy(np.asarray(value)) for key, value in params.items()}


def _torchvision_view(image: torch.Tensor, p: dict, recipe: PhotometricRecipe) -> torch.Tensor:
    """One view through torchvision's functional ops on a float tensor, in dinov2's order."""
    x = image.float() / 255
    if p["jitter"]:
        for op in p["order"]:
            if op == 0:
                x = TF.adjust_brightness(x, float(p["brightness"]))
            elif op == 1:
                x = TF.adjust_contrast(x, float(p["contrast"]))
            elif op == 2:
                x = TF.adjust_saturation(x, float(p["saturation"]))
            else:
                x = TF.adjust_hue(x, float(p["hue"]))
    if p["grayscale"]:
        x = TF.rgb_to_grayscale(x, num_output_channels=3)
    if p["blur"]:
        size = recipe.blur_kernel_size
        x = TF.gaussian_blur(x, [size, size], [float(p["sigma"])] * 2)
    if p["solarize"]:
        x = TF.solarize(x, recipe.solarize_threshold / 255)
    return x


# --- each op against torchvision -------------------------------------------------------------

SINGLE_OPS = [
    ("brightness", 0, (0.6, 1.4), TF.adjust_brightness, 1.5),
    ("contrast", 1, (0.6, 1.4), TF.adjust_contrast, 1.5),
    ("saturation", 2, (0.8, 1.2), TF.adjust_saturation, 1.5),
    ("hue", 3, (-0.5, 0.5), TF.adjust_hue, 16.0),
]


@pytest.mark.parametrize(("key", "op", "bounds", "reference", "pil_tol"), SINGLE_OPS)
def test_jitter_op_matches_torchvision(crops, key, op, bounds, reference, pil_tol):
    batch = len(crops)
    rng = np.random.default_rng(op)
    factors = rng.uniform(*bounds, batch).astype(np.float32)
    params = _identity_params(batch)
    params["jitter"][:] = True
    params["order"] = np.tile([op] + [o for o in range(4) if o != op], (batch, 1))
    params[key] = factors
    # only the op under test: the other jitter strengths are zero, which disables them
    recipe = PhotometricRecipe(
        **{name: 0.0 for name in ("brightness", "contrast", "saturation", "hue") if name != key},
        **{key: max(abs(b - (0.0 if key == "hue" else 1.0)) for b in bounds)},
    )
    ours = apply_photometric(crops, _as_tensors(params), recipe)
    floats = torch.stack([reference(c.float() / 255, float(f)) for c, f in zip(crops, factors)])
    assert (ours - floats).abs().max().item() <= FLOAT_TOL
    pil = torch.stack(
        [TF.pil_to_tensor(reference(TF.to_pil_image(c), float(f))) for c, f in zip(crops, factors)]
    ).float()
    levels = (ours * 255 - pil).abs()
    assert levels.max().item() <= pil_tol
    assert levels.mean().item() < 1.0


def test_grayscale_blur_solarize_match_torchvision(crops):
    batch = len(crops)
    rng = np.random.default_rng(5)
    sigmas = rng.uniform(0.1, 2.0, batch).astype(np.float32)
    cases = {
        "grayscale": (
            lambda x, s: TF.rgb_to_grayscale(x, num_output_channels=3),
            1.0,
        ),
        "blur": (lambda x, s: TF.gaussian_blur(x, [9, 9], [s, s]), 1.0),
        "solarize": (
            lambda x, s: TF.solarize(x, 128 / 255 if isinstance(x, torch.Tensor) else 128),
            0,
        ),
    }
    for key, (reference, pil_tol) in cases.items():
        params = _identity_params(batch)
        params[key][:] = True
        params["sigma"] = sigmas
        ours = apply_photometric(crops, _as_tensors(params), ALL_OPS)
        floats = torch.stack([reference(c.float() / 255, float(s)) for c, s in zip(crops, sigmas)])
        assert (ours - floats).abs().max().item() <= FLOAT_TOL, key
        pil = torch.stack(
            [
                TF.pil_to_tensor(reference(TF.to_pil_image(c), float(s)))
                for c, s in zip(crops, sigmas)
            ]
        ).float()
        assert (ours * 255 - pil).abs().max().item() <= pil_tol + 1e-3, key
    # the grayscale output has three equal channels
    params = _identity_params(batch)
    params["grayscale"][:] = True
    gray = apply_photometric(crops, _as_tensors(params), ALL_OPS)
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])


@pytest.mark.parametrize("blur", ["dinov2", "documented"])
def test_full_recipes_on_mixed_batches_match_torchvision(crops, blur):
    rng = np.random.default_rng(11)
    recipes = dinov2_recipes(blur)
    for name, recipe in recipes.items():
        drawn = [draw_photometric_params(recipe, rng) for _ in range(len(crops))]
        ours = apply_photometric(crops, stack_photometric_params(drawn), recipe)
        reference = torch.stack([_torchvision_view(c, p, recipe) for c, p in zip(crops, drawn)])
        assert ours.dtype == torch.float32 and ours.shape == crops.shape
        assert (ours - reference).abs().max().item() <= FLOAT_TOL, name
        # samples are independent of their batch neighbours (the batch is sorted internally)
        single = torch.cat(
            [
                apply_photometric(c[None], stack_photometric_params([p]), recipe)
                for c, p in zip(crops[:6], drawn[:6])
            ]
        )
        assert torch.equal(single, ours[:6])


def test_op_order_follows_torchvision_color_jitter(crops):
    """``order`` means what ``ColorJitter.get_params``'s ``fn_idx`` means: ops in that order."""
    jitter = ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)
    recipe = PhotometricRecipe(jitter_p=1.0, grayscale_p=0.0)
    for i, crop in enumerate(crops[:12]):
        torch.manual_seed(i)
        fn_idx, b, c, s, h = ColorJitter.get_params(
            jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue
        )
        torch.manual_seed(i)
        expected = jitter(crop.float() / 255)
        params = _identity_params(1)
        params["jitter"][:] = True
        params["order"] = fn_idx.numpy()[None].astype(np.int64)
        for key, value in (("brightness", b), ("contrast", c), ("saturation", s), ("hue", h)):
            params[key] = np.array([value], np.float32)
        ours = apply_photometric(crop[None], _as_tensors(params), recipe)
        assert (ours[0] - expected).abs().max().item() <= FLOAT_TOL


@settings(max_examples=60, deadline=None)
@given(
    pixels=st.lists(
        st.tuples(*[st.sampled_from([0.0, 1.0, 0.5]) | st.floats(0.0, 1.0, width=32)] * 3),
        min_size=1,
        max_size=16,
    ),
    shift=st.floats(-0.5, 0.5, width=32),
)
def test_hue_matches_torchvision_on_any_colour(pixels, shift):
    image = torch.tensor(pixels, dtype=torch.float32).T.reshape(1, 3, 1, len(pixels))
    params = _identity_params(1)
    params["jitter"][:] = True
    params["order"] = np.array([[3, 0, 1, 2]])
    params["hue"] = np.array([shift], np.float32)
    recipe = PhotometricRecipe(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.5)
    ours = apply_photometric(image, _as_tensors(params), recipe)
    expected = TF.adjust_hue(image[0], float(np.float32(shift)))
    assert (ours[0] - expected).abs().max().item() <= FLOAT_TOL


def test_float_input_and_empty_batch(crops):
    params = stack_photometric_params([draw_photometric_params(ALL_OPS, np.random.default_rng(1))])
    from_uint8 = apply_photometric(crops[:1], params, ALL_OPS)
    from_float = apply_photometric(crops[:1].float() / 255, params, ALL_OPS)
    assert (from_uint8 - from_float).abs().max().item() <= FLOAT_TOL
    empty = {key: value[:0] for key, value in params.items()}
    assert apply_photometric(crops[:0], empty, ALL_OPS).shape == (0, 3, 64, 64)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(crops):
    rng = np.random.default_rng(3)
    recipe = dinov2_recipes()["global_2"]
    params = stack_photometric_params([draw_photometric_params(recipe, rng) for _ in crops])
    cpu = apply_photometric(crops, params, recipe)
    gpu = apply_photometric(crops.cuda(), {k: v.cuda() for k, v in params.items()}, recipe)
    assert gpu.device.type == "cuda"
    assert (gpu.cpu() - cpu).abs().max().item() <= FLOAT_TOL


def test_normalize_matches_torchvision(crops):
    images = crops.float() / 255
    expected = Normalize(IMAGENET_MEAN, IMAGENET_STD)(images)
    assert torch.equal(normalize(images), expected)
    copy = images.clone()
    assert normalize(copy, inplace=True) is copy and torch.equal(copy, expected)
    assert IMAGENET_MEAN == (0.485, 0.456, 0.406) and IMAGENET_STD == (0.229, 0.224, 0.225)
    with pytest.raises(ConfigError, match="one value per channel"):
        normalize(images, mean=(0.5,), std=(0.5,))
    # uint8 images are read as x / 255 (ToTensor): torchvision's result exactly
    from_uint8 = normalize(crops)
    assert from_uint8.dtype == torch.float32 and torch.equal(from_uint8, expected)
    with pytest.raises(ConfigError, match="floating point or uint8"):
        normalize(crops.to(torch.int16))
    with pytest.raises(ConfigError, match="inplace normalisation needs float"):
        normalize(crops, inplace=True)


# --- drawing -----------------------------------------------------------------------------------

DRAWS = 4000


def _within_binomial(count: int, n: int, p: float) -> bool:
    """``count`` successes in ``n`` draws lie within 4.5 standard deviations of ``n p``."""
    return abs(count - n * p) <= 4.5 * np.sqrt(n * p * (1 - p)) + 1e-9


@pytest.mark.parametrize("blur", ["dinov2", "documented"])
def test_application_rates_and_factor_distributions(blur):
    expected_blur = {
        "dinov2": {"global_1": 0.0, "global_2": 0.9, "local": 0.5},
        "documented": {"global_1": 1.0, "global_2": 0.1, "local": 0.5},
    }[blur]
    rng = np.random.default_rng(2024)
    for name, recipe in dinov2_recipes(blur).items():
        drawn = [draw_photometric_params(recipe, rng) for _ in range(DRAWS)]
        stacked = {key: np.stack([d[key] for d in drawn]) for key in PARAM_KEYS}
        rates = {
            "jitter": 0.8,
            "grayscale": 0.2,
            "blur": expected_blur[name],
            "solarize": 0.2 if name == "global_2" else 0.0,
        }
        for key, p in rates.items():
            count = int(stacked[key].sum())
            if p in (0.0, 1.0):
                assert count == p * DRAWS, (name, key)
            else:
                assert _within_binomial(count, DRAWS, p), (name, key, count)
        for key, (low, high) in {
            "brightness": (0.6, 1.4),
            "contrast": (0.6, 1.4),
            "saturation": (0.8, 1.2),
            "hue": (-0.1, 0.1),
            "sigma": (0.1, 2.0),
        }.items():
            values = stacked[key].astype(np.float64)
            assert stacked[key].dtype == np.float32
            assert low - 1e-6 <= values.min() and values.max() <= high + 1e-6
            assert kstest(values, "uniform", args=(low, high - low)).pvalue > 0.01, (name, key)
        # the op order is a uniformly random permutation, as torch.randperm(4)
        codes = stacked["order"] @ np.array([64, 16, 4, 1])
        assert all(sorted(row) == [0, 1, 2, 3] for row in stacked["order"][:50])
        counts = np.array([np.sum(codes == c) for c in np.unique(codes)])
        assert len(counts) == 24 and chisquare(counts).pvalue > 0.01


def test_draw_shapes_dtypes_and_reproducibility():
    recipe = dinov2_recipes()["global_2"]
    first = draw_photometric_params(recipe, np.random.default_rng(7))
    second = draw_photometric_params(recipe, np.random.default_rng(7))
    assert tuple(first) == PARAM_KEYS
    for key in PARAM_KEYS:
        assert np.array_equal(first[key], second[key])
    assert first["order"].shape == (4,) and first["order"].dtype == np.int64
    for key in ("jitter", "grayscale", "blur", "solarize"):
        assert first[key].shape == () and first[key].dtype == np.bool_
    for key in ("brightness", "contrast", "saturation", "hue", "sigma"):
        assert first[key].shape == () and first[key].dtype == np.float32
    stacked = stack_photometric_params([first, second])
    assert stacked["order"].shape == (2, 4) and stacked["jitter"].dtype == torch.bool


def test_recipes_and_validation(crops):
    shipped, documented = dinov2_recipes(), dinov2_recipes("documented")
    assert [shipped[k].blur_p for k in ("global_1", "global_2", "local")] == [0.0, 0.9, 0.5]
    assert [documented[k].blur_p for k in ("global_1", "global_2", "local")] == [1.0, 0.1, 0.5]
    assert [shipped[k].solarize_p for k in ("global_1", "global_2", "local")] == [0.0, 0.2, 0.0]
    default = PhotometricRecipe()
    assert (default.jitter_p, default.brightness, default.contrast) == (0.8, 0.4, 0.4)
    assert (default.saturation, default.hue, default.grayscale_p) == (0.2, 0.1, 0.2)
    assert (default.blur_sigma, default.blur_kernel_size, default.solarize_threshold) == (
        (0.1, 2.0),
        9,
        128,
    )
    with pytest.raises(ConfigError, match="blur must be 'dinov2' or 'documented'"):
        dinov2_recipes("inverted")
    with pytest.raises(ConfigError, match="jitter_p must be in"):
        PhotometricRecipe(jitter_p=1.5)
    with pytest.raises(ConfigError, match="hue must be at most 0.5"):
        PhotometricRecipe(hue=0.6)
    with pytest.raises(ConfigError, match="blur_kernel_size must be a positive odd int"):
        PhotometricRecipe(blur_kernel_size=8)
    with pytest.raises(ConfigError, match="blur_sigma"):
        PhotometricRecipe(blur_sigma=(0.0, 1.0))
    params = stack_photometric_params([draw_photometric_params(ALL_OPS, np.random.default_rng())])
    with pytest.raises(ConfigError, match=r"\(B, 3, H, W\)"):
        apply_photometric(crops[0], params, ALL_OPS)
    with pytest.raises(ConfigError, match="lack the key 'sigma'"):
        apply_photometric(crops[:1], {k: v for k, v in params.items() if k != "sigma"}, ALL_OPS)
    with pytest.raises(ConfigError, match="'jitter' must have shape"):
        apply_photometric(crops[:2], params, ALL_OPS)
    bad = dict(params, order=torch.tensor([[0, 0, 1, 2]]))
    with pytest.raises(ConfigError, match="permutation"):
        apply_photometric(crops[:1], bad, ALL_OPS)
    with pytest.raises(ConfigError, match="too large"):
        apply_photometric(crops[:1, :, :4, :4], params, ALL_OPS)
    with pytest.raises(ConfigError, match="lacks the key"):
        stack_photometric_params([{"jitter": np.array(True)}])


def test_many_views_at_once_follow_the_same_law():
    from scipy.stats import binomtest, chisquare, kstest

    from shardstream.vision.photometric import draw_photometric_params_many

    recipe = PhotometricRecipe(blur_p=0.5, solarize_p=0.2)
    count = 4000
    many = draw_photometric_params_many(recipe, np.random.default_rng(5), count)
    one = draw_photometric_params(recipe, np.random.default_rng(5))
    assert set(many) == set(one) == set(PARAM_KEYS)
    for key, value in one.items():
        assert many[key].dtype == value.dtype and many[key].shape == (count, *value.shape)
    for key, p in (("jitter", 0.8), ("grayscale", 0.2), ("blur", 0.5), ("solarize", 0.2)):
        assert binomtest(int(many[key].sum()), count, p).pvalue > 1e-3, key
    for key, low, high in (
        ("brightness", 0.6, 1.4),
        ("contrast", 0.6, 1.4),
        ("saturation", 0.8, 1.2),
    ):
        assert kstest(many[key], "uniform", args=(low, high - low)).pvalue > 0.01, key
    assert kstest(many["hue"], "uniform", args=(-0.1, 0.2)).pvalue > 0.01
    assert kstest(many["sigma"], "uniform", args=(0.1, 1.9)).pvalue > 0.01
    assert (np.sort(many["order"], axis=1) == np.arange(4)).all()
    codes = many["order"] @ np.array([64, 16, 4, 1])
    assert chisquare(np.unique(codes, return_counts=True)[1]).pvalue > 1e-3
    assert len(np.unique(codes)) == 24
    empty = draw_photometric_params_many(recipe, np.random.default_rng(5), 0)
    assert empty["order"].shape == (0, 4) and empty["sigma"].shape == (0,)
    with pytest.raises(ConfigError, match="count must be"):
        draw_photometric_params_many(recipe, np.random.default_rng(5), -1)


def test_draws_of_mixed_recipes_follow_each_views_recipe():
    from scipy.stats import binomtest, kstest

    from shardstream.vision.recipes import PhotometricDraws

    strong = PhotometricRecipe(blur_p=1.0, solarize_p=0.2, brightness=0.8, blur_sigma=(1.0, 3.0))
    plain = PhotometricRecipe(jitter_p=0.3, grayscale_p=0.0, hue=0.0)
    draws = PhotometricDraws(recipes=[strong, plain, plain])
    rng = np.random.default_rng(11)
    samples = [draws.draw(rng) for _ in range(3000)]
    values = {key: np.stack([s[key] for s in samples]) for key in PARAM_KEYS}  # (3000, 3, ...)
    one = draw_photometric_params(strong, np.random.default_rng(0))
    for key in PARAM_KEYS:
        assert values[key].dtype == one[key].dtype and values[key].shape[1:2] == (3,), key
    first, rest = {k: v[:, 0] for k, v in values.items()}, {k: v[:, 1:] for k, v in values.items()}
    assert first["blur"].all() and not rest["blur"].any()
    assert not rest["grayscale"].any() and (rest["hue"] == 0).all()
    assert binomtest(int(first["solarize"].sum()), 3000, 0.2).pvalue > 1e-3
    assert binomtest(int(rest["jitter"].sum()), rest["jitter"].size, 0.3).pvalue > 1e-3
    assert kstest(first["brightness"], "uniform", args=(0.2, 1.6)).pvalue > 0.01
    assert kstest(rest["brightness"].ravel(), "uniform", args=(0.6, 0.8)).pvalue > 0.01
    assert kstest(first["sigma"], "uniform", args=(1.0, 2.0)).pvalue > 0.01
    assert (np.sort(values["order"], axis=2) == np.arange(4)).all()
    # views are independent: view 1 and view 2 of a sample differ
    assert not np.array_equal(values["brightness"][:, 1], values["brightness"][:, 2])
    with pytest.raises(ConfigError, match="recipes must be PhotometricRecipes"):
        PhotometricDraws(recipes=[strong, "plain"])
