"""Types of the C extension ``shardstream.vision._jpegregion`` (see ``_jpegregion.c``)."""

import numpy as np

def decode_region(
    data: bytes | bytearray | memoryview,
    out: np.ndarray,
    top: int,
    left: int,
    height: int,
    width: int,
    denominator: int = 1,
    margin: int = ...,
    crop_columns: bool = False,
) -> tuple[int, int]: ...
