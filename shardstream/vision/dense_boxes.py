"""Boxes and points through the dense presets' geometry: crop, resize, flip, clip, drop.

Coordinates are continuous pixels of the image as displayed: pixel ``(row, col)`` spans
``[col, col + 1) x [row, row + 1)``. Boxes are ``(x1, y1, x2, y2)`` (torchvision's ``XYXY``),
points ``(x, y)`` (fixations). A crop at ``(top, left)`` moves a coordinate by
``(-left, -top)``, a resize of a ``h x w`` box to ``oh x ow`` scales by ``(ow / w, oh / h)``,
a flip of a canvas ``W`` wide maps ``x`` to ``W - x``. At the end boxes are clipped to the
output canvas and the ones left with a side under ``min_size`` are dropped, with their labels
(torchvision's ``RandomResizedCrop`` on ``BoundingBoxes`` then ``SanitizeBoundingBoxes``);
points outside the canvas are dropped.

Per sample the number of objects varies, so the presets return them padded to a fixed
``max_objects`` rows with a boolean ``valid`` row mask, which collates into fixed-shape batches.
"""

from __future__ import annotations

import numpy as np

from ..errors import TargetError

__all__ = ["finish_boxes", "finish_points", "move", "pad_objects", "parse_objects"]


def parse_objects(value, columns: int, field: str) -> np.ndarray:
    """Boxes (``columns=4``) or points (``columns=2``) of a sample as a float64 ``(N, columns)``.

    Args:
        value: an array-like of ``N`` rows of ``columns`` numbers (an empty list for none).
        columns: 4 for boxes, 2 for points.
        field: the field's name, for error messages.

    Returns:
        A new float64 array ``(N, columns)``.

    Raises:
        TargetError: not numbers, the wrong shape, not finite, or boxes with ``x2 < x1`` or
            ``y2 < y1``.
    """
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TargetError(
            f"field {field!r} must hold numbers, got {type(value).__name__}"
        ) from None
    if array.size == 0:
        return np.zeros((0, columns))
    if array.ndim != 2 or array.shape[1] != columns:
        raise TargetError(f"field {field!r} must be (N, {columns}), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise TargetError(f"field {field!r} holds values that are not finite")
    if columns == 4 and ((array[:, 2] < array[:, 0]) | (array[:, 3] < array[:, 1])).any():
        raise TargetError(f"field {field!r}: a box has x2 < x1 or y2 < y1 (XYXY expected)")
    return array


def move(array: np.ndarray, top: float, left: float, scale_y: float, scale_x: float) -> None:
    """Crop at ``(top, left)`` then scale, in place: ``x = (x - left) * scale_x`` (``y`` alike).

    Args:
        array: ``(N, 4)`` boxes or ``(N, 2)`` points, float64, changed in place.
        top: the crop's first row.
        left: the crop's first column.
        scale_y: output height / crop height.
        scale_x: output width / crop width.
    """
    array[:, 0::2] -= left
    array[:, 0::2] *= scale_x
    array[:, 1::2] -= top
    array[:, 1::2] *= scale_y


def finish_boxes(
    boxes: np.ndarray, height: int, width: int, flip: bool, min_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """Clip boxes to the ``height x width`` canvas, mirror them on ``flip``, drop small ones.

    Args:
        boxes: float64 ``(N, 4)`` in output pixels (before the flip).
        height: canvas height.
        width: canvas width.
        flip: mirror left to right.
        min_size: a box whose clipped width or height is below this is dropped.

    Returns:
        ``(kept boxes as float32 (M, 4), indices of the kept rows (M,))``.
    """
    out = boxes.copy()
    np.clip(out[:, 0::2], 0, width, out=out[:, 0::2])
    np.clip(out[:, 1::2], 0, height, out=out[:, 1::2])
    if flip:
        out[:, [0, 2]] = width - out[:, [2, 0]]
    keep = np.flatnonzero((out[:, 2] - out[:, 0] >= min_size) & (out[:, 3] - out[:, 1] >= min_size))
    return out[keep].astype(np.float32), keep


def finish_points(
    points: np.ndarray, height: int, width: int, flip: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Mirror points on ``flip`` and drop the ones outside the ``height x width`` canvas.

    Args:
        points: float64 ``(N, 2)`` ``(x, y)`` in output pixels (before the flip).
        height: canvas height.
        width: canvas width.
        flip: mirror left to right.

    Returns:
        ``(kept points as float32 (M, 2), indices of the kept rows (M,))``.
    """
    out = points.copy()
    if flip:
        out[:, 0] = width - out[:, 0]
    inside = (out[:, 0] >= 0) & (out[:, 0] < width) & (out[:, 1] >= 0) & (out[:, 1] < height)
    keep = np.flatnonzero(inside)
    return out[keep].astype(np.float32), keep


def pad_objects(array: np.ndarray, max_objects: int, field: str) -> tuple[np.ndarray, np.ndarray]:
    """Pad ``(M, C)`` rows with zero rows to ``(max_objects, C)``; also the ``valid`` mask.

    Args:
        array: the kept rows.
        max_objects: the fixed number of rows.
        field: the field's name, for error messages.

    Returns:
        ``(padded array, bool (max_objects,) mask of the real rows)``.

    Raises:
        TargetError: more than ``max_objects`` rows.
    """
    count = len(array)
    if count > max_objects:
        raise TargetError(
            f"field {field!r} has {count} objects after the transform, more than "
            f"max_objects={max_objects}"
        )
    out = np.zeros((max_objects, *array.shape[1:]), array.dtype)
    out[:count] = array
    valid = np.zeros(max_objects, bool)
    valid[:count] = True
    return out, valid
