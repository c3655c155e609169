"""YFCC100m's reject lists: which members of which image pack :mod:`.yfcc100m` leaves out.

A list is msgpack ``{pack: [member index, ...]}`` (datadings' shipped format) or text lines
``pack index``; either plain, ``.gz`` or ``.xz``. msgpack is decoded with shardstream's codec
(nothing is unpickled); a file that is not one message is read as text, as datadings does.
"""

from __future__ import annotations

import lzma
import os
from collections import defaultdict

from ..errors import CorruptMetadataError
from ..format.codec import unpackb

__all__ = ["parse_rejected"]


def parse_rejected(path: str, rejected: defaultdict) -> defaultdict:
    """Add the rejects of ``path`` (msgpack ``{pack: [index, ...]}`` or text ``pack index``
    lines, plain, ``.gz`` or ``.xz``) to ``rejected``.

    Raises:
        MetadataNotFoundError: ``path`` does not exist.
        CorruptMetadataError: the file cannot be decoded or holds something else.
    """
    from .tools import open_comp

    path = os.path.abspath(path)
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
        return _parse_rejected_text(path, raw, rejected)
    except Exception as error:  # noqa: BLE001 - any msgpack fault is the file's
        raise CorruptMetadataError(path, f"not a msgpack reject list: {error}") from None
    if not isinstance(found, dict):
        raise CorruptMetadataError(
            path, f"a reject list maps packs to indices, not {type(found).__name__}"
        )
    for pack, indices in found.items():
        if not isinstance(pack, str) or not isinstance(indices, list | tuple):
            raise CorruptMetadataError(path, f"pack {pack!r}: not a name with a list of indices")
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
            raise CorruptMetadataError(path, f"pack {pack!r}: member indices must be integers")
        rejected[pack].update(indices)
    return rejected


def _parse_rejected_text(path: str, raw: bytes, rejected: defaultdict) -> defaultdict:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CorruptMetadataError(path, f"a text reject list must be UTF-8: {error}") from None
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        parts = line.strip("\n").split(" ")
        if len(parts) != 2 or not parts[1].strip().lstrip("-").isdigit():
            raise CorruptMetadataError(path, f"line {number}: expected 'PACK INDEX', got {line!r}")
        rejected[parts[0]].add(int(parts[1]))
    return rejected
