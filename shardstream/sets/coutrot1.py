"""``shardstream write Coutrot1``: Coutrot database 1 (videos with eye tracking), as datadings
writes it.

Reads ``coutrot_database1.mat`` and ``ERB3_Stimuli.zip`` (hosted on mega.nz: download it by hand)
and writes ``Coutrot1.msgpack``. Each ``.avi`` in the ZIP file is decoded straight from the
archive (OpenCV; nothing is extracted to disk) and every subject's gaze point of each frame is
tracked forward with pyramidal Lucas-Kanade optical flow (points older than 60 frames dropped,
forward-backward error < 1 kept), as datadings does. A frame is written at least 10 frames after
the previous one when some subject has at least 30 tracked points: ``{"key":
"ERB3_Stimuli/<member path>_<frame:06d>", "image": <JPEG bytes, quality 95>, "experiments":
[{"locations": [point, ...], "map": None}, ...]}``, one experiment per such subject.

Quirks kept from datadings: the key repeats ``ERB3_Stimuli/`` before the member's path (which
keeps ``.avi``); the JPEGs hold OpenCV's BGR frames encoded as if they were RGB (red and blue
swapped); a location is the gaze point as a tuple of floats where it was added this frame,
else a float32 array of 2 (as tracked); samples are in video and frame order (no shuffle).

See http://antoinecoutrot.magix.net/public/databases.html
"""

from __future__ import annotations

import argparse
import math
import posixpath
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import BadSourceError, DatasetFormatError, MissingDependencyError
from ..write.conversion import Item
from . import _datadings
from .sources import SourceFile

__all__ = ["DATADINGS", "FIELDS", "NAME", "SOURCES", "add_arguments", "items"]

NAME = "Coutrot1"
"""datadings' name of the set."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

SOURCES: tuple[SourceFile, ...] = (
    SourceFile(
        name="coutrot_database1.mat",
        md5="e32e408d4970e74607234df4133a4ae2",
        url="http://antoinecoutrot.magix.net/public/assets/coutrot_database1.mat",
    ),
    SourceFile(
        name="ERB3_Stimuli.zip",
        md5="e0007237c8e4cdae81f31e84ad9fb241",
        url=None,
        note="hosted on mega.nz: download it by hand",
    ),
)
"""The files the set is written from."""

FIELDS = (
    ("key", "str: ERB3_Stimuli/<member path>_<frame:06d>"),
    ("image", "bytes: the frame as JPEG (quality 95; BGR bytes as RGB, datadings' quirk)"),
    ("experiments", "list, one per subject with >= 30 tracked points: {locations, map: None}"),
)
"""The sample's keys, in order."""

_GOOD = 1.0  # largest forward-backward tracking error kept
_MIN_POINTS = 30
_EVERY = 10
_MAX_AGE = 60


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' options for Coutrot1 (``INDIR``, ``-o``, ``-s``; no ``--shuffle``).

    Args:
        parser: the set's parser.
    """
    _datadings.add_arguments(parser, shuffle=False)


def items(args: argparse.Namespace) -> dict[str, Iterator[Item]]:
    """The items of ``Coutrot1.msgpack``, made as the videos are decoded and tracked.

    Args:
        args: the parsed options.

    Returns:
        ``{"Coutrot1.msgpack": items}``.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: a file is missing or wrong.
        DatasetFormatError: the ``.mat`` file lacks ``Coutrot_Database1``, or a video has no
            gaze data.
    """
    paths = _datadings.locate(args, SOURCES)
    mat, videos = (paths[source.name] for source in SOURCES)
    try:
        clips = _clips(_datadings.load_matlab(mat)["Coutrot_Database1"])
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise DatasetFormatError(mat, f"not Coutrot database 1's gaze data: {e}") from None
    return {"Coutrot1.msgpack": _frames(videos, clips)}


def _clips(database: np.ndarray) -> dict[str, np.ndarray]:
    """Clip name -> gaze points (subjects, frames, 2), from the struct of structs."""
    clips = {}
    for group in database.dtype.names:
        if group == "Header":
            continue
        record = database[group][0, 0][0, 0]
        for clip in record.dtype.names:
            clips[clip] = record[clip]["data"][0, 0].transpose((2, 1, 0))
    return clips


def _frames(videos: Path, clips: dict[str, np.ndarray]) -> Iterator[Item]:
    with zipfile.ZipFile(videos) as archive:
        for name in archive.namelist():
            if not name.endswith(".avi"):
                continue
            clip = posixpath.splitext(posixpath.basename(name))[0]
            if clip not in clips:
                raise DatasetFormatError(videos, f"{name}: no gaze data for clip {clip!r}")
            with archive.open(name) as stream:
                yield from _track(f"{videos}:{name}", name, _decode(stream, name), clips[clip])


def _decode(stream: object, name: str) -> Iterator[np.ndarray]:
    import cv2

    try:
        # OpenCV reads any object with read/seek; its stubs ask for a cv2.IStreamReader
        video = cv2.VideoCapture(stream, cv2.CAP_FFMPEG, [])  # type: ignore[call-overload]
    except (cv2.error, TypeError):
        raise MissingDependencyError(
            f"{name}: reading a video inside the ZIP file needs an OpenCV whose VideoCapture "
            f"reads Python streams (4.11 or later; this is {cv2.__version__})"
        ) from None
    if not video.isOpened():
        raise BadSourceError(name, "OpenCV cannot decode this video")
    try:
        while True:
            ok, frame = video.read()
            if not ok:
                return
            yield frame
    finally:
        video.release()


def _track(
    source: str, name: str, frames: Iterator[np.ndarray], gaze: np.ndarray
) -> Iterator[Item]:
    import cv2

    previous = None
    points: dict[tuple[int, int], object] = {}
    last_written = 0
    for index, frame in enumerate(frames):
        for subject, experiment in enumerate(gaze):
            if index < len(experiment) and not any(np.isnan(experiment[index])):
                points[(subject, index)] = tuple(experiment[index])
        for subject, age in list(points):
            if index - age > _MAX_AGE:
                points.pop((subject, age))
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if previous is not None and points:
            points = _flow(previous, gray, points)
        previous = gray
        if index - last_written < _EVERY:
            continue
        groups = defaultdict(list)
        for (subject, _), xy in points.items():
            groups[subject].append(xy)
        experiments = [
            {"locations": group, "map": None}
            for group in groups.values()
            if len(group) >= _MIN_POINTS
        ]
        if not experiments:
            continue
        yield Item(
            key=posixpath.join("ERB3_Stimuli", f"{name}_{index:06d}"),
            label=None,
            source=f"{source}:{index}",
            load=partial(_sample, frame, experiments),
        )
        last_written = index


def _flow(previous: np.ndarray, gray: np.ndarray, points: dict) -> dict:
    """The points tracked from ``previous`` into ``gray`` whose backward track returns them."""
    import cv2

    ids = list(points)
    start = np.array(list(points.values()), dtype=np.float32).reshape((-1, 1, 2))
    levels = max(int(math.floor(math.log(min(gray.shape[:2]) / 21, 2))), 1)
    window, criteria = (21, 21), (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 10, 0.03)
    moved, _, _ = cv2.calcOpticalFlowPyrLK(
        previous, gray, start, None, winSize=window, criteria=criteria, maxLevel=levels
    )
    back, _, _ = cv2.calcOpticalFlowPyrLK(
        gray, previous, moved, None, winSize=window, criteria=criteria, maxLevel=levels
    )
    good = np.abs(start - back).reshape(-1, 2).max(-1) < _GOOD
    return {i: p for i, p, ok in zip(ids, moved.reshape(-1, 2), good) if ok}


def _sample(frame: np.ndarray, experiments: list[dict]) -> dict:
    from simplejpeg import encode_jpeg

    return {"image": encode_jpeg(frame, quality=95), "experiments": experiments}
