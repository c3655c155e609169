"""Where DataAugmentationDINO's and MaskingGenerator's randomness comes from, as in dinov2.

dinov2 draws its views from torch's global generator (torchvision v1 transforms: ``torch.rand``,
``torch.randint``, ``torch.randperm``, ``uniform_``) and its masks from Python's ``random``; torch's
``DataLoader`` seeds both in every worker (``base_seed + worker_id``, with a new ``base_seed``
drawn from the parent's torch generator for every epoch). So views and masks differ across
workers and epochs and ``torch.manual_seed`` before building the loader reproduces them.

The reference below is dinov2's ``DataAugmentationDINO`` written with torchvision transforms on
PIL images, as upstream does (dinov2 is not installed); it records which random ops ran (a
torchvision transform that is not applied returns its input object). Views here are small (64 x
64 source, 32 and 16 pixel crops) so that many samples run in a few seconds.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import chi2_contingency, ks_2samp
from torch.utils.data import DataLoader, get_worker_info
from torchvision import transforms

from shardstream.vision.augmentations import DataAugmentationDINO
from shardstream.vision.masking import MaskingGenerator
from shardstream.vision.photometric import IMAGENET_MEAN, IMAGENET_STD

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GLOBAL_SCALE, LOCAL_SCALE = (0.32, 1.0), (0.05, 0.32)
GLOBAL_SIZE, LOCAL_SIZE, LOCALS = 32, 16, 4
BICUBIC = transforms.InterpolationMode.BICUBIC
KINDS = ("global_1", "global_2", "local")


# --- the reference: dinov2's DataAugmentationDINO on torchvision, recording applied ops ------


class _Recorded(transforms.RandomApply):
    """A torchvision random transform that notes in ``log[name]`` whether it ran."""

    def __init__(self, transform, name: str, log: dict):
        super().__init__([transform], p=1.0)
        self.inner, self.name, self.log = transform, name, log

    def forward(self, img):
        out = self.inner(img)
        self.log.setdefault(self.name, []).append(out is not img)
        return out


class ReferenceDINO:
    """dinov2's DataAugmentationDINO (dinov2/data/augmentations.py), torchvision on PIL."""

    def __init__(self, local_crops_number: int = LOCALS):
        self.log: dict[str, list[bool]] = {}
        self.local_crops_number = local_crops_number

        def geometric(size, scale):
            return transforms.Compose(
                [
                    transforms.RandomResizedCrop(size, scale=scale, interpolation=BICUBIC),
                    transforms.RandomHorizontalFlip(p=0.5),
                ]
            )

        def colour(kind):
            jitter = transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)
            return [
                _Recorded(transforms.RandomApply([jitter], p=0.8), f"{kind}/jitter", self.log),
                _Recorded(transforms.RandomGrayscale(p=0.2), f"{kind}/grayscale", self.log),
            ]

        def blur(kind, p):  # dinov2's GaussianBlur hands 1 - p to RandomApply
            inner = transforms.GaussianBlur(kernel_size=9, sigma=(0.1, 2.0))
            return _Recorded(transforms.RandomApply([inner], p=1 - p), f"{kind}/blur", self.log)

        normalize = [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
        solarize = transforms.RandomSolarize(threshold=128, p=0.2)
        self.geometric_global = geometric(GLOBAL_SIZE, GLOBAL_SCALE)
        self.geometric_local = geometric(LOCAL_SIZE, LOCAL_SCALE)
        self.global_1 = transforms.Compose(colour("global_1") + [blur("global_1", 1.0)] + normalize)
        self.global_2 = transforms.Compose(
            colour("global_2")
            + [blur("global_2", 0.1), _Recorded(solarize, "global_2/solarize", self.log)]
            + normalize
        )
        self.local = transforms.Compose(colour("local") + [blur("local", 0.5)] + normalize)

    def __call__(self, image):
        crop_1 = self.global_1(self.geometric_global(image))
        crop_2 = self.global_2(self.geometric_global(image))
        local = [self.local(self.geometric_local(image)) for _ in range(self.local_crops_number)]
        return {
            "global_crops": [crop_1, crop_2],
            "global_crops_teacher": [crop_1, crop_2],
            "local_crops": local,
            "offsets": (),
        }


def _ours() -> DataAugmentationDINO:
    return DataAugmentationDINO(GLOBAL_SCALE, LOCAL_SCALE, LOCALS, GLOBAL_SIZE, LOCAL_SIZE)


@pytest.fixture(scope="module")
def source() -> Image.Image:
    """A 64 x 64 strongly coloured image (no gray pixel), smooth with some texture."""
    rng = np.random.default_rng(0)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((64, 64), Image.Resampling.BICUBIC), dtype=np.int16)
    pixels = smooth + rng.integers(-12, 13, smooth.shape)
    pixels[..., 0] = np.maximum(pixels[..., 0], pixels[..., 1:].max(axis=2) + 40)  # red leads
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


# --- a real 2-worker DataLoader over one repeated image ---------------------------------------


class _Repeated(torch.utils.data.Dataset):
    """``length`` samples of the same image through ``augment``: (worker id, views)."""

    def __init__(self, image: Image.Image, augment, length: int):
        self.image, self.augment, self.length = image, augment, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        out = self.augment(self.image)
        return get_worker_info().id, out["global_crops"] + out["local_crops"]


def _load(image, augment, *, seed: int, length: int, epochs: int) -> list[list[tuple]]:
    """Per epoch, per sample: ``(worker, views)`` from a fresh 2-worker loader."""
    torch.manual_seed(seed)
    loader = DataLoader(
        _Repeated(image, augment, length),
        batch_size=None,
        num_workers=2,
        multiprocessing_context="fork",
    )
    return [list(loader) for _ in range(epochs)]


def _views(run) -> list[torch.Tensor]:
    return [view for epoch in run for _, views in epoch for view in views]


def test_views_differ_across_workers_and_epochs_and_reproduce_under_manual_seed(source):
    augment = _ours()
    first = _load(source, augment, seed=1, length=8, epochs=2)
    again = _load(source, augment, seed=1, length=8, epochs=2)
    other = _load(source, augment, seed=2, length=8, epochs=2)
    for epoch in first:
        assert [worker for worker, _ in epoch] == [0, 1] * 4  # round robin over both workers
    views = _views(first)
    assert len(views) == 2 * 8 * (2 + LOCALS)
    # every view differs from every other: across workers, epochs and samples
    assert len({view.numpy().tobytes() for view in views}) == len(views)
    for (_, a), (_, b) in zip(first[0][0::2], first[0][1::2]):  # worker 0's vs worker 1's
        assert not any(torch.equal(x, y) for x, y in zip(a, b))
    for (_, a), (_, b) in zip(first[0], first[1]):  # epoch 0's vs epoch 1's
        assert not any(torch.equal(x, y) for x, y in zip(a, b))
    # torch.manual_seed before building the loader reproduces every view; another seed does not
    assert all(torch.equal(x, y) for x, y in zip(views, _views(again), strict=True))
    assert not any(torch.equal(x, y) for x, y in zip(views, _views(other), strict=True))


def test_loader_views_equal_dinov2s_for_the_same_seed(source):
    """Under the same 2-worker loader and torch seed, dinov2's class makes the very same views."""
    ours = _views(_load(source, _ours(), seed=3, length=6, epochs=2))
    theirs = _views(_load(source, ReferenceDINO(), seed=3, length=6, epochs=2))
    assert len(ours) == len(theirs) == 2 * 6 * (2 + LOCALS)
    assert all(torch.equal(x, y) for x, y in zip(ours, theirs, strict=True))


def test_default_mode_draws_torchs_stream_as_dinov2():
    """Same torch seed: bit-identical views and the same torch state after the call.

    Images of many shapes, including strips where no random box fits and
    ``RandomResizedCrop`` falls back to its centred box, and both blur settings.
    """
    rng = np.random.default_rng(4)
    for blur in ("dinov2", "documented"):
        ours = DataAugmentationDINO(GLOBAL_SCALE, LOCAL_SCALE, 3, 40, 20, blur=blur)
        reference = ReferenceDINO(3)
        if blur == "documented":  # GaussianBlur as documented: RandomApply(p) itself
            for kind, p in (("global_1", 1.0), ("global_2", 0.1), ("local", 0.5)):
                getattr(reference, kind).transforms[2].inner.p = p
        reference.geometric_global.transforms[0].size = (40, 40)
        reference.geometric_local.transforms[0].size = (20, 20)
        for i, (height, width) in enumerate([(64, 64), (30, 400), (400, 30), (41, 57), (97, 23)]):
            coarse = rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)
            image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
            torch.manual_seed(100 + i)
            a = ours(image)
            after_ours = torch.rand(4)
            torch.manual_seed(100 + i)
            b = reference(image)
            after_reference = torch.rand(4)
            for key in ("global_crops", "local_crops"):
                assert all(torch.equal(x, y) for x, y in zip(a[key], b[key], strict=True))
            assert torch.equal(after_ours, after_reference)


def test_only_torchs_seed_matters_by_default_and_an_explicit_rng_ignores_it(source):
    """dinov2's transforms draw nothing from ``random`` or NumPy's global state."""
    augment = _ours()
    outputs = []
    for seed in (0, 1):
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(5)
        outputs.append(augment(source))
    torch.manual_seed(6)
    outputs.append(augment(source))
    views = [out["global_crops"] + out["local_crops"] for out in outputs]
    assert all(torch.equal(x, y) for x, y in zip(views[0], views[1]))
    assert not any(torch.equal(x, y) for x, y in zip(views[0], views[2]))
    # an explicit generator: the same views whatever torch's state (deterministic mode)
    seeded = [DataAugmentationDINO(GLOBAL_SCALE, LOCAL_SCALE, 2, 32, 16, rng=9) for _ in "ab"]
    torch.manual_seed(0)
    a = seeded[0](source)
    torch.manual_seed(1)
    b = seeded[1](source)
    assert all(torch.equal(x, y) for x, y in zip(a["global_crops"], b["global_crops"]))


def _levels(view: torch.Tensor) -> torch.Tensor:
    """A normalised view back on the 0..255 scale (float64)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64).view(3, 1, 1)
    return (view.double() * std + mean) * 255


def test_views_are_uint8_images_as_in_dinov2s_pil_pipeline(source):
    """Every op rounds to uint8 as on PIL: each pixel of every view is a whole level."""
    for rng in (None, 7):
        augment = DataAugmentationDINO(GLOBAL_SCALE, LOCAL_SCALE, 8, 32, 16, rng=rng)
        torch.manual_seed(7)
        for _ in range(10):
            out = augment(source)
            for view in out["global_crops"] + out["local_crops"]:
                levels = _levels(view)
                assert (levels - levels.round()).abs().max().item() < 1e-3


# --- distributions: our views from the loader against the reference's -------------------------

SAMPLES = 360


def _statistics(views_per_sample: list[list[torch.Tensor]]) -> dict[str, dict[str, np.ndarray]]:
    """Per view kind: each view's mean, std, share of pixels above 0.5, and grayscale flag."""
    stats = {kind: {"mean": [], "std": [], "above": [], "gray": []} for kind in KINDS}
    for views in views_per_sample:
        for index, view in enumerate(views):
            kind = KINDS[min(index, 2)]
            levels = _levels(view).round() / 255
            stats[kind]["mean"].append(levels.mean().item())
            stats[kind]["std"].append(levels.std().item())
            stats[kind]["above"].append((levels > 0.5).double().mean().item())
            stats[kind]["gray"].append(bool((levels == levels[:1]).all()))
    return {kind: {k: np.array(v) for k, v in s.items()} for kind, s in stats.items()}


def _ours_rates(seed: int, count: int) -> dict[str, np.ndarray]:
    """Blur and solarise decisions of ``count`` images' plans drawn from torch's generator."""
    augment = _ours()
    torch.manual_seed(seed)
    plans = [augment.plan(64, 64) for _ in range(count)]
    return {
        f"{plan.kind}/{op}": np.array([bool(p[i].params[op]) for p in plans])
        for i, plan in enumerate(plans[0][:3])
        for op in ("blur", "solarize")
        if op == "blur" or plan.kind == "global_2"
    }


def _agree(ours: np.ndarray, theirs: np.ndarray) -> float:
    """p value of a chi-square test that two boolean samples have the same rate."""
    table = [[ours.sum(), (~ours).sum()], [theirs.sum(), (~theirs).sum()]]
    if min(sum(column) for column in zip(*table)) == 0:  # both all True or all False
        return 1.0
    return chi2_contingency(table).pvalue


def test_distributions_match_dinov2(source):
    """KS over per-view pixel statistics and rates of grayscale, blur and solarisation, p > 0.01.

    Ours come from a 2-worker loader (seed 11); the reference runs in this process (seed 12).
    """
    ours = [views for _, views in _load(source, _ours(), seed=11, length=SAMPLES, epochs=1)[0]]
    reference = ReferenceDINO()
    torch.manual_seed(12)
    theirs = []
    for _ in range(SAMPLES):
        out = reference(source)
        theirs.append(out["global_crops"] + out["local_crops"])
    a, b = _statistics(ours), _statistics(theirs)
    for kind in KINDS:
        assert (
            len(a[kind]["mean"])
            == len(b[kind]["mean"])
            == SAMPLES * (LOCALS if kind == "local" else 1)
        )
        for name in ("mean", "std", "above"):
            p = ks_2samp(a[kind][name], b[kind][name]).pvalue
            assert p > 0.01, f"{kind} {name}: KS p = {p:.3g}"
        # grayscale, seen in the pixels (the source has no gray pixel), against the recorded rate
        recorded = np.array(reference.log[f"{kind}/grayscale"])
        assert (b[kind]["gray"] == recorded).all()
        p = _agree(a[kind]["gray"], b[kind]["gray"])
        assert p > 0.01 and abs(a[kind]["gray"].mean() - 0.2) < 0.05, (kind, p)
    # blur and solarisation: our plans' decisions against the reference's recorded ones
    rates = _ours_rates(13, SAMPLES)
    expected = {"global_1/blur": 0.0, "global_2/blur": 0.9, "local/blur": 0.5}
    expected["global_2/solarize"] = 0.2
    for name, p_nominal in expected.items():
        mine = rates[name]
        recorded = np.array(reference.log[name][: len(mine)])
        p = _agree(mine, recorded)
        assert p > 0.01 and abs(mine.mean() - p_nominal) < 0.06, (name, p, mine.mean())


# --- MaskingGenerator: Python's random, which the loader seeds per worker ----------------------


class _Masks(torch.utils.data.Dataset):
    def __init__(self, length: int):
        self.generator = MaskingGenerator((14, 14), max_num_patches=98.0)
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> np.ndarray:
        return self.generator(60)


def _mask_run(seed: int) -> list[np.ndarray]:
    torch.manual_seed(seed)
    loader = DataLoader(_Masks(8), batch_size=None, num_workers=2, multiprocessing_context="fork")
    return [mask.numpy() for _ in range(2) for mask in loader]


def test_masking_generator_draws_per_worker_and_epoch_as_dinov2():
    """dinov2's MaskingGenerator draws from ``random`` at call time; ours too (no held state)."""
    first, again, other = _mask_run(1), _mask_run(1), _mask_run(2)
    assert len(first) == 16 and all(mask.sum() > 0 for mask in first)
    assert len({mask.tobytes() for mask in first}) == 16  # workers and epochs all differ
    assert all((a == b).all() for a, b in zip(first, again))
    assert sum((a == b).all() for a, b in zip(first, other)) == 0
    # in one process: ``random.seed`` reproduces the masks, whatever torch's seed
    generator = MaskingGenerator((14, 14), max_num_patches=98.0)
    random.seed(3)
    torch.manual_seed(0)
    a = generator(60)
    random.seed(3)
    torch.manual_seed(1)
    assert (generator(60) == a).all()
