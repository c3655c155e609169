"""Saliency maps, fixation points and boxes through the dense presets' geometry.

Boxes are compared with torchvision v2 (``BoundingBoxes`` through ``resized_crop`` and
``horizontal_flip``, then ``SanitizeBoundingBoxes``) within one pixel; saliency maps with Pillow's
bilinear resize of the map as a grey image (exact where resize_crops' C extension is built).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from shardstream.errors import TargetError
from shardstream.sets.demo import render_demo_image
from shardstream.vision.dense import DenseEvalPreset, SegmentationPreset
from shardstream.vision.resize import EXACT_RESIZE

IMAGE = render_demo_image(5)
WIDTH, HEIGHT = Image.open(io.BytesIO(IMAGE)).size
_yy, _xx = np.mgrid[0:HEIGHT, 0:WIDTH]
SALIENCY = (127 + 120 * np.sin(_xx / 9.0) * np.cos(_yy / 13.0)).astype(np.uint8)


def _boxes(seed: int, count: int = 30) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(0, WIDTH - 2, count)
    y1 = rng.uniform(0, HEIGHT - 2, count)
    x2 = np.minimum(x1 + rng.uniform(1, WIDTH / 2, count), WIDTH)
    y2 = np.minimum(y1 + rng.uniform(1, HEIGHT / 2, count), HEIGHT)
    return np.stack([x1, y1, x2, y2], 1)


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, "PNG")
    return out.getvalue()


TARGETS = {"sal": "saliency", "bb": "boxes", "fix": "points"}


@pytest.mark.parametrize("mode", ["resized_crop", "scale"])
def test_boxes_equal_torchvision_v2_within_one_pixel_with_their_labels(mode):
    preset = SegmentationPreset(
        size=(160, 200), mode=mode, targets=TARGETS, box_labels={"bb": "cls"}, max_objects=40
    )
    dropped = 0
    for seed in range(15):
        boxes = _boxes(seed)
        labels = np.arange(len(boxes)) + 100
        sample = {"image": IMAGE, "sal": _png(SALIENCY), "bb": boxes, "cls": labels, "fix": []}
        out = preset.worker(sample, np.random.default_rng(seed))
        plan = preset.plan_for(HEIGHT, WIDTH, np.random.default_rng(seed))
        tv = tv_tensors.BoundingBoxes(
            torch.from_numpy(boxes), format="XYXY", canvas_size=(HEIGHT, WIDTH)
        )
        box, (rh, rw), (top, left, h, w) = plan.box, plan.resized, plan.window
        tv = F.resized_crop(tv, *box, [rh, rw])
        tv = F.crop(tv, top, left, h, w)  # a crop reaching past the canvas clips there too
        if plan.flip:
            tv = F.horizontal_flip(tv)
        kept = v2.SanitizeBoundingBoxes(min_size=1)(
            {"boxes": tv, "labels": torch.from_numpy(labels)}
        )
        count = int(out["bb_valid"].sum())
        dropped += len(boxes) - count
        assert out["bb_valid"].tolist() == [True] * count + [False] * (40 - count)
        assert out["cls"][:count].tolist() == kept["labels"].tolist()
        assert (out["cls"][count:] == -1).all() and (out["bb"][count:] == 0).all()
        assert np.abs(out["bb"][:count] - kept["boxes"].numpy()).max(initial=0) <= 1.0
        assert out["bb"].dtype == np.float32 and out["bb"].shape == (40, 4)
    assert dropped > 0  # the crops did drop boxes


def test_saliency_is_the_grey_map_resized_bilinear_with_the_image():
    preset = SegmentationPreset(size=(120, 90), targets={"sal": "saliency"})
    for seed in range(6):
        out = preset.worker({"image": IMAGE, "sal": _png(SALIENCY)}, np.random.default_rng(seed))
        plan = preset.plan_for(HEIGHT, WIDTH, np.random.default_rng(seed))
        expected = F.resized_crop(Image.fromarray(SALIENCY), *plan.box, [120, 90], antialias=True)
        if plan.flip:
            expected = F.horizontal_flip(expected)
        expected = np.asarray(expected)
        assert out["sal"].dtype == np.uint8 and out["sal"].shape == (120, 90)
        tolerance = 0 if EXACT_RESIZE else 1
        assert np.abs(out["sal"].astype(int) - expected).max() <= tolerance


def test_fixation_points_move_with_the_geometry_and_outside_ones_drop():
    preset = SegmentationPreset(size=100, targets={"fix": "points"}, max_objects=500)
    rng = np.random.default_rng(3)
    points = np.stack([rng.uniform(0, WIDTH, 300), rng.uniform(0, HEIGHT, 300)], 1)
    for seed in range(8):
        out = preset.worker({"image": IMAGE, "fix": points}, np.random.default_rng(seed))
        plan = preset.plan_for(HEIGHT, WIDTH, np.random.default_rng(seed))
        top, left, h, w = plan.box
        x = (points[:, 0] - left) * 100 / w
        y = (points[:, 1] - top) * 100 / h
        inside = (x >= 0) & (x < 100) & (y >= 0) & (y < 100)
        if plan.flip:
            x = 100 - x
        expected = np.stack([x, y], 1)[inside]
        count = int(out["fix_valid"].sum())
        assert count == inside.sum()
        np.testing.assert_allclose(out["fix"][:count], expected, atol=1e-4)


def test_a_point_and_a_box_under_a_known_flip():
    preset = DenseEvalPreset(resize_size=None, targets={"bb": "boxes", "fix": "points"})
    out = preset.worker({"image": IMAGE, "bb": [[10, 20, 50, 60]], "fix": [[5.5, 7.25]]})
    assert out["bb"][0].tolist() == [10, 20, 50, 60] and out["fix"][0].tolist() == [5.5, 7.25]
    flip = SegmentationPreset(
        size=(HEIGHT, WIDTH), scale=(1, 1), ratio=(WIDTH / HEIGHT,) * 2, flip_p=1.0,
        targets={"bb": "boxes", "fix": "points"},
    )  # fmt: skip
    sample = {"image": IMAGE, "bb": [[10, 20, 50, 60]], "fix": [[5.5, 7.25]]}
    out = flip.worker(sample, np.random.default_rng(0))
    assert flip.plan_for(HEIGHT, WIDTH, np.random.default_rng(0)).box == (0, 0, HEIGHT, WIDTH)
    assert out["bb"][0].tolist() == [WIDTH - 50, 20, WIDTH - 10, 60]
    assert out["fix"][0].tolist() == [WIDTH - 5.5, 7.25]


def test_bad_boxes_and_too_many_objects_raise():
    preset = SegmentationPreset(size=64, targets={"bb": "boxes"}, box_labels={"bb": "cls"})
    rng = np.random.default_rng(0)
    cases = [
        ({"bb": [[1, 2, 3]], "cls": [0]}, "must be \\(N, 4\\)"),
        ({"bb": [[5, 5, 1, 1]], "cls": [0]}, "x2 < x1"),
        ({"bb": [[0, 0, np.nan, 4]], "cls": [0]}, "not finite"),
        ({"bb": [["a", 0, 1, 1]], "cls": [0]}, "numbers"),
        ({"bb": [[0, 0, 4, 4]], "cls": [0, 1]}, "2 labels for 1 boxes"),
    ]
    for fields, message in cases:
        with pytest.raises(TargetError, match=message):
            preset.worker({"key": "k", "image": IMAGE, **fields}, rng)
    few = SegmentationPreset(size=64, scale=(1, 1), targets={"bb": "boxes"}, max_objects=2)
    with pytest.raises(TargetError, match="max_objects=2"):
        few.worker({"image": IMAGE, "bb": [[0, 0, WIDTH, HEIGHT]] * 3}, rng)
    empty = few.worker({"image": IMAGE, "bb": []}, rng)
    assert empty["bb_valid"].tolist() == [False, False]
