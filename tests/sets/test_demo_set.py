"""The demo converter: images rendered in the workers, identical to the generator's files."""

from __future__ import annotations

import pytest

from shardstream import MsgpackReader
from shardstream.errors import ConfigError
from shardstream.sets.demo import DEMO_CLASS_NAMES, iter_demo_samples
from shardstream.sets.demo_set import demo_items
from shardstream.write.conversion import convert


def test_demo_items_pack_the_generator_samples(tmp_path):
    items = demo_items(num_images=7, num_classes=3, seed=4, class_names=True)
    assert len(items) == 7
    convert(items, tmp_path / "d.msgpack", workers=2, progress=False)
    expected = list(iter_demo_samples(num_images=7, num_classes=3, seed=4))
    with MsgpackReader(tmp_path / "d.msgpack") as reader:
        samples = list(reader)
    assert [(s["key"], s["image"], s["label"]) for s in samples] == [
        (e["key"], e["image"], e["label"]) for e in expected
    ]
    assert [s["class_name"] for s in samples] == [DEMO_CLASS_NAMES[i % 3] for i in range(7)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_images": 0}, "num_images"),
        ({"num_classes": 99}, "num_classes"),
        ({"seed": -1}, "seed must be an int >= 0"),
        ({"quality": 101}, "quality must be an int in 1..100"),
    ],
)
def test_bad_arguments_fail_before_any_work(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        demo_items(**kwargs)


def test_crops_that_fill_the_photo_to_rounding_error_render():
    # Index 2104 (seed 0, 10 classes) fits its crop to the photo's full height, and rounding
    # put the crop's top at -2.6e-14 px, which Pillow refused ("box offset can't be negative").
    from io import BytesIO

    from PIL import Image

    from shardstream.sets.demo import render_demo_image

    with Image.open(BytesIO(render_demo_image(2104, num_classes=10, seed=0))) as image:
        assert image.format == "JPEG" and min(image.size) >= 300
