"""Coutrot1: shardstream's writer equals datadings 3.4.7's on a miniature coutrot_database1.mat
and ERB3_Stimuli.zip (two short MJPG videos, three subjects' gaze, tracked with OpenCV)."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io
from PIL import Image

from .datadings_oracle import compare_with_datadings
from .datadings_sources import write_zip

FRAMES = 45


def _video(tmp: Path, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8), (5, 5), 0)
    path = tmp / f"v{seed}.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (80, 64))
    for i in range(FRAMES):
        writer.write(np.ascontiguousarray(texture[:, i // 5 : i // 5 + 80]))
    writer.release()
    return path.read_bytes()


def _gaze(seed: int) -> np.ndarray:
    """MATLAB layout (2, frames, subjects); some points missing (NaN)."""
    rng = np.random.default_rng(seed)
    gaze = rng.uniform(20, 50, (2, FRAMES, 3))
    gaze[:, 3, 1] = np.nan
    return gaze


@pytest.fixture(scope="module")
def indir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("coutrot1")
    scratch = tmp_path_factory.mktemp("videos")
    videos = {f"ERB3_Stimuli/clip_{i}.avi": _video(scratch, i) for i in (1, 2)}
    write_zip(root / "ERB3_Stimuli.zip", {"ERB3_Stimuli/readme.txt": b"x", **videos})
    database = {
        "Header": "gaze data",
        "Nature": {"clip_1": {"data": _gaze(1)}},
        "Faces": {"clip_2": {"data": _gaze(2)}},
    }
    scipy.io.savemat(root / "coutrot_database1.mat", {"Coutrot_Database1": database})
    return root


def test_equals_datadings(indir: Path, tmp_path: Path) -> None:
    written = compare_with_datadings("Coutrot1", indir, tmp_path, ["Coutrot1.msgpack"])
    samples = written["Coutrot1.msgpack"]
    keys = [s["key"] for s in samples]
    assert keys[0].startswith("ERB3_Stimuli/ERB3_Stimuli/clip_1.avi_0000")  # datadings' key
    assert any(k.startswith("ERB3_Stimuli/ERB3_Stimuli/clip_2.avi_") for k in keys)
    assert list(samples[0]) == ["key", "image", "experiments"]
    assert all(len(e["locations"]) >= 30 for s in samples for e in s["experiments"])
    assert Image.open(io.BytesIO(samples[0]["image"])).size == (80, 64)
    assert not list(indir.rglob("*.avi"))  # datadings extracted and removed; we extract nothing
