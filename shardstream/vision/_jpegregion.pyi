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
def decode_band_planes(
    data: bytes | bytearray | memoryview,
    out: np.ndarray,
    top: int,
    height: int,
    y_stride: int,
    c_first: int,
    c_rows: int,
    c_stride: int,
    hf: int,
    vf: int,
    /,
) -> None: ...
