"""Walking a packed sample's msgpack map without decoding it: field slices, zero-copy.

A sample is a msgpack map. :func:`skip_value` finds where any msgpack value ends by reading type
bytes and lengths only; :func:`packed_fields` uses it to cut a packed sample into its fields'
packed values (memoryview slices, nothing copied); :func:`bin_payload` gives the payload of a
``bin`` value (the bytes of an encoded image) as a slice of the same buffer.
"""

from __future__ import annotations

__all__ = ["skip_value", "map_header", "packed_fields", "bin_payload"]

#: str/bin type bytes -> width of their length field
SIZED = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}
#: ext type bytes -> width of their length field
EXT = {0xC7: 1, 0xC8: 2, 0xC9: 4}
#: fixed-size type bytes -> total size of the value
FIXED = {0xC0: 1, 0xC2: 1, 0xC3: 1, 0xCA: 5, 0xCB: 9, 0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9}
FIXED.update({0xD0: 2, 0xD1: 3, 0xD2: 5, 0xD3: 9, 0xD4: 3, 0xD5: 4, 0xD6: 6, 0xD7: 10, 0xD8: 18})
_BIN = {0xC4: 1, 0xC5: 2, 0xC6: 4}


def skip_value(view: memoryview, pos: int) -> int:
    """Position just after the msgpack value starting at ``pos`` (nested values included).

    Raises:
        ValueError: an invalid type byte.
        IndexError: the value runs past the end of ``view`` (truncated data).
    """
    pending = 1
    while pending:
        pending -= 1
        t = view[pos]
        if t <= 0x7F or t >= 0xE0:
            pos += 1
        elif t <= 0x8F:
            pending += 2 * (t & 0x0F)
            pos += 1
        elif t <= 0x9F:
            pending += t & 0x0F
            pos += 1
        elif t <= 0xBF:
            pos += 1 + (t & 0x1F)
        elif t in FIXED:
            pos += FIXED[t]
        elif t in SIZED:
            width = SIZED[t]
            pos += 1 + width + int.from_bytes(view[pos + 1 : pos + 1 + width], "big")
        elif t in EXT:
            width = EXT[t]
            pos += 2 + width + int.from_bytes(view[pos + 1 : pos + 1 + width], "big")
        elif t in (0xDC, 0xDD):
            width = 2 if t == 0xDC else 4
            pending += int.from_bytes(view[pos + 1 : pos + 1 + width], "big")
            pos += 1 + width
        elif t in (0xDE, 0xDF):
            width = 2 if t == 0xDE else 4
            pending += 2 * int.from_bytes(view[pos + 1 : pos + 1 + width], "big")
            pos += 1 + width
        else:
            raise ValueError(f"invalid msgpack type byte 0x{t:02x} at byte {pos}")
    if pos > len(view):
        raise IndexError(pos)
    return pos


def map_header(view: memoryview) -> tuple[int, int]:
    """``(entry count, position of the first key)`` of the msgpack map at the start of ``view``.

    Raises:
        ValueError: the value is not a map.
    """
    t = view[0]
    if 0x80 <= t <= 0x8F:
        return t & 0x0F, 1
    if t == 0xDE:
        return int.from_bytes(view[1:3], "big"), 3
    if t == 0xDF:
        return int.from_bytes(view[1:5], "big"), 5
    raise ValueError(f"not a msgpack map (type byte 0x{t:02x})")


def packed_fields(view: memoryview) -> dict[str, memoryview]:
    """The packed value of every string-named field of a packed sample, as slices of ``view``.

    Entries whose key is not a string are left out.

    Raises:
        ValueError: not a map, or an invalid type byte.
        IndexError: the sample is truncated.
        UnicodeDecodeError: a key is not valid UTF-8.
    """
    count, pos = map_header(view)
    out: dict[str, memoryview] = {}
    for _ in range(count):
        key_end = skip_value(view, pos)
        t = view[pos]
        end = skip_value(view, key_end)
        if 0xA0 <= t <= 0xBF:
            out[str(view[pos + 1 : key_end], "utf-8")] = view[key_end:end]
        elif t in (0xD9, 0xDA, 0xDB):
            out[str(view[pos + 1 + SIZED[t] : key_end], "utf-8")] = view[key_end:end]
        pos = end
    return out


def bin_payload(value: memoryview) -> memoryview | None:
    """The payload of a packed msgpack ``bin`` value (a slice, not a copy), or None if ``value``
    is of another type."""
    width = _BIN.get(value[0])
    if width is None:
        return None
    return value[1 + width :]
