"""The exact mapping between a shardstream sample and WebDataset members or Parquet columns.

WebDataset (a sample is the tar members ``<key>.<suffix>`` sharing a key):

- ``"image"`` -> ``<key>.<ext>`` with ``ext`` the image's own format (``jpg``, ``png``, ``webp``,
  ...), the one member whose suffix is a bare image extension;
- an int ``"label"`` -> ``<key>.cls`` (the decimal number);
- any other field ``name`` -> ``<key>.<name>.<kind>``: ``txt`` for a str (UTF-8), ``npy`` for a
  numpy array (``numpy.save``, no pickles), ``json`` for JSON values that come back equal and of
  the same types, the image's extension for image bytes (``mask.png``), ``bin`` for other bytes,
  and ``msgpack`` (the dataset codec) for anything else, so every value comes back exactly;
- fields whose name cannot be a member suffix (upper case letters, which WebDataset folds to
  lower case; ``/``; empty; not a str; starting with ``__``) go together into one
  ``<key>.__fields__.msgpack`` member, a map of those fields;
- a key WebDataset cannot carry (a dot in its file name, ``..``, an absolute path) is replaced by
  the sample's number and kept in a ``<key>.__key__.txt`` member.

Importing (``shardstream write webdataset``, which keeps every member by default) reverses this: a member suffix
``name.kind`` becomes field ``name`` decoded by ``kind`` (``txt``, ``json``, ``npy``, ``cls``,
``msgpack``; other kinds stay bytes; a member that does not decode stays bytes), a bare suffix
(``json``, ``png``, a WebDataset set's second image) becomes the field of that name.

Parquet: one row per sample, a ``key`` string column, then one column per field (in first-seen
order). A column whose values all share one plain type (str, bytes, int64, float, bool) is of
that Arrow type (images are binary columns; a sample without the field has a null); any other
column is binary holding each value packed with the dataset codec, marked by the field
metadata ``shardstream.encoding = msgpack``.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InterchangeError
from .codec import packb, unpackb

__all__ = [
    "column_plan",
    "columns_to_rows",
    "rows_to_columns",
    "ENCODING_KEY",
    "EXTRA_SUFFIX",
    "KEY_SUFFIX",
    "decode_member",
    "extra_fields",
    "image_extension",
    "member_suffixes",
    "webdataset_key",
]

#: Suffix of the member that keeps a key WebDataset cannot carry.
KEY_SUFFIX = "__key__.txt"
#: Suffix of the member holding the fields whose names cannot be suffixes (a msgpack map).
EXTRA_SUFFIX = "__fields__.msgpack"
#: Arrow field metadata key marking a msgpack-encoded column (value ``msgpack``).
ENCODING_KEY = b"shardstream.encoding"

_MAGIC = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
_PLAIN_JSON = (str, int, float, bool, type(None))
_PLAIN_COLUMNS = {str: "string", bytes: "binary", int: "int64", float: "double", bool: "bool"}
_SAFE_KEY = re.compile(r"^(?!/)(?:[^./]+/)*[^./]+$")


def image_extension(data: bytes) -> str | None:
    """The extension of an encoded image's format (``jpg``, ``png``, ``webp``, ...), or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for magic, extension in _MAGIC:
        if data.startswith(magic):
            return extension
    return None


def webdataset_key(key: str, number: int) -> tuple[str, bool]:
    """The WebDataset key for a sample: its own key when WebDataset can carry it (no dot in
    any path part, not absolute, no empty part), else ``s<number>``; and whether the original
    key needs a ``__key__.txt`` member."""
    if _SAFE_KEY.match(key) and not key.startswith("__"):
        return key, False
    return f"s{number:09d}", True


def member_suffixes(
    sample: Mapping[str, Any], *, image_field: str = "image"
) -> list[tuple[str, bytes]]:
    """The (suffix, bytes) members of one sample (its ``"key"`` is not among them)."""
    members: list[tuple[str, bytes]] = []
    extra: dict[Any, Any] = {}
    for name, value in sample.items():
        if name == "key":
            continue
        if not _suffix_name(name):
            extra[name] = value
            continue
        if name == image_field and type(value) is bytes:
            extension = image_extension(value)
            if extension is not None:
                members.append((extension, value))
                continue
        if name == "label" and type(value) is int:
            members.append(("cls", str(value).encode()))
            continue
        members.append(_field_member(name, value))
    if extra:
        members.append((EXTRA_SUFFIX, packb(extra)))
    return members


def _suffix_name(name: Any) -> bool:
    """Whether a field name survives as a member suffix (WebDataset folds case)."""
    return (
        isinstance(name, str)
        and bool(name)
        and "/" not in name
        and name == name.lower()
        and not name.startswith("__")
    )


def extra_fields(data: bytes) -> dict[Any, Any]:
    """The fields of an ``__fields__.msgpack`` member.

    Raises:
        InterchangeError: the member is not a msgpack map.
    """
    try:
        fields = unpackb(data)
    except Exception as error:
        raise InterchangeError(
            None, f"the {EXTRA_SUFFIX} member does not decode: {error}"
        ) from None
    if type(fields) is not dict:
        raise InterchangeError(None, f"the {EXTRA_SUFFIX} member is not a map")
    return fields


def _field_member(name: str, value: Any) -> tuple[str, bytes]:
    if type(value) is str:
        return f"{name}.txt", value.encode("utf-8", "surrogatepass")
    if type(value) is bytes:
        return f"{name}.{image_extension(value) or 'bin'}", value
    if isinstance(value, np.ndarray) and value.dtype != object:
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        if _array_equal(np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False), value):
            return f"{name}.npy", buffer.getvalue()
    elif _json_exact(value):
        return f"{name}.json", json.dumps(value, ensure_ascii=False, allow_nan=True).encode()
    return f"{name}.msgpack", packb(value)


def decode_member(suffix: str, data: bytes) -> tuple[str, Any]:
    """The field (name, value) of a member that is neither the image nor the ``.cls`` label.

    ``name.kind`` gives field ``name`` decoded by ``kind``; a bare suffix gives the field of
    that name, decoded by it when it is a known kind. Data that does not decode as its kind
    stays bytes (nothing is lost).
    """
    name, _, kind = suffix.rpartition(".")
    if not name:
        name, kind = suffix, suffix
    try:
        if kind == "txt":
            return name, data.decode("utf-8")
        if kind == "json":
            return name, json.loads(data)
        if kind == "npy":
            return name, np.load(io.BytesIO(data), allow_pickle=False)
        if kind == "cls":
            return name, int(data.decode("ascii").strip())
        if kind == "msgpack":
            return name, unpackb(data)
    except Exception:  # not of its kind: keep the bytes
        return name, data
    return name, data


def _json_exact(value: Any) -> bool:
    """Whether JSON gives ``value`` back equal and of the same types."""
    if type(value) in _PLAIN_JSON:
        return not (type(value) is float and value != value)  # NaN != NaN after the trip
    if type(value) is list:
        return all(_json_exact(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _json_exact(v) for k, v in value.items())
    return False


def _array_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def column_plan(samples: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Each column's storage for :func:`rows_to_columns`: an Arrow type name (``string``,
    ``binary``, ``int64``, ``double``, ``bool``) or ``msgpack``, in first-seen field order
    (one pass over the samples)."""
    kinds: dict[str, set[type]] = {}
    too_big: set[str] = set()
    for sample in samples:
        for name, value in sample.items():
            kinds.setdefault(name, set()).add(type(value))
            if type(value) is int and not -(1 << 63) <= value < (1 << 63):
                too_big.add(name)
    plan = {}
    for name, types in kinds.items():
        kind = _PLAIN_COLUMNS.get(next(iter(types))) if len(types) == 1 else None
        plan[name] = "msgpack" if kind is None or name in too_big else kind
    return plan


def rows_to_columns(
    samples: Sequence[Mapping[str, Any]], plan: Mapping[str, str]
) -> dict[str, list[Any]]:
    """Column values (``None`` where a sample lacks the field) for a ``column_plan``."""
    columns: dict[str, list[Any]] = {name: [] for name in plan}
    for sample in samples:
        for name, kind in plan.items():
            if name not in sample:
                columns[name].append(None)
            elif kind == "msgpack":
                columns[name].append(packb(sample[name]))
            else:
                columns[name].append(sample[name])
    return columns


def columns_to_rows(
    names: Sequence[str], encoded: Iterable[bool], columns: Sequence[list]
) -> list[dict]:
    """Samples from column values (``None``: the sample lacks the field); ``encoded`` marks
    msgpack columns, whose values are unpacked."""
    flags = list(encoded)
    rows: list[dict] = []
    count = len(columns[0]) if columns else 0
    for row in range(count):
        sample: dict[str, Any] = {}
        for name, flag, values in zip(names, flags, columns, strict=True):
            value = values[row]
            if value is None:
                continue
            sample[name] = unpackb(value) if flag else value
        rows.append(sample)
    return rows
