"""Tests of the demo image generator: determinism, geometry, layout, resuming and argument checks."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image, JpegImagePlugin

from shardstream.errors import ConfigError, DatasetExistsError
from shardstream.sets.demo import (
    DEMO_CLASS_NAMES,
    MARKER_NAME,
    DemoSet,
    demo_sample_key,
    generate_demo_images,
    iter_demo_samples,
    render_demo_image,
)
from shardstream.sets.photos import PHOTO_CLASSES, load_photo

N = 24
C = 4
CLASSES = ("astronaut", "coffee", "cat", "rocket")


@pytest.fixture(scope="module")
def samples() -> list[dict]:
    return list(iter_demo_samples(num_images=N, num_classes=C, seed=0))


def expected_keys(num_images: int = N, num_classes: int = C) -> list[str]:
    return [
        f"{DEMO_CLASS_NAMES[i % num_classes]}/{DEMO_CLASS_NAMES[i % num_classes]}_{i:06d}.jpg"
        for i in range(num_images)
    ]


def test_class_names_follow_the_photo_table():
    assert DEMO_CLASS_NAMES[:C] == CLASSES
    assert len(DEMO_CLASS_NAMES) == 16
    assert len(set(DEMO_CLASS_NAMES)) == 16
    assert tuple(photo_class.name for photo_class in PHOTO_CLASSES) == DEMO_CLASS_NAMES


def test_every_source_photo_loads_offline_as_rgb():
    for photo_class in PHOTO_CLASSES:
        for filename in photo_class.files:
            photo = load_photo(filename)
            assert photo.mode == "RGB"
            assert min(photo.size) >= 300


def test_samples_have_exact_keys_labels_and_order(samples):
    assert [sample["key"] for sample in samples] == expected_keys()
    assert [sample["label"] for sample in samples] == [i % C for i in range(N)]
    assert all(set(sample) == {"key", "image", "label"} for sample in samples)
    assert all(isinstance(sample["image"], bytes) for sample in samples)


def test_same_seed_gives_identical_bytes_and_other_seed_differs(samples):
    again = list(iter_demo_samples(num_images=N, num_classes=C, seed=0))
    assert [s["image"] for s in again] == [s["image"] for s in samples]
    other = list(iter_demo_samples(num_images=N, num_classes=C, seed=1))
    assert [s["key"] for s in other] == [s["key"] for s in samples]
    assert all(a["image"] != b["image"] for a, b in zip(other, samples))


def test_images_are_independent_of_the_set_size_and_render_alone(samples):
    fewer = list(iter_demo_samples(num_images=5, num_classes=C, seed=0))
    assert [s["image"] for s in fewer] == [s["image"] for s in samples[:5]]
    assert render_demo_image(17, num_classes=C, seed=0) == samples[17]["image"]
    assert render_demo_image(3, num_classes=C) == samples[3]["image"]


def test_parallel_iteration_matches_serial(samples):
    parallel = list(iter_demo_samples(num_images=N, num_classes=C, seed=0, workers=2))
    assert parallel == samples


def test_images_are_rgb_jpegs_in_the_stated_size_ranges(samples):
    for sample in samples:
        with Image.open(io.BytesIO(sample["image"])) as image:
            assert image.format == "JPEG"
            assert image.mode == "RGB"
            assert JpegImagePlugin.get_sampling(image) == 2  # 4:2:0
            width, height = image.size
            assert 300 <= min(width, height) <= 500, image.size
            assert 0.75 <= width / height <= 1.5, image.size
            image.load()


def test_quality_changes_the_bytes(samples):
    low = render_demo_image(0, num_classes=C, seed=0, quality=50)
    assert len(low) < len(samples[0]["image"])
    with Image.open(io.BytesIO(low)) as image:
        assert image.size == Image.open(io.BytesIO(samples[0]["image"])).size


def test_generate_writes_the_exact_layout_and_the_same_bytes(tmp_path, samples):
    root = tmp_path / "demo"
    demo = generate_demo_images(root, num_images=N, num_classes=C, seed=0, workers=2)
    assert isinstance(demo, DemoSet)
    assert demo.root == root
    assert demo.class_names == CLASSES
    assert demo.paths == tuple(root / key for key in expected_keys())
    assert demo.labels == tuple(i % C for i in range(N))
    assert sorted(p.name for p in root.iterdir()) == sorted([*CLASSES, MARKER_NAME])
    for name in CLASSES:
        files = sorted(p.name for p in (root / name).iterdir())
        index = CLASSES.index(name)
        assert files == [f"{name}_{i:06d}.jpg" for i in range(index, N, C)]
    assert [path.read_bytes() for path in demo.paths] == [s["image"] for s in samples]
    sizes = [len(s["image"]) for s in samples]
    assert demo.total_bytes == sum(sizes)
    assert demo.mean_bytes == sum(sizes) / N
    assert json.loads((root / MARKER_NAME).read_text()) == {
        "generator": "shardstream.sets.demo",
        "version": 2,
        "num_images": N,
        "num_classes": C,
        "seed": 0,
        "quality": 90,
    }


def test_rerun_skips_existing_files_and_restores_missing_ones(tmp_path, samples, capsys):
    root = tmp_path / "demo"
    first = generate_demo_images(root, num_images=N, num_classes=C, workers=1)
    stats = {path: path.stat() for path in first.paths}
    removed = first.paths[5]
    removed.unlink()
    stale = removed.parent / f".{removed.name}.abc123.tmp"
    stale.write_bytes(b"half a jpeg")

    second = generate_demo_images(root, num_images=N, num_classes=C, workers=1, progress=True)
    assert second == first
    assert not stale.exists()
    assert removed.read_bytes() == samples[5]["image"]
    for path, before in stats.items():
        if path != removed:
            after = path.stat()
            assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert "demo images" in capsys.readouterr().err


def test_rerun_with_other_parameters_is_refused(tmp_path):
    root = tmp_path / "demo"
    generate_demo_images(root, num_images=4, num_classes=2, workers=1)
    with pytest.raises(DatasetExistsError, match=r"seed=0 \(asked 3\)"):
        generate_demo_images(root, num_images=4, num_classes=2, seed=3, workers=1)
    with pytest.raises(DatasetExistsError, match=r"num_images=4 \(asked 5\)"):
        generate_demo_images(root, num_images=5, num_classes=2, workers=1)


def test_foreign_class_folders_are_refused(tmp_path):
    (tmp_path / "coffee").mkdir()
    (tmp_path / "coffee" / "mine.jpg").write_bytes(b"not ours")
    with pytest.raises(DatasetExistsError, match="no .shardstream-demo.json"):
        generate_demo_images(tmp_path, num_images=2, num_classes=2, workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coffee"]


def test_unreadable_marker_is_refused(tmp_path):
    (tmp_path / MARKER_NAME).write_text("{not json")
    with pytest.raises(DatasetExistsError, match="unreadable"):
        generate_demo_images(tmp_path, num_images=2, num_classes=2, workers=1)


def test_keys_pad_indices_to_the_set_size():
    assert demo_sample_key(15, num_images=16, num_classes=16) == "clock/clock_000015.jpg"
    assert demo_sample_key(8, num_images=12_345_678, num_classes=3) == "cat/cat_00000008.jpg"
    assert demo_sample_key(999_999, num_images=1_000_000, num_classes=1) == (
        "astronaut/astronaut_999999.jpg"
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"num_images": 0}, "num_images must be >= 1, got 0"),
        ({"num_images": 2.0}, "num_images must be an int, got float 2.0"),
        ({"num_classes": 0}, "num_classes must be in 1..16, got 0"),
        ({"num_classes": 17}, "num_classes must be in 1..16, got 17"),
        ({"num_classes": True}, "num_classes must be an int, got bool True"),
        ({"seed": -1}, "seed must be >= 0, got -1"),
        ({"quality": 0}, "quality must be in 1..100, got 0"),
        ({"quality": 101}, "quality must be in 1..100, got 101"),
        ({"quality": "90"}, "quality must be an int, got str '90'"),
        ({"workers": 0}, "workers must be >= 1, got 0"),
    ],
)
def test_bad_arguments_raise_config_error(tmp_path, arguments, message):
    with pytest.raises(ConfigError) as raised:
        generate_demo_images(tmp_path / "out", **arguments)
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="^" + message.split(",")[0]):
        iter_demo_samples(**arguments)


def test_bad_index_raises_config_error():
    with pytest.raises(ConfigError, match="^index must be >= 0, got -1$"):
        render_demo_image(-1)
    with pytest.raises(ConfigError, match=r"^index must be in 0\.\.9, got 10$"):
        demo_sample_key(10, num_images=10, num_classes=2)
