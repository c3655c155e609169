"""Default collation of a list of samples into a batch, and conversion of batches to torch / TF.

:func:`default_collate` works in numpy and recurses like torch's ``default_collate``: dicts by key,
tuples and lists by position; arrays of one shape and numbers are stacked along a new first axis;
bytes, strings, ``None`` and other objects (PIL images) are kept as a list. :func:`to_torch` turns
the numpy leaves of a tree into torch tensors (zero-copy where torch can share the memory), with
the dtype upcasting Deep Lake's loader applies for dtypes torch handles poorly (``uint16`` to
``int32``, ``uint32`` and ``uint64`` to ``int64``). Neither module-level import pulls in torch.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import CollateError, MissingDependencyError
from .scratch import FRESH, BatchBuffers

__all__ = ["default_collate", "to_torch", "to_tensorflow", "upcast"]

_UPCAST = {np.dtype(np.uint16): np.int32, np.dtype(np.uint32): np.int64}
_UPCAST[np.dtype(np.uint64)] = np.int64


def default_collate(
    samples: Sequence[Any],
    field: str = "",
    keep_views: bool = False,
    buffers: BatchBuffers = FRESH,
) -> Any:
    """Collate ``samples`` (all of one structure) into one batch.

    Args:
        samples: the batch's samples, at least one.
        field: the path of these values inside a sample, for error messages (``""`` at the top).
        keep_views: keep memoryviews (zero-copy slices of a mapped file, which the engine moves
            into shared memory in one copy) instead of copying them into ``bytes``.
        buffers: where stacked arrays are made (the engine hands a worker's reusing buffers
            to the work; new arrays by default).

    Returns:
        A dict for dict samples, a tuple/list for tuple/list samples (collated per position), an
        array stacked along a new first axis for arrays of one shape and for numbers (Python ints
        become int64, floats float64, bools bool), a stacked tensor for torch tensors, and a list
        of the values for anything else (bytes, str, None, PIL images).

    Raises:
        CollateError: samples differ in fields or lengths, or arrays of one field differ in shape
            (the message names the field and the shapes).
    """
    first = samples[0]
    name = field or "sample"
    if isinstance(first, Mapping):
        keys = list(first)
        for sample in samples:
            if not isinstance(sample, Mapping) or set(sample) != set(keys):
                other = list(sample) if isinstance(sample, Mapping) else type(sample).__name__
                raise CollateError(
                    f"cannot collate {name!r}: samples differ in fields ({keys} vs {other}); "
                    "make the transform return the same fields for every sample"
                )
        return {
            key: default_collate([s[key] for s in samples], _join(field, key), keep_views, buffers)
            for key in keys
        }
    if isinstance(first, (tuple, list)):
        length = len(first)
        if any(not isinstance(s, (tuple, list)) or len(s) != length for s in samples):
            lengths = sorted({len(s) if isinstance(s, (tuple, list)) else -1 for s in samples})
            raise CollateError(
                f"cannot collate {name!r}: sequences of different lengths {lengths}; pad them "
                "in the transform or pass a collate_fn"
            )
        columns = [
            default_collate(
                [s[i] for s in samples],
                f"{field}[{i}]" if field else f"[{i}]",
                keep_views,
                buffers,
            )
            for i in range(length)
        ]
        if isinstance(first, tuple):
            return tuple(columns) if type(first) is tuple else type(first)(*columns)
        return columns
    if isinstance(first, np.ndarray):
        if first.dtype.kind == "O":
            return list(samples)
        shapes = {np.shape(s) for s in samples}
        if len(shapes) != 1:
            shown = sorted(shapes, key=str)[:8]
            raise CollateError(
                f"cannot stack field {name!r}: arrays of different shapes {shown}; resize them "
                "to one shape in the transform or pass a collate_fn"
            )
        dtype = first.dtype
        if dtype.kind not in "biufc" or any(getattr(s, "dtype", None) != dtype for s in samples):
            return np.stack(samples)  # numpy promotes mixed dtypes
        # in a worker process, the slot or a reused buffer (see engine/scratch.py)
        return np.stack(samples, out=buffers.array(name, (len(samples), *first.shape), dtype))
    if isinstance(first, (bool, np.bool_)) and all(
        isinstance(s, (bool, np.bool_)) for s in samples
    ):
        return np.array(samples, dtype=bool)
    if all(isinstance(s, (int, float, np.number)) and not isinstance(s, bool) for s in samples):
        if all(isinstance(s, np.number) for s in samples):
            return np.array(samples)
        floats = any(isinstance(s, (float, np.floating)) for s in samples)
        return np.array(samples, dtype=np.float64 if floats else np.int64)
    if _is_torch_tensor(first):
        torch = sys.modules["torch"]
        shapes = {tuple(s.shape) for s in samples}
        if len(shapes) != 1:
            raise CollateError(
                f"cannot stack field {name!r}: tensors of different shapes {sorted(shapes)}; "
                "resize them to one shape in the transform or pass a collate_fn"
            )
        return torch.stack(list(samples))
    if keep_views:
        return list(samples)
    return [bytes(s) if isinstance(s, memoryview) else s for s in samples]


def upcast(array: np.ndarray) -> np.ndarray:
    """``array`` in a dtype torch supports fully: uint16 to int32, uint32/uint64 to int64,
    non-native byte order to native; other arrays are returned unchanged."""
    target = _UPCAST.get(array.dtype)
    if target is not None:
        return array.astype(target)
    if not array.dtype.isnative:
        return array.astype(array.dtype.newbyteorder("="))
    return array


def to_torch(tree: Any) -> Any:
    """``tree`` with numpy arrays and numpy scalars turned into torch tensors.

    Arrays are shared with the tensor when they are writable (``torch.from_numpy``), copied when
    they are read-only; string, bytes and object arrays become lists. Containers are rebuilt,
    other leaves kept.

    Raises:
        MissingDependencyError: torch is not installed.
    """
    torch = _import("torch", "pip install torch")
    return _convert(tree, lambda a: torch.from_numpy(a if a.flags.writeable else a.copy()))


def to_tensorflow(tree: Any) -> Any:
    """``tree`` with numpy arrays and numpy scalars turned into ``tf.Tensor``.

    Raises:
        MissingDependencyError: tensorflow is not installed.
    """
    tf = _import("tensorflow", "pip install tensorflow")
    return _convert(tree, tf.convert_to_tensor)


def _convert(tree: Any, make: Any) -> Any:
    if isinstance(tree, np.ndarray):
        if tree.dtype.kind in "OSUV":
            return tree.tolist()
        array = upcast(tree)
        return make(array if array.flags.c_contiguous else array.copy())
    if isinstance(tree, np.generic):
        return _convert(np.asarray(tree), make)
    if isinstance(tree, Mapping):
        return {key: _convert(value, make) for key, value in tree.items()}
    if isinstance(tree, list):
        return [_convert(value, make) for value in tree]
    if isinstance(tree, tuple):
        values = [_convert(value, make) for value in tree]
        return tuple(values) if type(tree) is tuple else type(tree)(*values)
    return tree


def _import(module: str, install: str) -> Any:
    try:
        return __import__(module)
    except ImportError as e:
        raise MissingDependencyError(f"this loader mode needs {module}: {install}") from e


def _is_torch_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _join(field: str, key: Any) -> str:
    return f"{field}.{key}" if field else str(key)
