"""dinov2's ``transforms`` (shardstream.compat.dinov2.transforms) and the matching fast presets.

Each transform is checked against the torchvision composition dinov2's source describes, written
out here, on PIL images under the same ``torch.manual_seed``: the very same pixels and floats.
Defaults are compared with upstream's (dinov2 ``data/transforms.py``, as listed in the seed and
the reference notes). The fast presets are built with the same arguments and must be the presets
configured as the transforms; for a fixed crop box and flip their output equals the transform's
where the presets claim equality already (tests/vision/test_supervised.py): the training crop is
bit-identical at a full-size decode with the C resize extension (within 2 grey levels without it),
the evaluation preset, which resizes the centre box once, is close (mean under 0.5 levels).
"""

from __future__ import annotations

import inspect
import io
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib
from PIL import Image, ImageOps

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

import torchvision.transforms.functional as F  # noqa: E402
from torchvision import transforms as T  # noqa: E402

import shardstream  # noqa: E402
from shardstream.compat.dinov2 import transforms as ours  # noqa: E402
from shardstream.errors import ConfigError  # noqa: E402
from shardstream.sets.demo import render_demo_image  # noqa: E402
from shardstream.vision.recipes import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from shardstream.vision.resize import EXACT_RESIZE  # noqa: E402
from shardstream.vision.supervised import (  # noqa: E402
    EvalPreset,
    SupervisedPreset,
    make_classification_eval_preset,
    make_classification_train_preset,
)

from ...contracts.images import encode, smooth_rgb  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # dinov2's (timm's) constants
BICUBIC = T.InterpolationMode.BICUBIC
DEMO = render_demo_image(3)
SMOOTH = encode(smooth_rgb(300, 420), quality=90)
SMALL = Image.fromarray(
    np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
)  # noise: any blur changes it

#: upstream's signatures: name -> [(parameter, kind, default)]
KW, POS = inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD
UPSTREAM = {
    "GaussianBlur": [("p", KW, 0.5), ("radius_min", KW, 0.1), ("radius_max", KW, 2.0)],
    "make_normalize_transform": [("mean", POS, MEAN), ("std", POS, STD)],
    "make_classification_train_transform": [
        ("crop_size", KW, 224),
        ("interpolation", KW, BICUBIC),
        ("hflip_prob", KW, 0.5),
        ("mean", KW, MEAN),
        ("std", KW, STD),
    ],
    "make_classification_eval_transform": [
        ("resize_size", KW, 256),
        ("interpolation", KW, BICUBIC),
        ("crop_size", KW, 224),
        ("mean", KW, MEAN),
        ("std", KW, STD),
    ],
}


def _pil(data: bytes) -> Image.Image:
    return ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")


def _seeded(transform, image, seed):
    torch.manual_seed(seed)
    return transform(image)


def _params(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_defaults_and_constants_are_upstreams():
    for name, params in UPSTREAM.items():
        fn = getattr(ours, name)
        assert _params(fn.__init__ if inspect.isclass(fn) else fn)[-len(params) :] == params
    assert ours.IMAGENET_DEFAULT_MEAN == MEAN and ours.IMAGENET_DEFAULT_STD == STD
    blur = ours.GaussianBlur()
    assert isinstance(blur, T.RandomApply) and blur.p == 0.5 and len(blur.transforms) == 1
    assert isinstance(blur.transforms[0], T.GaussianBlur)
    assert blur.transforms[0].kernel_size == (9, 9) and blur.transforms[0].sigma == (0.1, 2.0)
    assert ours.GaussianBlur(p=0.1).p == pytest.approx(0.9)  # dinov2's inverted probability
    assert issubclass(ours.MaybeToTensor, T.ToTensor)
    train = ours.make_classification_train_transform()
    crop, flip, to_tensor, norm = train.transforms
    assert (crop.size, crop.scale, crop.ratio, crop.interpolation) == (
        (224, 224),
        (0.08, 1.0),
        (3 / 4, 4 / 3),
        BICUBIC,
    )
    assert flip.p == 0.5 and isinstance(to_tensor, ours.MaybeToTensor)
    assert (norm.mean, norm.std) == (MEAN, STD)
    resize, center, to_tensor, norm = ours.make_classification_eval_transform().transforms
    assert (resize.size, resize.interpolation, center.size) == (256, BICUBIC, (224, 224))
    assert isinstance(to_tensor, ours.MaybeToTensor) and (norm.mean, norm.std) == (MEAN, STD)


def test_root_exports_the_same_objects():
    for name in [*UPSTREAM, "MaybeToTensor", "IMAGENET_DEFAULT_MEAN", "IMAGENET_DEFAULT_STD"]:
        assert getattr(shardstream, name) is getattr(ours, name), name
        assert name in shardstream.__all__
    for name in ("make_classification_train_preset", "make_classification_eval_preset"):
        assert getattr(shardstream, name) is globals()[name] and name in shardstream.__all__


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 1.0])
def test_gaussian_blur_equals_torchvision_random_apply_of_1_minus_p(p):
    reference = T.RandomApply([T.GaussianBlur(kernel_size=9, sigma=(0.1, 2.0))], p=1 - p)
    blurred = 0
    for seed in range(40):
        got = _seeded(ours.GaussianBlur(p=p), SMALL, seed)
        want = _seeded(reference, SMALL, seed)
        assert np.array_equal(np.asarray(got), np.asarray(want)), (p, seed)
        blurred += got is not SMALL
    assert blurred == {0.0: 40, 1.0: 0}.get(p, blurred)  # p=1 never blurs, p=0 always
    assert 0 < blurred < 40 or p in (0.0, 1.0)
    custom = T.RandomApply([T.GaussianBlur(9, sigma=(0.5, 0.7))], p=1.0)
    got = _seeded(ours.GaussianBlur(p=0.0, radius_min=0.5, radius_max=0.7), SMALL, 3)
    assert np.array_equal(np.asarray(got), np.asarray(_seeded(custom, SMALL, 3)))


def test_gaussian_blur_rejects_bad_arguments():
    for kwargs in ({"p": 1.5}, {"p": -0.1}, {"radius_min": 0.0}, {"radius_min": 3.0}):
        with pytest.raises(ConfigError):
            ours.GaussianBlur(**kwargs)
    with pytest.raises(TypeError):  # keyword-only, as upstream
        ours.GaussianBlur(0.5)


def test_maybe_to_tensor():
    tensor = torch.rand(3, 4, 5)
    assert ours.MaybeToTensor()(tensor) is tensor
    for pic in (SMALL, np.array(SMALL)):
        assert torch.equal(ours.MaybeToTensor()(pic), T.ToTensor()(pic))
    with pytest.raises(TypeError):
        ours.MaybeToTensor()("not an image")


def test_normalize_transform():
    norm = ours.make_normalize_transform()
    x = T.ToTensor()(SMALL)
    assert isinstance(norm, T.Normalize)
    assert torch.equal(norm(x), T.Normalize(MEAN, STD)(x))
    assert torch.equal(ours.make_normalize_transform([0.5] * 3, [0.25] * 3)(x), (x - 0.5) / 0.25)
    with pytest.raises(ConfigError):
        ours.make_normalize_transform((0.5, 0.5), (0.5, 0.5, 0.5))
    with pytest.raises(ConfigError):
        ours.make_normalize_transform((0.5,) * 3, (0.5, 0.0, 0.5))


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"crop_size": 96, "hflip_prob": 0.0}, {"interpolation": T.InterpolationMode.BILINEAR}],
)
def test_train_transform_equals_the_torchvision_composition(kwargs):
    crop_size = kwargs.get("crop_size", 224)
    interpolation = kwargs.get("interpolation", BICUBIC)
    steps = [T.RandomResizedCrop(crop_size, interpolation=interpolation)]
    if kwargs.get("hflip_prob", 0.5) > 0:
        steps.append(T.RandomHorizontalFlip(0.5))
    reference = T.Compose([*steps, T.ToTensor(), T.Normalize(MEAN, STD)])
    transform = ours.make_classification_train_transform(**kwargs)
    assert len(transform.transforms) == len(reference.transforms)
    image = _pil(DEMO)
    for seed in range(4):
        got = _seeded(transform, image, seed)
        assert got.shape == (3, crop_size, crop_size) and got.dtype == torch.float32
        assert torch.equal(got, _seeded(reference, image, seed)), seed
    # the draws are the composition's: the generator ends where the reference leaves it
    _seeded(transform, image, 9)
    after = torch.rand(1)
    _seeded(reference, image, 9)
    assert torch.equal(after, torch.rand(1))


def test_eval_transform_equals_the_torchvision_composition():
    for kwargs, (resize, crop) in (
        ({}, (256, 224)),
        ({"resize_size": 160, "crop_size": 128}, (160, 128)),
    ):
        reference = T.Compose(
            [
                T.Resize(resize, interpolation=BICUBIC),
                T.CenterCrop(crop),
                T.ToTensor(),
                T.Normalize(MEAN, STD),
            ]
        )
        for data in (DEMO, SMOOTH):
            got = ours.make_classification_eval_transform(**kwargs)(_pil(data))
            assert got.shape == (3, crop, crop)
            assert torch.equal(got, reference(_pil(data)))


def test_presets_are_the_transforms_configuration():
    train = make_classification_train_preset()
    assert train == SupervisedPreset(
        size=224, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), flip_p=0.5, interpolation="bicubic"
    )
    crop = ours.make_classification_train_transform().transforms[0]
    assert (train.size, train.scale, train.ratio) == (crop.size, crop.scale, crop.ratio)
    assert (train.mean, train.std) == (MEAN, STD) == (IMAGENET_MEAN, IMAGENET_STD)
    assert make_classification_eval_preset() == EvalPreset(
        resize_size=256, crop_size=224, interpolation="bicubic"
    )
    custom = make_classification_train_preset(
        crop_size=96,
        interpolation=T.InterpolationMode.BILINEAR,
        hflip_prob=0.0,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        label_field=None,
    )
    assert (custom.size, custom.interpolation, custom.flip_p) == ((96, 96), "bilinear", 0.0)
    assert (custom.mean, custom.std, custom.label_field) == ((0.5,) * 3, (0.25,) * 3, None)
    evaluation = make_classification_eval_preset(
        resize_size=160, crop_size=128, interpolation="bilinear"
    )
    assert (evaluation.resize_size, evaluation.crop_size, evaluation.interpolation) == (
        160,
        (128, 128),
        "bilinear",
    )
    # the presets' defaults are the transforms' defaults
    for preset_fn, transform_fn in (
        (make_classification_train_preset, ours.make_classification_train_transform),
        (make_classification_eval_preset, ours.make_classification_eval_transform),
    ):
        preset_params = {n: d for n, _, d in _params(preset_fn) if n != "options"}
        transform_params = {n: d for n, _, d in _params(transform_fn)}
        transform_params["interpolation"] = transform_params["interpolation"].value
        assert preset_params == transform_params
    with pytest.raises(ConfigError):
        make_classification_train_preset(interpolation=T.InterpolationMode.NEAREST)
    with pytest.raises(ConfigError):
        make_classification_eval_preset(resize_size=100, crop_size=128)


@pytest.mark.parametrize("data", [DEMO, SMOOTH], ids=["demo", "smooth"])
def test_train_preset_equals_the_transform_for_a_fixed_box_and_flip(data):
    preset = make_classification_train_preset()
    transform = ours.make_classification_train_transform()
    crop, _, to_tensor, normalize = transform.transforms
    image = _pil(data)
    flips = 0
    for seed in range(8):
        box, flip = preset.plan(image.height, image.width, np.random.default_rng(seed))
        out = preset.worker({"image": data, "label": 3}, np.random.default_rng(seed))
        assert out["label"] == 3
        ours_float = preset.device({"image": torch.from_numpy(out["image"][None])})["image"][0]
        view = F.resized_crop(image, *box, list(crop.size), crop.interpolation, antialias=True)
        view = F.hflip(view) if flip else view
        want_float = normalize(to_tensor(view))
        diff = np.abs(out["image"].astype(int) - np.asarray(view).transpose(2, 0, 1).astype(int))
        assert diff.max() <= (0 if EXACT_RESIZE else 2), (seed, box)
        if EXACT_RESIZE:
            assert torch.allclose(ours_float, want_float, atol=1e-5, rtol=0)
        flips += flip
    assert 0 < flips < 8  # both paths were checked


def test_eval_preset_is_close_to_the_transform():
    preset = make_classification_eval_preset()
    transform = ours.make_classification_eval_transform()
    std = torch.tensor(STD).view(3, 1, 1)
    for data in (DEMO, SMOOTH):
        out = preset.worker({"image": data, "label": 0})
        ours_float = preset.device({"image": torch.from_numpy(out["image"][None])})["image"][0]
        levels = ((ours_float - transform(_pil(data))).abs() * std * 255).numpy()
        assert levels.mean() < 0.5 and (levels > 2.5).mean() < 0.02, levels.mean()


def test_without_torchvision_the_names_raise_naming_the_extra():
    # a real interpreter in which torchvision cannot be imported
    code = (
        "import sys; sys.modules['torchvision'] = None\n"
        "import shardstream\n"
        "from shardstream.errors import MissingDependencyError\n"
        "p = shardstream.make_classification_train_preset(crop_size=64)\n"
        "assert p.size == (64, 64) and 'torchvision' not in str(type(p))\n"
        "for name in ('GaussianBlur', 'make_classification_eval_transform', 'IMAGENET_DEFAULT_MEAN'):\n"
        "    try:\n"
        "        getattr(shardstream, name)\n"
        "    except MissingDependencyError as e:\n"
        "        assert isinstance(e, ImportError)\n"
        "        print(e)\n"
    )
    root = Path(shardstream.__file__).parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3
    assert all("pip install 'shardstream[torchvision]'" in line for line in lines)
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    extra = pyproject["project"]["optional-dependencies"]["torchvision"]
    assert any(req.startswith("torchvision") for req in extra)


def test_transforms_pickle_for_spawned_workers():
    image = _pil(DEMO)
    for transform in (
        ours.GaussianBlur(p=0.2),
        ours.make_classification_train_transform(crop_size=64),
        ours.make_classification_eval_transform(),
    ):
        copy = pickle.loads(pickle.dumps(transform))
        assert type(copy) is type(transform)
        got, want = _seeded(copy, image, 5), _seeded(transform, image, 5)
        if isinstance(got, torch.Tensor):
            assert torch.equal(got, want)
        else:
            assert np.array_equal(np.asarray(got), np.asarray(want))
