"""demo: the generated demo photo set (no download), made in the worker processes and packed.

Image ``i`` is rendered by :func:`~shardstream.sets.demo.render_demo_image` inside a conversion
worker, so generating and packing run in parallel and nothing is written but the dataset. The
keys and bytes are exactly those :func:`~shardstream.sets.demo.generate_demo_images` writes to disk
for the same parameters (``<class>/<class>_<index>.jpg``), and label ``i % classes`` indexes
:data:`~shardstream.sets.demo.DEMO_CLASS_NAMES`.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Iterable

from ..errors import ConfigError
from ..write.conversion import Item, SizedItems
from .demo import DEMO_CLASS_NAMES, demo_sample_key, render_demo_image

__all__ = ["NAME", "SOURCES", "add_arguments", "demo_items", "items", "label_names"]

NAME = "demo"
SOURCES: tuple = ()


def demo_items(
    *,
    num_images: int = 2000,
    num_classes: int = 10,
    seed: int = 0,
    quality: int = 90,
    class_names: bool = False,
) -> SizedItems:
    """Items that render the demo images when loaded.

    Args:
        num_images: how many images.
        num_classes: how many classes (at most ``len(DEMO_CLASS_NAMES)``).
        seed: the generator seed.
        quality: the JPEG quality the images are generated at.
        class_names: also store each sample's class name in the field ``"class_name"``.

    Returns:
        A :class:`~shardstream.write.conversion.SizedItems` of ``num_images`` items, in index order.

    Raises:
        ConfigError: an argument is out of range (raised here, before any work).
    """
    demo_sample_key(0, num_images=num_images, num_classes=num_classes)  # checks both counts
    for name, value, maximum in (("seed", seed, None), ("quality", quality, 100)):
        minimum = 0 if maximum is None else 1
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < minimum
            or (maximum is not None and value > maximum)
        ):
            allowed = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
            raise ConfigError(f"{name} must be an int {allowed}, got {value!r}")

    def generate() -> Iterable[Item]:
        for index in range(num_images):
            label = index % num_classes
            yield Item(
                key=demo_sample_key(index, num_images=num_images, num_classes=num_classes),
                label=label,
                source=f"demo image {index}",
                load=functools.partial(
                    render_demo_image, index, num_classes=num_classes, seed=seed, quality=quality
                ),
                fields={"class_name": DEMO_CLASS_NAMES[label]} if class_names else {},
            )

    return SizedItems(num_images, generate())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the demo set's arguments (size, classes, seed, generation quality)."""
    parser.add_argument("--images", type=int, default=2000, help="number of images (2000)")
    parser.add_argument("--classes", type=int, default=10, help="number of classes (10)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (0)")
    parser.add_argument(
        "--source-quality",
        type=int,
        default=90,
        help="JPEG quality the images are generated at (90); --quality re-encodes them",
    )
    parser.add_argument(
        "--class-names", action="store_true", help="also store the class name ('class_name')"
    )


def items(args: argparse.Namespace) -> dict[str, Iterable[Item]]:
    """The demo set as the single split ``train``."""
    return {
        "train": demo_items(
            num_images=args.images,
            num_classes=args.classes,
            seed=args.seed,
            quality=args.source_quality,
            class_names=args.class_names,
        )
    }


def label_names(args: argparse.Namespace) -> list[str]:
    """The class names in label order."""
    return list(DEMO_CLASS_NAMES[: args.classes])
