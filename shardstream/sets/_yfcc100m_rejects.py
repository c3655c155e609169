"""YFCC100m's reject lists: which members of which image pack :mod:`.yfcc100m` leaves out.

A list is msgpack ``{pack: [member index, ...]}`` (datadings' shipped format) or text lines
``pack index``; either plain, ``.gz`` or ``.xz``. msgpack is decoded with shardstream's codec
(nothing is unpickled); a file that is not one message is read as text, as datadings does.
"""

from __future__ import annotations

import functools
import lzma
import os
from array import array
from collections import defaultdict

from ..errors import CorruptMetadataError
from ..format.codec import unpackb
from .tools import open_comp

__all__ = ["parse_rejected"]


def parse_rejected(path: str, rejected: defaultdict) -> defaultdict:
    """Add the rejects of ``path`` (msgpack ``{pack: [index, ...]}`` or text ``pack index``
    lines, plain, ``.gz`` or ``.xz``) to ``rejected``. A file is decoded once per process and
    modification time (datadings' list holds 2.4 million indices).

    Raises:
        MetadataNotFoundError: ``path`` does not exist.
        CorruptMetadataError: the file cannot be decoded or holds something else.
    """
    path = os.path.abspath(path)
    try:
        st = os.stat(path)
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:  # opening it below names the fault
        stamp = (None, None)
    for pack, indices in _load(path, *stamp).items():
        rejected[pack].update(indices)
    return rejected


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int | None, size: int | None) -> dict[str, frozenset[int]]:
    try:
        with open_comp(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise  # MetadataNotFoundError, naming the file
    except (OSError, EOFError, ValueError, lzma.LZMAError) as error:  # broken gzip / xz streams
        raise CorruptMetadataError(path, f"cannot read the reject list: {error}") from None
    try:
        found = unpackb(raw)
    except ValueError:  # several messages or none: a text list, as datadings falls back
        return _load_text(path, raw)
    except Exception as error:  # noqa: BLE001 - any msgpack fault is the file's
        raise CorruptMetadataError(path, f"not a msgpack reject list: {error}") from None
    if not isinstance(found, dict):
        raise CorruptMetadataError(
            path, f"a reject list maps packs to indices, not {type(found).__name__}"
        )
    out = {}
    for pack, indices in found.items():
        if not isinstance(pack, str) or not isinstance(indices, list | tuple):
            raise CorruptMetadataError(path, f"pack {pack!r}: not a name with a list of indices")
        try:
            array("q", indices)  # checks every index is an integer, at C speed
        except (TypeError, OverflowError):
            raise CorruptMetadataError(
                path, f"pack {pack!r}: member indices must be integers"
            ) from None
        out[pack] = frozenset(indices)
    return out


def _load_text(path: str, raw: bytes) -> dict[str, frozenset[int]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CorruptMetadataError(path, f"a text reject list must be UTF-8: {error}") from None
    found: defaultdict[str, set[int]] = defaultdict(set)
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        parts = line.strip("\n").split(" ")
        try:
            pack, index = parts
            found[pack].add(int(index))
        except ValueError:
            raise CorruptMetadataError(
                path, f"line {number}: expected 'PACK INDEX', got {line!r}"
            ) from None
    return {pack: frozenset(indices) for pack, indices in found.items()}
