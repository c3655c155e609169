"""CIFAR-10 / CIFAR-100 from the python-version archives, as datadings writes them.

``cifar-10-python.tar.gz`` holds ``cifar-10-batches-py/data_batch_1`` ... ``data_batch_5`` and
``test_batch``; ``cifar-100-python.tar.gz`` holds ``cifar-100-python/train`` and ``test``. Each
batch is a Python 2 pickle (protocol 2) of a dict: ``b"data"`` (a numpy uint8 array, one row of
3,072 bytes per image: the red, green and blue 32 x 32 planes), ``b"labels"`` (CIFAR-10) or
``b"fine_labels"`` and ``b"coarse_labels"`` (CIFAR-100), lists of ints, and ``b"filenames"``.

The one audited exception to "never unpickle a dataset file": the batches are read by
:func:`read_batch`, a :class:`pickle.Unpickler` (``encoding="bytes"``, as datadings loads them)
whose ``find_class`` resolves exactly the three names a pickled numpy array refers to
(``numpy.core.multiarray._reconstruct`` or ``numpy._core.multiarray._reconstruct``,
``numpy.ndarray``, ``numpy.dtype``) to inert stand-ins defined here, which only record their
arguments and state; every other global, persistent id or extension code is refused with
:class:`~shardstream.errors.UnsafeDataError`. No numpy (or any other) code runs while loading;
the arrays are rebuilt afterwards with :func:`numpy.frombuffer`, for plain integer dtypes only.

As datadings does: rows, labels and file names are zipped (the shortest list wins); the image is
an RGB PNG written by Pillow with ``optimize=True``; the key is the file name (CIFAR-100: a name
seen before in the same split gets the count appended, ``"name.png2"``); ``--shuffle yes``
shuffles ``train`` then ``test``.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetFormatError, UnsafeDataError
from ..write.conversion import Item, SizedItems
from . import _datadings
from .sources import SourceFile

__all__ = ["PythonLayout", "CIFAR10_PYTHON", "CIFAR100_PYTHON", "read_batch", "split_items"]


@dataclass(frozen=True, kw_only=True)
class PythonLayout:
    """Where a CIFAR variant's python-version archive keeps its batches.

    Attributes:
        source: the archive.
        splits: the batch members of each split, in datadings' order.
        label_fields: the batch's label lists written after the image, as (sample field,
            batch key): ``(("label", b"labels"),)`` for CIFAR-10.
        rename_duplicates: append a count to a file name seen before in the split (CIFAR-100).
    """

    source: SourceFile
    splits: dict[str, tuple[str, ...]]
    label_fields: tuple[tuple[str, bytes], ...]
    rename_duplicates: bool


CIFAR10_PYTHON = PythonLayout(
    source=SourceFile(
        name="cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    ),
    splits={
        "train": tuple(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)),
        "test": ("cifar-10-batches-py/test_batch",),
    },
    label_fields=(("label", b"labels"),),
    rename_duplicates=False,
)
"""CIFAR-10's python version, as datadings reads it."""

CIFAR100_PYTHON = PythonLayout(
    source=SourceFile(
        name="cifar-100-python.tar.gz",
        md5="eb9058c3a382ffc7106e4002c42a8d85",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    ),
    splits={"train": ("cifar-100-python/train",), "test": ("cifar-100-python/test",)},
    label_fields=(("label", b"fine_labels"), ("coarse_label", b"coarse_labels")),
    rename_duplicates=True,
)
"""CIFAR-100's python version, as datadings reads it."""


def split_items(layout: PythonLayout, args: Any) -> dict[str, SizedItems]:
    """The items of ``train.msgpack`` and ``test.msgpack``, in datadings' order.

    Args:
        layout: the CIFAR variant.
        args: the parsed datadings options (``indir``, ``shuffle``, ``seed``, ...).

    Returns:
        Output file name -> items (each carries its 3,072 pixel bytes; the PNG is made in the
        worker).

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: the archive is missing or wrong.
        DatasetFormatError: the archive or a batch is not what the python version holds.
        UnsafeDataError: a batch pickle refers to anything but a numpy array.
    """
    archive = _datadings.locate(args, (layout.source,))[layout.source.name]
    batches = _read_members(archive, [m for members in layout.splits.values() for m in members])
    rng = _datadings.shuffler(args)
    outputs = {}
    for split, members in layout.splits.items():
        items = []
        seen: dict[str, int] = {}
        for member in members:
            batch = read_batch(batches[member], f"{archive}:{member}")
            items += _batch_items(layout, batch, f"{archive}:{member}", seen)
        if rng is not None:
            rng.shuffle(items)
        outputs[f"{split}.msgpack"] = SizedItems(len(items), items)
    return outputs


def read_batch(data: bytes, where: str) -> dict:
    """Load one batch pickle without running any code it names (see the module docstring).

    Args:
        data: the pickle's bytes.
        where: the archive and member, for error messages.

    Returns:
        The batch dict, keys as bytes, numpy arrays rebuilt as :class:`numpy.ndarray`.

    Raises:
        UnsafeDataError: the pickle refers to a global other than the numpy array names, or
            uses persistent ids.
        DatasetFormatError: not a readable pickle, or an array that is no plain integer array.
    """
    try:
        loaded = _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except _Refused as e:
        raise UnsafeDataError(where, str(e)) from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        OverflowError,
        RecursionError,
    ) as e:
        raise DatasetFormatError(where, f"not a readable batch pickle: {e}") from None
    if not isinstance(loaded, dict):
        raise DatasetFormatError(where, f"holds a {type(loaded).__name__}, not a batch dict")
    return {key: _rebuild(value, where) for key, value in loaded.items()}


def cifar_png(row: bytes) -> bytes:
    """One row's pixels (R, G, B planes of 32 x 32) as the PNG datadings writes (optimize=True)."""
    pixels = np.frombuffer(row, dtype=np.uint8).reshape(3, 32, 32).transpose(1, 2, 0)
    return _datadings.png_bytes(pixels, "RGB", optimize=True)


# --- helpers -------------------------------------------------------------------------------------


def _batch_items(layout: PythonLayout, batch: dict, where: str, seen: dict[str, int]) -> list:
    data = batch.get(b"data")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise DatasetFormatError(where, "b'data' is not a 2-d uint8 array")
    if data.shape[1] != 3072:
        raise DatasetFormatError(where, f"rows of b'data' hold {data.shape[1]} bytes, not 3072")
    columns: list[np.ndarray | list[Any]] = [data]
    for _, key in layout.label_fields:
        labels = batch.get(key)
        if not isinstance(labels, list) or not all(type(v) is int for v in labels):
            raise DatasetFormatError(where, f"{key!r} is not a list of ints")
        columns.append(labels)
    names = batch.get(b"filenames")
    if not isinstance(names, list) or not all(isinstance(n, bytes) for n in names):
        raise DatasetFormatError(where, "b'filenames' is not a list of names")
    columns.append(names)
    items = []
    fields = tuple(field for field, _ in layout.label_fields)
    for number, (row, *labels, name) in enumerate(zip(*columns)):  # noqa: B905 (as datadings)
        try:
            key = name.decode("utf-8")
        except UnicodeDecodeError:
            raise DatasetFormatError(where, f"file name {number} is not UTF-8") from None
        if layout.rename_duplicates:
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > 1:  # datadings: "apparently some files occur multiple times"
                key += str(seen[key])
        load = partial(_sample, row.tobytes(), fields, tuple(labels))
        items.append(Item(key=key, label=None, source=f"{where}[{number}]", load=load))
    return items


def _sample(row: bytes, fields: tuple[str, ...], labels: tuple[int, ...]) -> dict:
    return {"image": cifar_png(row), **dict(zip(fields, labels, strict=True))}


def _read_members(archive: Path, wanted: list[str]) -> dict[str, bytes]:
    """The wanted members' bytes (the last of a name, as ``extractfile(name)`` picks)."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    found[member.name] = tar.extractfile(member).read()  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetFormatError(archive, f"cannot be read as a .tar.gz archive ({e})") from None
    missing = [name for name in wanted if name not in found]
    if missing:
        raise DatasetFormatError(archive, f"has no member {missing[0]}: not the python version?")
    return found


class _Class:
    """Stand-in for ``numpy.ndarray`` / ``numpy.dtype`` in a batch pickle (never called as is)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: Any) -> Any:
        if self.name != "dtype" or not args or not isinstance(args[0], bytes | str):
            raise pickle.UnpicklingError(f"numpy.{self.name}{args!r} is not allowed")
        descr = args[0].decode("ascii") if isinstance(args[0], bytes) else args[0]
        return _DtypeState(descr)


class _DtypeState:
    """What ``numpy.dtype(descr, ...)`` and its ``__setstate__`` received."""

    def __init__(self, descr: str) -> None:
        self.descr = descr
        self.order = "|"

    def __setstate__(self, state: tuple) -> None:
        order = state[1] if isinstance(state, tuple) and len(state) > 1 else b"|"
        self.order = order.decode("ascii") if isinstance(order, bytes) else str(order)


class _ArrayState:
    """What ``_reconstruct(ndarray, ...)`` and the array's ``__setstate__`` received."""

    def __init__(self) -> None:
        self.state: tuple | None = None

    def __setstate__(self, state: tuple) -> None:
        self.state = state


def _reconstruct(cls: Any, *_: Any) -> _ArrayState:
    if not isinstance(cls, _Class) or cls.name != "ndarray":
        raise pickle.UnpicklingError("_reconstruct of something other than numpy.ndarray")
    return _ArrayState()


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): _Class("ndarray"),
    ("numpy", "dtype"): _Class("dtype"),
}
_INTEGER_KINDS = {"u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "b1"}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[module, name]
        except KeyError:
            raise _Refused(
                f"the batch pickle refers to {module}.{name}; only numpy arrays are allowed"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("the batch pickle uses persistent ids")


class _Refused(Exception):
    """A global or persistent id the batch reader does not resolve."""


def _rebuild(value: Any, where: str) -> Any:
    if isinstance(value, _ArrayState):
        return _array(value, where)
    if isinstance(value, list):
        return [_rebuild(v, where) for v in value]
    if isinstance(value, _Class | _DtypeState):
        raise DatasetFormatError(where, "holds a bare numpy class or dtype")
    return value


def _array(value: _ArrayState, where: str) -> np.ndarray:
    state = value.state
    if not (isinstance(state, tuple) and len(state) == 5):
        raise DatasetFormatError(where, "holds a numpy array without its state")
    _, shape, dtype, fortran, raw = state
    if not isinstance(dtype, _DtypeState) or dtype.descr.lstrip("<>|=") not in _INTEGER_KINDS:
        raise DatasetFormatError(where, "holds a numpy array that is no plain integer array")
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
        raise DatasetFormatError(where, "holds a numpy array whose shape is no tuple of sizes")
    if not isinstance(raw, bytes):
        raise DatasetFormatError(where, "holds a numpy array whose data is not raw bytes")
    order = dtype.order if dtype.order in "<>" else "|"
    kind = np.dtype(order + dtype.descr.lstrip("<>|="))
    try:
        array = np.frombuffer(raw, dtype=kind).reshape(shape, order="F" if fortran else "C")
    except ValueError as e:
        raise DatasetFormatError(where, f"numpy array data does not fit its shape: {e}") from None
    return array
