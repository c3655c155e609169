"""Honest fast paths: a missing device fails when the loader is built, a missing C extension
warns once, ``info --system`` lists what is active, and ``Dataset`` opens a path."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from shardstream import FileWriter, Loader
from shardstream.compat.datadings.torch_data import Dataset
from shardstream.errors import ConfigError, DeviceUnavailableError
from shardstream.fastpaths import SlowPathWarning
from shardstream.vision.dino import DinoPreset
from shardstream.vision.supervised import SupervisedPreset

NO_CUDA = not torch.cuda.is_available()


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    from shardstream.sets.demo import render_demo_image

    path = tmp_path_factory.mktemp("fast") / "demo.msgpack"
    with FileWriter(path) as writer:
        for i in range(6):
            writer.write({"key": f"img_{i}", "image": render_demo_image(i), "label": i % 2})
    return path


@pytest.mark.skipif(not NO_CUDA, reason="checks the refusal on a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda", 1)])
@pytest.mark.parametrize("make", [DinoPreset, SupervisedPreset])
def test_preset_on_a_missing_cuda_device_fails_when_built_not_at_the_first_batch(
    packed, device, make
):
    loader = Loader(packed, seed=0).batch(2)
    with pytest.raises(DeviceUnavailableError) as info:
        loader.preset(make(), device=device)
    message = str(info.value)
    assert message.startswith("Loader.preset: device 'cuda")
    assert "sees no CUDA GPU here" in message or "built without CUDA" in message
    assert isinstance(info.value, RuntimeError)


@pytest.mark.skipif(NO_CUDA, reason="needs a CUDA device")
def test_cuda_preset_builds_and_its_batches_land_on_the_gpu(packed):
    loader = Loader(packed, seed=0).batch(3).preset(SupervisedPreset(size=32), device="cuda")
    with loader.pytorch(num_workers=1) as running:
        batches = list(running)
    assert [b["image"].device.type for b in batches] == ["cuda", "cuda"]
    assert [tuple(b["image"].shape) for b in batches] == [(3, 3, 32, 32), (3, 3, 32, 32)]


def test_preset_on_the_cpu_and_on_no_device_still_builds(packed):
    for device in (None, "cpu", torch.device("cpu")):
        loader = Loader(packed, seed=0).batch(3).preset(SupervisedPreset(size=32), device=device)
        with loader.pytorch(num_workers=0) as running:
            shapes = [tuple(batch["image"].shape) for batch in running]
        assert shapes == [(3, 3, 32, 32), (3, 3, 32, 32)]


def test_preset_with_a_device_torch_does_not_know_is_a_config_error(packed):
    with pytest.raises(ConfigError, match=r"Loader.preset: 'gpu0' is not a torch device"):
        Loader(packed, seed=0).preset(SupervisedPreset(), device="gpu0")


_WITHOUT_EXTENSIONS = textwrap.dedent(
    """
    import sys, warnings
    for name in ("_resample", "_masking", "_jpegregion"):
        sys.modules["shardstream.vision." + name] = None  # the import then fails, as unbuilt
    warnings.simplefilter("always")  # the once-per-process guard is shardstream's own
    import numpy as np
    from shardstream.sets.demo import render_demo_image
    from shardstream.vision.dino import DinoPreset
    from shardstream.fastpaths import SlowPathWarning
    from shardstream.vision.masking import MaskingGenerator, sample_masks
    with warnings.catch_warnings(record=True) as caught:
        preset = DinoPreset(global_crops_size=32, local_crops_size=16, local_crops_number=2,
                            patch_size=8)
        for i in range(3):
            preset.worker({"image": render_demo_image(i), "label": 0}, np.random.default_rng(i))
            sample_masks(MaskingGenerator(input_size=(4, 4), max_num_patches=8), 2, (0.1, 0.5), 1.0,
                         np.random.default_rng(i))
    for w in caught:
        if issubclass(w.category, SlowPathWarning):
            print("WARNED", str(w.message).split(" ")[0])
    """
)


def test_missing_c_extensions_warn_once_per_process_each():
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_EXTENSIONS],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": ""},
    )
    assert done.returncode == 0, done.stderr
    lines = sorted(line for line in done.stdout.splitlines() if line.startswith("WARNED"))
    assert lines == [
        "WARNED shardstream.vision._jpegregion",
        "WARNED shardstream.vision._masking",
        "WARNED shardstream.vision._resample",
    ]


def test_built_extensions_do_not_warn():
    import warnings

    import numpy as np

    from shardstream.sets.demo import render_demo_image

    preset = DinoPreset(
        global_crops_size=32, local_crops_size=16, local_crops_number=2, patch_size=8
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        preset.worker({"image": render_demo_image(0), "label": 0}, np.random.default_rng(0))
    assert [w for w in caught if issubclass(w.category, SlowPathWarning)] == []


def test_info_system_lists_the_fast_paths():
    done = subprocess.run(
        [sys.executable, "-m", "shardstream", "info", "--system"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    names = [line.split(":")[0] for line in done.stdout.splitlines()]
    assert names == [
        "_resample",
        "_masking",
        "_jpegregion",
        "simplejpeg",
        "opencv",
        "torch",
        "cuda",
        "cpus",
    ]
    lines = dict(line.split(":", 1) for line in done.stdout.splitlines())
    from shardstream.vision import _resample

    assert lines["_resample"].strip() == (
        f"built, kernel {_resample.kernels()[-1]} (this CPU runs: {', '.join(_resample.kernels())})"
    )
    assert lines["torch"].strip() == torch.__version__
    assert lines["cpus"].strip().startswith(f"{os.cpu_count()} (")
    if NO_CUDA:
        assert lines["cuda"].strip().startswith("not available")


def test_info_without_a_dataset_or_system_is_a_usage_error():
    done = subprocess.run(
        [sys.executable, "-m", "shardstream", "info"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert "infile (or --system)" in done.stderr


def test_dataset_opens_a_path_and_closes_what_it_opened(packed):
    with Dataset(packed) as dataset:
        assert len(dataset) == 6
        assert dataset[4]["key"] == "img_4"
        assert [s["label"] for s in dataset.__getitems__([0, 1, 5])] == [0, 1, 1]
        loader = torch.utils.data.DataLoader(dataset, batch_size=3, collate_fn=list)
        assert [[s["key"] for s in b] for b in loader] == [
            ["img_0", "img_1", "img_2"],
            ["img_3", "img_4", "img_5"],
        ]
    assert dataset.reader._map is None  # closed by the dataset that opened it
    with pytest.raises(FileNotFoundError):
        Dataset(packed.parent / "missing.msgpack")
