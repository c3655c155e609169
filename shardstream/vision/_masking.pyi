"""Types of the C extension ``shardstream.vision._masking`` (see ``_masking.c``)."""

import numpy as np

def sample_masks(
    masks: np.ndarray,
    n_masks: int,
    height: int,
    width: int,
    seed: int,
    probability: float,
    low: float,
    high: float,
    n_tokens: int,
    min_patches: float,
    max_patches: float,
    log_low: float,
    log_high: float,
    /,
) -> int: ...
def rrc_boxes(
    capsule: object,
    height: int,
    width: int,
    ratio_lo: float,
    ratio_hi: float,
    log_ratio_lo: float,
    log_ratio_hi: float,
    scales: np.ndarray,
    boxes: np.ndarray,
    flips: np.ndarray,
    /,
) -> None: ...
def seed_words(seed: int, epoch: int, position: int, /) -> tuple[int, int, int, int]: ...
