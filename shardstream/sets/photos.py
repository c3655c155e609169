"""The real photos the demo image set is cut from: the sample images shipped inside scikit-image.

Only files that are part of the scikit-image distribution are used (nothing is fetched over the
network), and they are read with Pillow straight from the installed package, so scikit-image itself
is never imported. Each photo class is one picture (or one stereo pair), so every class has its own
subject, colours and texture.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..errors import MissingDependencyError

__all__ = ["PhotoClass", "PHOTO_CLASSES", "photo_directory", "load_photo"]


@dataclass(frozen=True, kw_only=True)
class PhotoClass:
    """One class of the demo set and the source photos its images are cut from.

    Attributes:
        name: the class name (also the class folder's name).
        files: file names inside scikit-image's ``data`` folder; one is picked per image.
    """

    name: str
    files: tuple[str, ...]


PHOTO_CLASSES: tuple[PhotoClass, ...] = (
    PhotoClass(name="astronaut", files=("astronaut.png",)),
    PhotoClass(name="coffee", files=("coffee.png",)),
    PhotoClass(name="cat", files=("chelsea.png",)),
    PhotoClass(name="rocket", files=("rocket.jpg",)),
    PhotoClass(name="motorcycle", files=("motorcycle_left.png", "motorcycle_right.png")),
    PhotoClass(name="galaxies", files=("hubble_deep_field.jpg",)),
    PhotoClass(name="tissue", files=("ihc.png",)),
    PhotoClass(name="retina", files=("retina.jpg",)),
    PhotoClass(name="cameraman", files=("camera.png",)),
    PhotoClass(name="coins", files=("coins.png",)),
    PhotoClass(name="moon", files=("moon.png",)),
    PhotoClass(name="brick", files=("brick.png",)),
    PhotoClass(name="grass", files=("grass.png",)),
    PhotoClass(name="gravel", files=("gravel.png",)),
    PhotoClass(name="cells", files=("cell.png",)),
    PhotoClass(name="clock", files=("clock_motion.png",)),
)
"""Every available class, colour photos first; the demo set uses the first ``num_classes``."""


@functools.lru_cache(maxsize=1)
def photo_directory() -> Path:
    """Locate scikit-image's bundled ``data`` folder without importing scikit-image.

    Returns:
        The folder holding the sample images.

    Raises:
        MissingDependencyError: scikit-image is not installed (``pip install shardstream[demo]``).
    """
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "the demo image set is cut from scikit-image's sample photos, but scikit-image is not "
            "installed; install it with `pip install shardstream[demo]`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@functools.cache
def load_photo(filename: str) -> Image.Image:
    """Load one source photo as an RGB Pillow image (cached per process; do not modify it).

    Args:
        filename: a file name from :attr:`PhotoClass.files`.

    Returns:
        The decoded photo in mode ``"RGB"`` (grayscale photos have three equal channels).

    Raises:
        MissingDependencyError: scikit-image is missing, or its installed version lacks the file.
    """
    path = photo_directory() / filename
    if not path.is_file():
        raise MissingDependencyError(
            f"{path}: sample photo {filename!r} is not part of the installed scikit-image; "
            "install a release that bundles it (scikit-image>=0.21)"
        )
    with Image.open(path) as image:
        return image.convert("RGB")
