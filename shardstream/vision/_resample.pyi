"""Types of the C extension ``shardstream.vision._resample`` (see ``_resample.c``)."""

from collections.abc import Sequence

import numpy as np

def kernels() -> tuple[str, ...]: ...
def use_kernel(name: str, /) -> None: ...
def resize_crops(
    image: np.ndarray,
    boxes: Sequence[tuple[int, int, int, int]],
    flips: Sequence[bool] | np.ndarray,
    outs: Sequence[np.ndarray],
    horizontal_first: bool = False,
    bilinear: bool = False,
    spans: Sequence[tuple[float, float, float, float] | None] | None = None,
) -> None: ...
