"""Training checkpoints: written atomically, read without unpickling arbitrary objects.

A checkpoint is one file made by ``torch.save`` of a dict of tensors, numbers, strings, lists,
tuples and dicts. It is written under a hidden temp name in the target folder, fsynced and renamed
into place under the path's writer lock (:func:`~shardstream.format.atomic.write_file_atomically`),
so a crash while saving leaves the previous checkpoint intact and the next save removes what a
killed saver left; two savers of one path take turns. Loading uses
``torch.load(weights_only=True)``: a file holding anything but those plain types is refused.
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...errors import CheckpointError
from ...format.atomic import write_file_atomically

__all__ = ["CHECKPOINT_FORMAT", "save_checkpoint", "load_checkpoint", "rng_state", "set_rng_state"]

#: Recorded in every checkpoint; a file without it (or with another value) is refused.
CHECKPOINT_FORMAT = "shardstream.checkpoint/1"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temp name, fsync, rename, fsync of the folder).

    Args:
        path: the checkpoint file; its folder is created when missing.
        state: plain data only (tensors, numbers, strings, lists, tuples, dicts); the key
            ``"format"`` is added.

    Returns:
        The checkpoint's path.

    Raises:
        CheckpointError: ``state`` is not a dict.
    """
    if not isinstance(state, dict):
        raise CheckpointError(
            f"checkpoint {path}: state must be a dict, got {type(state).__name__}"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({**state, "format": CHECKPOINT_FORMAT}, buffer)
    return write_file_atomically(path, buffer.getbuffer())  # also removes killed saves' temps


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: the checkpoint file.

    Returns:
        The saved dict (with its ``"format"`` entry).

    Raises:
        CheckpointError: the file is missing, truncated or corrupt, holds anything but plain
            data, or is not a shardstream checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for bad files
        raise CheckpointError(
            f"checkpoint {path}: cannot be read ({type(error).__name__}: {error})"
        ) from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path}: not a shardstream checkpoint")
    return state


def rng_state() -> dict[str, Any]:
    """The state of Python's, numpy's and torch's global random generators (CPU and CUDA).

    Returns:
        A dict of plain data that :func:`set_rng_state` restores.
    """
    version, internal, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": torch.from_numpy(np.asarray(numpy_state["state"]["key"], dtype=np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore generator states captured by :func:`rng_state`.

    Raises:
        CheckpointError: the state lacks an entry or has the wrong shape.
    """
    try:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        numpy_state = state["numpy"]
        np.random.set_state(
            {
                "bit_generator": numpy_state["bit_generator"],
                "state": {
                    "key": numpy_state["key"].numpy().astype(np.uint32),
                    "pos": numpy_state["pos"],
                },
                "has_gauss": numpy_state["has_gauss"],
                "gauss": numpy_state["gauss"],
            }
        )
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"random generator state is unusable: {error}") from error
