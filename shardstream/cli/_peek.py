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

__all__ = ["MISSING", "peek_field"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: Returned by :func:`peek_field` when the sample has no such field.
MISSING: Any = _Missing()

# type byte -> (bytes of the length that follows, extra bytes after it) for str/bin/ext
_SIZED = {
    0xC4: (1, 0),  # bin 8
    0xC5: (2, 0),  # bin 16
    0xC6: (4, 0),  # bin 32
    0xC7: (1, 1),  # ext 8 (one type byte)
    0xC8: (2, 1),  # ext 16
    0xC9: (4, 1),  # ext 32
    0xD9: (1, 0),  # str 8
    0xDA: (2, 0),  # str 16
    0xDB: (4, 0),  # str 32
}
# type byte -> total size of a fixed-size value
_FIXED = {
    0xC0: 1,  # nil
    0xC2: 1,  # false
    0xC3: 1,  # true
    0xCA: 5,  # float 32
    0xCB: 9,  # float 64
    0xCC: 2,  # uint 8
    0xCD: 3,  # uint 16
    0xCE: 5,  # uint 32
    0xCF: 9,  # uint 64
    0xD0: 2,  # int 8
    0xD1: 3,  # int 16
    0xD2: 5,  # int 32
    0xD3: 9,  # int 64
    0xD4: 3,  # fixext 1
    0xD5: 4,  # fixext 2
    0xD6: 6,  # fixext 4
    0xD7: 10,  # fixext 8
    0xD8: 18,  # fixext 16
}


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
        count, pos = _map_header(view)
        for _ in range(count):
            key_end = _skip(view, pos)
            key = _read_str(view, pos, key_end)
            value_end = _skip(view, key_end)
            if key == name:
                return unpackb(view[key_end:value_end])
            pos = value_end
    except IndexError:
        raise ValueError("sample ends inside a value (truncated msgpack)") from None
    return MISSING


def _map_header(view: memoryview) -> tuple[int, int]:
    """Number of entries of the map at the start of ``view`` and where its first key starts."""
    t = view[0]
    if 0x80 <= t <= 0x8F:
        return t & 0x0F, 1
    if t == 0xDE:
        return _uint(view, 1, 2), 3
    if t == 0xDF:
        return _uint(view, 1, 4), 5
    raise ValueError(f"sample is not a msgpack map (type byte 0x{t:02x})")


def _read_str(view: memoryview, start: int, end: int) -> str:
    t = view[start]
    if 0xA0 <= t <= 0xBF:
        head = 1
    elif t in (0xD9, 0xDA, 0xDB):
        head = 1 + _SIZED[t][0]
    else:
        raise ValueError(f"sample has a field name that is not a string (type byte 0x{t:02x})")
    return bytes(view[start + head : end]).decode("utf-8")


def _skip(view: memoryview, pos: int) -> int:
    """Position just after the msgpack value starting at ``pos`` (nested values included)."""
    pending = 1  # values still to skip
    while pending:
        pending -= 1
        t = view[pos]
        if t <= 0x7F or t >= 0xE0:  # positive / negative fixint
            pos += 1
        elif t <= 0x8F:  # fixmap
            pending += 2 * (t & 0x0F)
            pos += 1
        elif t <= 0x9F:  # fixarray
            pending += t & 0x0F
            pos += 1
        elif t <= 0xBF:  # fixstr
            pos += 1 + (t & 0x1F)
        elif t in _FIXED:
            pos += _FIXED[t]
        elif t in _SIZED:
            width, extra = _SIZED[t]
            pos += 1 + width + extra + _uint(view, pos + 1, width)
        elif t in (0xDC, 0xDD):  # array 16 / 32
            width = 2 if t == 0xDC else 4
            pending += _uint(view, pos + 1, width)
            pos += 1 + width
        elif t in (0xDE, 0xDF):  # map 16 / 32
            width = 2 if t == 0xDE else 4
            pending += 2 * _uint(view, pos + 1, width)
            pos += 1 + width
        else:
            raise ValueError(f"invalid msgpack type byte 0x{t:02x} at byte {pos}")
    if pos > len(view):
        raise IndexError(pos)
    return pos


def _uint(view: memoryview, pos: int, width: int) -> int:
    if pos + width > len(view):
        raise IndexError(pos + width)
    return int.from_bytes(view[pos : pos + width], "big")
