"""Read one field of a packed sample without decoding (or even touching) the others.

A sample is a msgpack map. :func:`peek_field` walks its keys and jumps over every value that is
not the wanted one by reading only the value's type byte and length, so the payload of an image
field is never copied or decoded. On a memory-mapped file that also means its pages are never
read from disk: for a 100 KB JPEG sample with the label after the image, about two of its 25
pages are touched. The wanted value is decoded with the dataset codec (numpy scalars work).

Not a subcommand: the leading underscore keeps :func:`shardstream.cli.command_modules` from
loading it as one.
"""

from __future__ import annotations

from typing import Any

from ..format.codec import unpackb
from ..format.fields import SIZED, map_header, skip_value

__all__ = ["MISSING", "peek_field"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: Returned by :func:`peek_field` when the sample has no such field.
MISSING: Any = _Missing()


def peek_field(data: bytes | memoryview, name: str) -> Any:
    """The value of field ``name`` of the packed sample ``data``, decoding nothing else.

    Args:
        data: one msgpack-encoded sample (a memoryview into a map avoids any copy).
        name: the field name.

    Returns:
        The decoded value, or :data:`MISSING` if the sample has no such field.

    Raises:
        ValueError: ``data`` is not a msgpack map with string keys, or is cut short (also any
            error of the codec decoding the value).
    """
    view = memoryview(data)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    try:
        count, pos = map_header(view)
        for _ in range(count):
            key_end = skip_value(view, pos)
            key = _read_str(view, pos, key_end)
            value_end = skip_value(view, key_end)
            if key == name:
                return unpackb(view[key_end:value_end])
            pos = value_end
    except IndexError:
        raise ValueError("sample ends inside a value (truncated msgpack)") from None
    return MISSING


def _read_str(view: memoryview, start: int, end: int) -> str:
    t = view[start]
    if 0xA0 <= t <= 0xBF:
        head = 1
    elif t in (0xD9, 0xDA, 0xDB):
        head = 1 + SIZED[t]
    else:
        raise ValueError(f"sample has a field name that is not a string (type byte 0x{t:02x})")
    return bytes(view[start + head : end]).decode("utf-8")
