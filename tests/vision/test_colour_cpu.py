"""uint8 colour ops on the CPU: equal to dinov2's PIL path (torchvision on PIL images) per op.

Tolerances, in uint8 levels per value, against ``torchvision.transforms.functional`` on PIL images
with the same parameters (measured on the photo crops below, all factors up to 2):
- brightness, contrast, solarize: 0 (the same float32 arithmetic, as lookup tables);
- saturation: at most 1 on under 1% of values (measured 0.3%: cv2.addWeighted's float rounding);
- grayscale: at most 1 on under 1% of values (measured 0.08%: OpenCV's 14-bit luma weights
  against PIL's 16-bit ones);
- blur: at most 1 on under 0.1% of values (measured 1e-5: separable float sums vs one 2-D
  convolution, at rounding ties);
- hue: at most 16, mean under 0.6 (measured max 12, mean 0.39; on uniformly random colours max 13,
  mean 1.1): both round-trip through 8-bit HSV, OpenCV rounding where PIL truncates, H in 1/256
  instead of 1/255 turns. The float torch op differs from PIL by as much (max 12, mean 0.54).
Against :func:`~shardstream.vision.photometric.apply_photometric` (float32, times 255): the LUT
ops within 1.5 levels (PIL's truncation, which this path reproduces), blur and grayscale within
0.55, solarise exact, hue within 16. Full dinov2 recipes: mean difference to PIL under 0.5 levels
(measured about 0.3), to the float path under 2 (measured about 1.2); on a strongly saturated
synthetic picture, and under all four jitter ops, the mean difference to PIL reaches 1.3 levels.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import ColorJitter

from shardstream.errors import ConfigError
from shardstream.vision import colour_cpu
from shardstream.vision.colour_cpu import apply_photometric_uint8, apply_photometric_views
from shardstream.vision.photometric import (
    PARAM_KEYS,
    PhotometricRecipe,
    apply_photometric,
    dinov2_recipes,
    draw_photometric_params,
    stack_photometric_params,
)
from tests.contracts.images import smooth_rgb

from ..contracts.images import photo_crops

pytestmark = pytest.mark.usefixtures("one_torch_thread")

JITTER = ("brightness", "contrast", "saturation", "hue")
PIL_JITTER = {
    "brightness": TF.adjust_brightness,
    "contrast": TF.adjust_contrast,
    "saturation": TF.adjust_saturation,
    "hue": TF.adjust_hue,
}
ALL_OPS = PhotometricRecipe(jitter_p=1.0, grayscale_p=1.0, blur_p=1.0, solarize_p=1.0)


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    """32 crops of 64 x 64 pixels from scikit-image's real photos, uint8 (N, H, W, 3)."""
    return photo_crops()


def _identity(**changes) -> dict[str, np.ndarray]:
    """One view's parameters under which no op runs, with ``changes`` applied."""
    params = {
        "jitter": np.array(False),
        "order": np.arange(4, dtype=np.int64),
        "brightness": np.float32(1.0),
        "contrast": np.float32(1.0),
        "saturation": np.float32(1.0),
        "hue": np.float32(0.0),
        "grayscale": np.array(False),
        "blur": np.array(False),
        "sigma": np.float32(1.0),
        "solarize": np.array(False),
    }
    params.update({key: np.asarray(value) for key, value in changes.items()})
    return params


def _only(key: str, strength: float) -> PhotometricRecipe:
    """A recipe whose only non-zero jitter strength is ``key``'s (the others are skipped)."""
    return PhotometricRecipe(**{name: strength if name == key else 0.0 for name in JITTER})


def _pil_view(pixels: np.ndarray, p, recipe: PhotometricRecipe) -> np.ndarray:
    """One view through torchvision's ops on a PIL image, in dinov2's order (dinov2's path)."""
    image = Image.fromarray(pixels)
    if p["jitter"]:
        for op in np.asarray(p["order"]).tolist():
            name = JITTER[op]
            if getattr(recipe, name) > 0:
                image = PIL_JITTER[name](image, float(p[name]))
    if p["grayscale"]:
        image = TF.rgb_to_grayscale(image, num_output_channels=3)
    if p["blur"]:
        size = recipe.blur_kernel_size
        image = TF.gaussian_blur(image, [size, size], [float(p["sigma"])] * 2)
    if p["solarize"]:
        image = TF.solarize(image, recipe.solarize_threshold)
    return np.asarray(image)


def _float_path(views: np.ndarray, params: list[dict], recipe: PhotometricRecipe) -> np.ndarray:
    """photometric.apply_photometric on the same views and parameters, as levels (N, H, W, 3)."""
    images = torch.from_numpy(views).permute(0, 3, 1, 2).contiguous()
    out = apply_photometric(images, stack_photometric_params(params), recipe)
    return out.permute(0, 2, 3, 1).numpy().astype(np.float64) * 255


def _levels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.float64) - b.astype(np.float64))


# --- each op against torchvision on PIL images ---------------------------------------------------

# (key, factor range, max levels vs PIL, max fraction of differing values, max levels vs float)
JITTER_CASES = [
    ("brightness", (0.0, 2.0), 0, 0.0, 1.5),
    ("contrast", (0.0, 2.0), 0, 0.0, 1.5),
    ("saturation", (0.0, 2.0), 1, 0.01, 1.5),
]


@pytest.mark.parametrize(("key", "bounds", "pil_tol", "pil_fraction", "float_tol"), JITTER_CASES)
def test_lut_and_blend_ops_match_pil(crops, key, bounds, pil_tol, pil_fraction, float_tol):
    rng = np.random.default_rng(len(key))
    factors = rng.uniform(*bounds, len(crops)).astype(np.float32)
    op = JITTER.index(key)
    order = [op] + [o for o in range(4) if o != op]
    params = [_identity(jitter=True, order=order, **{key: f}) for f in factors]
    recipe = _only(key, 1.0)
    ours = np.stack([apply_photometric_uint8(c, p, recipe) for c, p in zip(crops, params)])
    pil = np.stack(
        [np.asarray(PIL_JITTER[key](Image.fromarray(c), float(f))) for c, f in zip(crops, factors)]
    )
    assert ours.dtype == np.uint8 and ours.shape == crops.shape
    diff = _levels(ours, pil)
    assert diff.max() <= pil_tol
    assert (diff > 0).mean() <= pil_fraction
    assert _levels(ours, _float_path(crops, params, recipe)).max() <= float_tol


def test_lut_ops_are_exact_on_every_level():
    """Brightness and contrast tables equal PIL's blend for all 256 levels and many factors."""
    levels = np.arange(256, dtype=np.uint8)
    pixels = np.stack(np.meshgrid(levels, levels[::-1], indexing="ij"), -1)[..., [0, 1, 0]]
    pixels = np.ascontiguousarray(pixels)  # every level in every channel
    for factor in np.random.default_rng(4).uniform(0.0, 2.5, 40).astype(np.float32):
        for key in ("brightness", "contrast"):
            op = JITTER.index(key)
            params = _identity(jitter=True, order=[op] + [o for o in range(4) if o != op])
            params[key] = factor
            ours = apply_photometric_uint8(pixels, params, _only(key, 1.5))
            pil = np.asarray(PIL_JITTER[key](Image.fromarray(pixels), float(factor)))
            assert np.array_equal(ours, pil), (key, float(factor))


def test_hue_matches_pil_within_quantisation(crops):
    rng = np.random.default_rng(3)
    shifts = rng.uniform(-0.5, 0.5, len(crops)).astype(np.float32)
    shifts[:2] = (0.0, 0.5)  # no shift (PIL still round-trips through HSV) and the extreme
    params = [_identity(jitter=True, order=[3, 0, 1, 2], hue=h) for h in shifts]
    recipe = _only("hue", 0.5)
    ours = np.stack([apply_photometric_uint8(c, p, recipe) for c, p in zip(crops, params)])
    pil = np.stack(
        [np.asarray(TF.adjust_hue(Image.fromarray(c), float(h))) for c, h in zip(crops, shifts)]
    )
    diff = _levels(ours, pil)
    assert diff.max() <= 16 and diff.mean() < 0.6
    floats = _float_path(crops, params, recipe)
    assert _levels(ours, floats).max() <= 16 and _levels(ours, floats).mean() < 0.8
    # the shift is applied: a quarter turn moves colours far, and matches PIL's quarter turn
    turned = apply_photometric_uint8(
        crops[0], _identity(jitter=True, order=[3, 0, 1, 2], hue=0.25), recipe
    )
    assert _levels(turned, crops[0]).mean() > 10
    assert _levels(turned, np.asarray(TF.adjust_hue(Image.fromarray(crops[0]), 0.25))).mean() < 0.6


def test_hue_on_arbitrary_colours():
    pixels = np.random.default_rng(8).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    recipe = _only("hue", 0.5)
    for shift in np.linspace(-0.5, 0.5, 11).astype(np.float32):
        params = _identity(jitter=True, order=[3, 0, 1, 2], hue=shift)
        ours = apply_photometric_uint8(pixels, params, recipe)
        pil = np.asarray(TF.adjust_hue(Image.fromarray(pixels), float(shift)))
        diff = _levels(ours, pil)
        assert diff.max() <= 16 and diff.mean() < 1.5, float(shift)
    # grey pixels have no hue: any shift leaves them alone, as in PIL
    grey = np.repeat(np.arange(256, dtype=np.uint8).reshape(16, 16, 1), 3, axis=2)
    shifted = apply_photometric_uint8(
        grey, _identity(jitter=True, order=[3, 0, 1, 2], hue=0.3), recipe
    )
    assert np.array_equal(shifted, grey)


def test_grayscale_blur_solarize_match_pil(crops):
    rng = np.random.default_rng(5)
    sigmas = rng.uniform(0.1, 2.0, len(crops)).astype(np.float32)
    cases = {
        # key: (PIL reference, max levels, max fraction differing, max levels vs the float path)
        "grayscale": (lambda im, s: TF.rgb_to_grayscale(im, num_output_channels=3), 1, 0.01, 0.55),
        "blur": (lambda im, s: TF.gaussian_blur(im, [9, 9], [s, s]), 1, 0.001, 0.55),
        "solarize": (lambda im, s: TF.solarize(im, 128), 0, 0.0, 1e-3),
    }
    for key, (reference, tol, fraction, float_tol) in cases.items():
        params = [_identity(sigma=s, **{key: True}) for s in sigmas]
        ours = np.stack([apply_photometric_uint8(c, p, ALL_OPS) for c, p in zip(crops, params)])
        pil = np.stack(
            [np.asarray(reference(Image.fromarray(c), float(s))) for c, s in zip(crops, sigmas)]
        )
        diff = _levels(ours, pil)
        assert diff.max() <= tol and (diff > 0).mean() <= fraction, key
        assert _levels(ours, _float_path(crops, params, ALL_OPS)).max() <= float_tol, key
    gray = apply_photometric_uint8(crops[0], _identity(grayscale=True), ALL_OPS)
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    # solarise inverts exactly the levels at or above the threshold
    levels = np.repeat(np.arange(256, dtype=np.uint8).reshape(16, 16, 1), 3, axis=2)
    solarized = apply_photometric_uint8(levels, _identity(solarize=True), ALL_OPS)
    expected = np.where(levels >= 128, 255 - levels, levels)
    assert np.array_equal(solarized, expected)
    custom = PhotometricRecipe(solarize_p=1.0, solarize_threshold=200)
    solarized = apply_photometric_uint8(levels, _identity(solarize=True), custom)
    assert np.array_equal(solarized, np.where(levels >= 200, 255 - levels, levels))


# --- full recipes and op order -------------------------------------------------------------------


@pytest.mark.parametrize("blur", ["dinov2", "documented"])
def test_full_recipes_match_pil_and_the_float_path(crops, blur):
    rng = np.random.default_rng(11)
    for name, recipe in dinov2_recipes(blur).items():
        params = [draw_photometric_params(recipe, rng) for _ in range(len(crops))]
        ours = apply_photometric_views(crops, params, recipe)
        pil = np.stack([_pil_view(c, p, recipe) for c, p in zip(crops, params)])
        assert ours.dtype == np.uint8 and ours.shape == crops.shape
        diff = _levels(ours, pil)
        assert diff.max() <= 16 and diff.mean() < 0.5, name
        floats = _levels(ours, _float_path(crops, params, recipe))
        assert floats.max() <= 20 and floats.mean() < 2.0, name
        # the stack function is the per-view function, view by view
        for view, p, result in zip(crops[:4], params[:4], ours[:4]):
            assert np.array_equal(apply_photometric_uint8(view, p, recipe), result)


def test_full_recipe_on_a_larger_smooth_picture():
    """A 224 x 224 view (a dinov2 global crop size) through global crop 2's recipe."""
    pixels = np.asarray(smooth_rgb(224, 224))
    recipe = dinov2_recipes()["global_2"]
    rng = np.random.default_rng(21)
    for _ in range(6):
        params = draw_photometric_params(recipe, rng)
        diff = _levels(
            apply_photometric_uint8(pixels, params, recipe), _pil_view(pixels, params, recipe)
        )
        assert (
            diff.max() <= 16 and diff.mean() < 1.5
        )  # saturated synthetic colours: measured <= 1.32


def test_op_order_follows_torchvision_color_jitter(crops):
    """``order`` means what ``ColorJitter.get_params``'s ``fn_idx`` means, as in photometric.py."""
    jitter = ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)
    recipe = PhotometricRecipe(jitter_p=1.0, grayscale_p=0.0)
    for i, crop in enumerate(crops[:12]):
        torch.manual_seed(i)
        fn_idx, b, c, s, h = ColorJitter.get_params(
            jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue
        )
        torch.manual_seed(i)
        expected = np.asarray(jitter(Image.fromarray(crop)))  # torchvision's PIL path
        params = _identity(jitter=True, order=fn_idx.numpy().astype(np.int64))
        for key, value in zip(JITTER, (b, c, s, h)):
            params[key] = np.float32(value)
        ours = apply_photometric_uint8(crop, params, recipe)
        diff = _levels(ours, expected)
        assert diff.max() <= 16 and diff.mean() < 1.25  # measured: max 8, mean <= 1.08


def test_every_op_order_is_applied_as_drawn(crops):
    """All 24 orders: brightness, contrast, saturation as PIL in that order, and as photometric.py.

    Strong factors make the orders differ (clipping does not commute), so a wrong order fails.
    """
    recipe = PhotometricRecipe(brightness=1.0, contrast=1.0, saturation=1.0, hue=0.0)
    view = crops[3]
    results = {}
    for code in range(24):
        order = np.array(_permutation(code), dtype=np.int64)
        params = _identity(jitter=True, order=order, brightness=1.9, contrast=0.3, saturation=1.6)
        ours = apply_photometric_uint8(view, params, recipe)
        pil = _pil_view(view, params, recipe)
        assert _levels(ours, pil).max() <= 2, (
            order
        )  # saturation's one level, amplified by later ops
        assert _levels(ours, _float_path(view[None], [params], recipe)[0]).max() <= 6.5, (
            order
        )  # measured 5.8
        key = tuple(order[order != 3].tolist())  # hue is off: its position does not matter
        assert key not in results or np.array_equal(results[key], ours)
        results[key] = ours
    distinct = {r.tobytes() for r in results.values()}
    assert len(results) == 6 and len(distinct) == 6


def _permutation(code: int) -> list[int]:
    remaining, out = [0, 1, 2, 3], []
    for base in (6, 2, 1, 1):
        out.append(remaining.pop(code // base))
        code %= base
    return out


def test_flags_off_and_zero_strengths_are_the_identity(crops):
    view = crops[7]
    out = apply_photometric_uint8(view, _identity(), ALL_OPS)
    assert np.array_equal(out, view) and out is not view
    # jitter on, but every strength zero: torchvision's ColorJitter then does nothing at all
    # (even no HSV round trip, which would not be the identity)
    nothing = PhotometricRecipe(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)
    params = _identity(jitter=True, brightness=1.3, contrast=0.7, saturation=1.2, hue=0.05)
    assert np.array_equal(apply_photometric_uint8(view, params, nothing), view)
    # a jitter op whose flag is off does not run even with a non-neutral factor
    params = _identity(brightness=1.3, sigma=2.0)
    assert np.array_equal(apply_photometric_uint8(view, params, ALL_OPS), view)
    stack = apply_photometric_views(crops[:3], [_identity()] * 3, ALL_OPS)
    assert np.array_equal(stack, crops[:3])


# --- memory layouts, in place, stacks ------------------------------------------------------------


def test_in_place_and_strided_inputs(crops):
    recipe = ALL_OPS
    params = draw_photometric_params(recipe, np.random.default_rng(2))
    params["jitter"] = np.array(True)
    view = crops[5].copy()
    expected = apply_photometric_uint8(view, params, recipe)
    assert np.array_equal(view, crops[5])  # the input is left alone without out
    target = np.empty_like(view)
    assert apply_photometric_uint8(view, params, recipe, out=target) is target
    assert np.array_equal(target, expected)
    assert apply_photometric_uint8(view, params, recipe, out=view) is view
    assert np.array_equal(view, expected)
    frozen = crops[5].copy()
    frozen.flags.writeable = False  # e.g. pixels in a read-only buffer
    assert np.array_equal(apply_photometric_uint8(frozen, params, recipe), expected)
    # a channels-last view of a channels-first array, and a flipped view
    chw = np.ascontiguousarray(crops[5].transpose(2, 0, 1))
    assert np.array_equal(apply_photometric_uint8(chw.transpose(1, 2, 0), params, recipe), expected)
    flipped = apply_photometric_uint8(crops[5][:, ::-1], params, recipe)
    assert np.array_equal(
        flipped, apply_photometric_uint8(crops[5][:, ::-1].copy(), params, recipe)
    )


def test_views_in_both_layouts_and_stacked_params(crops):
    recipe = dinov2_recipes()["local"]
    rng = np.random.default_rng(9)
    params = [draw_photometric_params(recipe, rng) for _ in range(8)]
    views = crops[:8].copy()
    nhwc = apply_photometric_views(views, params, recipe)
    singles = np.stack([apply_photometric_uint8(v, p, recipe) for v, p in zip(views, params)])
    assert np.array_equal(nhwc, singles) and np.array_equal(views, crops[:8])
    nchw = np.ascontiguousarray(views.transpose(0, 3, 1, 2))
    result = apply_photometric_views(nchw, params, recipe)
    assert result.shape == nchw.shape and np.array_equal(result.transpose(0, 2, 3, 1), singles)
    assert np.array_equal(nchw.transpose(0, 2, 3, 1), views)  # the input is left alone
    stacked = {key: np.stack([p[key] for p in params]) for key in PARAM_KEYS}
    assert np.array_equal(apply_photometric_views(views, stacked, recipe), singles)
    # in place, both layouts
    assert apply_photometric_views(nchw, params, recipe, out=nchw) is nchw
    assert np.array_equal(nchw.transpose(0, 2, 3, 1), singles)
    assert apply_photometric_views(views, params, recipe, out=views) is views
    assert np.array_equal(views, singles)
    # an explicit layout settles shapes that fit both
    square = np.ascontiguousarray(np.broadcast_to(crops[0, :3, :3][None], (2, 3, 3, 3)))
    no_blur = PhotometricRecipe(jitter_p=1.0)  # a 3 x 3 view is too small for the blur kernel
    small = [draw_photometric_params(no_blur, rng) for _ in range(2)]
    nhwc_result = apply_photometric_views(square, small, no_blur, layout="NHWC")
    assert np.array_equal(nhwc_result[1], apply_photometric_uint8(square[1], small[1], no_blur))
    nchw_result = apply_photometric_views(square, small, no_blur, layout="NCHW")
    expected = apply_photometric_uint8(square[1].transpose(1, 2, 0), small[1], no_blur)
    assert np.array_equal(nchw_result[1], expected.transpose(2, 0, 1))
    empty = apply_photometric_views(crops[:0], [], recipe)
    assert empty.shape == (0, 64, 64, 3) and empty.dtype == np.uint8


def test_module_keeps_to_numpy_and_opencv():
    assert colour_cpu.PARAM_KEYS is PARAM_KEYS  # one definition (vision/recipes.py), no torch
    code = (
        "import sys, shardstream.vision; before = 'torch' in sys.modules; "
        "import shardstream.vision.colour_cpu, shardstream.vision.supervised; "
        "print(before, 'torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    before, after = result.stdout.split()
    assert after == before


# --- validation ----------------------------------------------------------------------------------


def test_bad_arguments_raise_config_errors(crops):
    view = crops[0]
    params = _identity()
    with pytest.raises(ConfigError, match=r"view must be a \(H, W, 3\) uint8"):
        apply_photometric_uint8(view.astype(np.float32), params, ALL_OPS)
    with pytest.raises(ConfigError, match="view must be"):
        apply_photometric_uint8(view[..., 0], params, ALL_OPS)
    with pytest.raises(ConfigError, match="view must be"):
        apply_photometric_uint8(np.zeros((8, 8, 4), np.uint8), params, ALL_OPS)
    with pytest.raises(ConfigError, match="view must be .* got list"):
        apply_photometric_uint8(view.tolist(), params, ALL_OPS)
    with pytest.raises(ConfigError, match="out must be"):
        apply_photometric_uint8(view, params, ALL_OPS, out=np.empty((32, 32, 3), np.uint8))
    with pytest.raises(ConfigError, match="out must be .*not C-contiguous"):
        apply_photometric_uint8(view, params, ALL_OPS, out=np.empty((64, 128, 3), np.uint8)[:, ::2])
    read_only = np.empty_like(view)
    read_only.flags.writeable = False
    with pytest.raises(ConfigError, match="out must be .*read-only"):
        apply_photometric_uint8(view, params, ALL_OPS, out=read_only)
    with pytest.raises(ConfigError, match="recipe must be a PhotometricRecipe.*'hue'"):
        apply_photometric_uint8(view, params, object())
    with pytest.raises(ConfigError, match="params lack the key 'sigma'"):
        apply_photometric_uint8(view, {k: v for k, v in params.items() if k != "sigma"}, ALL_OPS)
    with pytest.raises(ConfigError, match="'order' must be a permutation"):
        apply_photometric_uint8(view, dict(params, order=np.array([0, 0, 1, 2])), ALL_OPS)
    with pytest.raises(ConfigError, match="not one number"):
        apply_photometric_uint8(view, dict(params, hue=np.zeros(2)), ALL_OPS)
    with pytest.raises(ConfigError, match="params must be a mapping"):
        apply_photometric_uint8(view, [1, 2], ALL_OPS)
    with pytest.raises(ConfigError, match="too large"):
        apply_photometric_uint8(view[:4, :4], params, ALL_OPS)
    with pytest.raises(ConfigError, match="views must be a 4-D uint8"):
        apply_photometric_views(view, [params], ALL_OPS)
    with pytest.raises(ConfigError, match="views must be a 4-D uint8"):
        apply_photometric_views(crops.astype(np.int16), [params] * len(crops), ALL_OPS)
    with pytest.raises(ConfigError, match=r"\(N, H, W, 3\) or \(N, 3, H, W\)"):
        apply_photometric_views(np.zeros((2, 8, 8, 4), np.uint8), [params] * 2, ALL_OPS)
    with pytest.raises(ConfigError, match="pass layout="):
        apply_photometric_views(np.zeros((2, 3, 8, 3), np.uint8), [params] * 2, ALL_OPS)
    with pytest.raises(ConfigError, match="layout must be 'NHWC' or 'NCHW'"):
        apply_photometric_views(crops[:2], [params] * 2, ALL_OPS, layout="HWC")
    with pytest.raises(ConfigError, match="do not have 3 channels in layout NCHW"):
        apply_photometric_views(crops[:2], [params] * 2, ALL_OPS, layout="NCHW")
    with pytest.raises(ConfigError, match="params_list holds 1 parameter sets for 2 views"):
        apply_photometric_views(crops[:2], [params], ALL_OPS)
    with pytest.raises(ConfigError, match=r"params_list\['jitter'\] must have a leading axis"):
        apply_photometric_views(crops[:2], params, ALL_OPS)
    with pytest.raises(ConfigError, match="params_list must be a sequence"):
        apply_photometric_views(crops[:2], 3, ALL_OPS)
    with pytest.raises(
        ConfigError, match="out must be a writeable C-contiguous uint8 array of shape"
    ):
        apply_photometric_views(crops[:2], [params] * 2, ALL_OPS, out=np.empty((2, 8, 8, 3)))


def test_normalize_uint8_equals_the_float_formula_and_checks_its_input():
    from shardstream.vision.colour_cpu import normalize_uint8

    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (2, 3, 5, 7), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    expected = (images / np.float32(255) - np.array(mean, np.float32)[:, None, None]) / np.array(
        std, np.float32
    )[:, None, None]
    out = normalize_uint8(images, mean, std)
    assert out.dtype == np.float32 and np.abs(out - expected).max() < 1e-5
    into = np.empty(images.shape, np.float32)
    written = normalize_uint8(images[0], mean, std, out=into[0])
    assert np.shares_memory(written, into)
    assert np.array_equal(into[0], out[0])
    with pytest.raises(ConfigError, match=r"uint8 \(\.\.\., 3, H, W\)"):
        normalize_uint8(images.astype(np.float32), mean, std)
    with pytest.raises(ConfigError, match=r"uint8 \(\.\.\., 3, H, W\)"):
        normalize_uint8(images[:, :2], mean, std)
    with pytest.raises(ConfigError, match="out must be C-contiguous float32"):
        normalize_uint8(images, mean, std, out=np.empty(images.shape, np.float64))
    # a stack with two leading axes: every plane of every image gets its channel's table
    stack = rng.integers(0, 256, (4, 2, 3, 6, 9), dtype=np.uint8)
    levels = np.arange(256, dtype=np.float32) / np.float32(255)
    tables = [(levels - np.float32(m)) / np.float32(d) for m, d in zip(mean, std)]
    got = normalize_uint8(stack, mean, std)
    for channel in range(3):
        assert np.array_equal(got[:, :, channel], tables[channel][stack[:, :, channel]])
    assert normalize_uint8(stack[:0], mean, std).shape == (0, 2, 3, 6, 9)
