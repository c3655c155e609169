"""The miniature VOC2012 and Cityscapes sets, written by ``shardstream write``, through the dense
presets and the Loader: the masks hold the right class indices, checked against the colour maps."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from shardstream import Loader, MsgpackReader
from shardstream.order.samplers.seeds import sample_rng
from shardstream.sets import voc2012
from shardstream.vision.dense import DenseEvalPreset, SegmentationPreset

from ..sets.datadings_sources import jpeg, png, write_tar, write_zip

VOC_ROOT = "VOCdevkit/VOC2012"
VOC_NAMES = ["2007_000032", "2007_000039", "2008_000123", "2008_000124"]

# cityscapesscripts' labels.py: the colour of each labelId 0-33
CITYSCAPES_COLORS = np.array(
    [(0, 0, 0)] * 5
    + [(111, 74, 0), (81, 0, 81), (128, 64, 128), (244, 35, 232), (250, 170, 160)]
    + [(230, 150, 140), (70, 70, 70), (102, 102, 156), (190, 153, 153), (180, 165, 180)]
    + [(150, 100, 100), (150, 120, 90), (153, 153, 153), (153, 153, 153), (250, 170, 30)]
    + [(220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60)]
    + [(255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 0, 90), (0, 0, 110)]
    + [(0, 80, 100), (0, 0, 230), (119, 11, 32)],
    np.uint8,
)
CITY_FRAMES = ["aachen/aachen_000000_000019", "aachen/aachen_000001_000019"]
CITY_OTHER = {"val": "frankfurt/frankfurt_000000_000294", "test": "berlin/berlin_000000_000019"}


def _write(name: str, indir: Path, outdir: Path) -> Path:
    command = [sys.executable, "-m", "shardstream", "write", name, str(indir), "-o", str(outdir)]
    subprocess.run([*command, "-y", "-s", "--quiet"], check=True, capture_output=True, timeout=300)
    return outdir


def _voc_source(seed: int) -> tuple[bytes, np.ndarray]:
    """A palette label PNG as VOC ships it, and the colour image it shows."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, 21, (40, 56), dtype=np.uint8)
    index[0, :] = 255  # the void border
    palette = np.zeros((256, 3), np.uint8)
    palette[:21] = voc2012.COLORS
    palette[255] = (224, 224, 192)
    image = Image.fromarray(index, "P")
    image.putpalette(palette.ravel().tolist())
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue(), palette[index]


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc")
    members = {
        f"{VOC_ROOT}/ImageSets/Segmentation/train.txt": "\n".join(VOC_NAMES).encode(),
        f"{VOC_ROOT}/ImageSets/Segmentation/val.txt": VOC_NAMES[-1].encode(),
    }
    colours = {}
    for seed, name in enumerate(VOC_NAMES):
        label, colours[name] = _voc_source(seed)
        members[f"{VOC_ROOT}/JPEGImages/{name}.jpg"] = jpeg(seed, (56, 40))
        members[f"{VOC_ROOT}/SegmentationClass/{name}.png"] = label
    write_tar(root / "VOCtrainval_11-May-2012.tar", members)
    return _write("VOC2012", root, root / "out") / "train.msgpack", colours


@pytest.fixture(scope="module")
def cityscapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("cityscapes")
    rng = np.random.default_rng(0)
    left, fine = {"README": b"left\n"}, {"README": b"fine\n"}
    disparity = {"README": b"disparity\n"}
    colours = {}
    keys = [f"train/{frame}" for frame in CITY_FRAMES]
    for key in keys + [f"{split}/{frame}" for split, frame in CITY_OTHER.items()]:
        ids = rng.integers(0, 34, (24, 48), dtype=np.uint8)
        colours[key] = CITYSCAPES_COLORS[ids]
        left[f"leftImg8bit/{key}_leftImg8bit.png"] = png(
            rng.integers(0, 256, (24, 48, 3), dtype=np.uint8)
        )
        rgba = np.concatenate([colours[key], np.full((24, 48, 1), 255, np.uint8)], 2)
        fine[f"gtFine/{key}_gtFine_color.png"] = png(rgba)
        fine[f"gtFine/{key}_gtFine_labelIds.png"] = png(ids)
        disparity[f"disparity/{key}_disparity.png"] = png(np.zeros((24, 48), np.uint16))
    write_zip(root / "leftImg8bit_trainvaltest.zip", left)
    write_zip(root / "gtFine_trainvaltest.zip", fine)
    write_zip(root / "disparity_trainvaltest.zip", disparity)
    return _write("Cityscapes", root, root / "out") / "train.msgpack", colours


def _colour_classes(colour: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Each pixel's class: the first class whose colour it has, 0 for other colours."""
    match = (colour[:, :, None, :] == table[None, None]).all(-1)
    return np.where(match.any(-1), match.argmax(-1), 0)


def _loaded(path: Path, preset, workers: int) -> list[dict]:
    loader = Loader(path, seed=0).batch(1).preset(preset, device="cpu").pytorch(num_workers=workers)
    try:
        return [{k: v.clone() for k, v in batch.items()} for batch in loader]
    finally:
        loader.close()


@pytest.mark.parametrize("workers", [0, 2])
def test_voc_masks_are_the_colour_map_classes(voc, workers):
    path, colours = voc
    batches = _loaded(path, DenseEvalPreset(resize_size=None), workers)
    keys = [MsgpackReader(path).get(i)["key"] for i in range(len(VOC_NAMES))]
    assert len(batches) == len(VOC_NAMES)
    for batch, key in zip(batches, keys):
        mask = batch["label_image"][0].numpy()
        expected = _colour_classes(colours[key], voc2012.COLORS)  # void -> 0, as datadings
        assert mask.shape == (40, 56) and np.array_equal(mask, expected)
        assert np.array_equal(voc2012.COLORS[mask][1:], colours[key][1:])  # below the border
        assert set(np.unique(mask)) <= set(range(21))


def test_voc_resized_crop_moves_the_classes_with_the_image(voc):
    path, colours = voc
    preset = SegmentationPreset(size=(32, 32)).for_device("cpu")
    reader = MsgpackReader(path)
    batches = _loaded(path, preset, 2)
    for index, batch in enumerate(batches):
        sample = reader.get(index)
        plan = preset.plan_for(40, 56, sample_rng(0, 0, index))
        classes = _colour_classes(colours[sample["key"]], voc2012.COLORS)
        mask = tv_tensors.Mask(torch.from_numpy(classes)[None])
        expected = F.resized_crop(mask, *plan.box, [32, 32])
        if plan.flip:
            expected = F.horizontal_flip(expected)
        assert np.array_equal(batch["label_image"][0].numpy(), expected[0].numpy())


@pytest.mark.parametrize("workers", [0, 2])
def test_cityscapes_label_ids_agree_with_the_colour_images(cityscapes, workers):
    path, colours = cityscapes
    preset = SegmentationPreset(size=(16, 32), scale=(0.5, 1.0))
    batches = _loaded(path, preset, workers)
    reader = MsgpackReader(path)
    assert len(batches) == len(CITY_FRAMES)
    for index, batch in enumerate(batches):
        sample = reader.get(index)
        plan = preset.plan_for(24, 48, sample_rng(0, 0, index))
        colour = torch.from_numpy(colours[sample["key"]]).permute(2, 0, 1)
        expected = F.resized_crop(tv_tensors.Mask(colour), *plan.box, [16, 32])
        if plan.flip:
            expected = F.horizontal_flip(expected)
        mask = batch["label_image"][0].numpy()
        assert mask.max() <= 33
        assert np.array_equal(CITYSCAPES_COLORS[mask], expected.permute(1, 2, 0).numpy())
