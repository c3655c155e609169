"""Converting one item into packed sample bytes: the work each conversion worker (a process of the
local engine, a Ray task) runs, and the failure it reports instead of raising.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import BadSourceError, ConfigError, ReservedKeyError
from ..format.codec import RESERVED_FIELDS, make_packer
from .loaders import DEFAULT_MAX_SAMPLE_BYTES, open_regular_file, read_exactly_into, read_file
from .pool import Output, Ref
from .transcode import ImageFault, check_image, check_image_in, transcode_image

if TYPE_CHECKING:  # annotations only: conversion imports this module
    from .conversion import Item
    from .shard_writer import InPlaceWriter

#: the packer of this worker process, made on its first chunk
_packer: Any = None
#: the keyword arguments of a read_file load that :func:`_convert_in_place` takes over
_MAX_ONLY = frozenset({"max_bytes"})


@dataclass(frozen=True)
class _Options:
    image_field: str
    transcode: bool
    max_side: int | None
    quality: int | None


class _Failure(NamedTuple):
    source: str
    reason: str
    error_type: type[BadSourceError]


def _convert_chunk(
    items: list[Item], options: _Options, output: Output
) -> list[tuple[str, Ref] | _Failure]:
    """Load, check or transcode, and pack each item; bad sources become :class:`_Failure`."""
    global _packer
    if _packer is None:
        _packer = make_packer()
    return [_convert_one(item, options, output, _packer) for item in items]


def _convert_one(
    item: Item, options: _Options, output: Output, packer: Any
) -> tuple[str, Ref] | _Failure:
    try:
        data = item.load()
    except BadSourceError as e:
        return _Failure(item.source, e.reason, type(e))
    except Exception as e:  # the load function belongs to the source: any fault is the source's
        return _Failure(item.source, f"cannot read: {_describe(e)}", BadSourceError)
    if type(data) is dict:  # a whole sample after its key (datadings-compatible sets)
        return _convert_sample(item, data, options, output, packer)
    if type(data) is not bytes:
        try:
            if isinstance(data, dict):  # a dict subclass is not a whole sample: no bytes either
                raise TypeError
            data = memoryview(data).tobytes()
        except TypeError:
            raise ConfigError(
                f"item {item.key!r}: load() must return bytes, got {type(data).__name__}"
            ) from None
    try:
        if options.transcode:
            data = transcode_image(data, max_side=options.max_side, quality=options.quality)
        else:
            check_image(data)
    except ImageFault as e:
        return _Failure(item.source, str(e), BadSourceError)
    if item.fields:
        _check_fields(item, options.image_field)
    return item.key, output.put(_pack_parts(packer, item, options.image_field, data))


def _convert_sample(
    item: Item, sample: dict, options: _Options, output: Output, packer: Any
) -> tuple[str, Ref] | _Failure:
    """Pack ``{"key": item.key, **sample}`` as is; encoded image bytes in the image field are
    checked (or transcoded) like those of a plain item, any other value is written unchanged."""
    image = sample.get(options.image_field)
    if type(image) is bytes:
        try:
            if options.transcode:
                image = transcode_image(image, max_side=options.max_side, quality=options.quality)
                sample = {**sample, options.image_field: image}
            else:
                check_image(image)
        except ImageFault as e:
            return _Failure(item.source, str(e), BadSourceError)
    if "key" in sample:
        raise ConfigError(f"item {item.key!r}: a loaded sample may not hold its own 'key'")
    return item.key, output.put([packer.pack({"key": item.key, **sample})])


def _pack_parts(packer: Any, item: Item, image_field: str, data: bytes) -> list[bytes]:
    """The msgpack encoding of the sample dict, with the image bytes as a part of their own.

    Byte for byte what packing ``{"key": ..., image_field: data, "label": ..., **fields}``
    gives, without copying the image into a packed buffer first.
    """
    head = _sample_head(packer, item, image_field) + _bin_header(len(data))
    return [head, data, _sample_tail(packer, item)]


def _sample_head(packer: Any, item: Item, image_field: str) -> bytes:
    """The packed sample's bytes before the image's bin header."""
    count = 2 + (item.label is not None) + len(item.fields)
    head = packer.pack_map_header(count) + packer.pack("key") + packer.pack(item.key)
    return head + packer.pack(image_field)


def _sample_tail(packer: Any, item: Item) -> bytes:
    """The packed sample's bytes after the image (label and fields)."""
    tail = [packer.pack("label"), packer.pack(item.label)] if item.label is not None else []
    for name, value in item.fields.items():
        tail += (packer.pack(name), packer.pack(value))
    return b"".join(tail)


def _in_place_source(item: Item, options: _Options) -> tuple[str, int] | None:
    """``(path, max_bytes)`` of an item that :func:`_convert_in_place` can write: one read with
    :func:`~shardstream.write.loaders.read_file` and kept as is (no transcoding); else ``None``."""
    load = item.load
    if options.transcode or type(load) is not functools.partial or load.func is not read_file:
        return None
    if (
        len(load.args) != 1
        or type(load.args[0]) is not str
        or not _MAX_ONLY.issuperset(load.keywords)
    ):
        return None
    return load.args[0], load.keywords.get("max_bytes", DEFAULT_MAX_SAMPLE_BYTES)


def _convert_in_place(
    item: Item, path: str, max_bytes: int, options: _Options, writer: InPlaceWriter, packer: Any
) -> _Failure | bool:
    """Read the file ``path`` of ``item`` straight into ``writer``'s buffer, check it there,
    frame it with the sample's head and tail and append it: what writing :func:`_convert_one`'s
    packed sample gives, byte for byte, with the same failures, without copying the bytes.

    Returns:
        ``True`` when the sample was written; a :class:`_Failure` for a bad source; ``False``
        when the item must take :func:`_convert_one` instead (the file changed size while it was
        read, or its label or fields do not pack: that path reports them as it always did).
    """
    try:
        head = _sample_head(packer, item, options.image_field)
        tail = _sample_tail(packer, item)
    except Exception:  # noqa: BLE001 - _convert_one raises or reports it in its own order
        return False
    try:
        fd, size = open_regular_file(path, max_bytes=max_bytes)
    except BadSourceError as e:
        return _Failure(item.source, e.reason, type(e))
    except Exception as e:  # as _convert_one: any fault of reading is the source's
        return _Failure(item.source, f"cannot read: {_describe(e)}", BadSourceError)
    try:
        head += _bin_header(size)
        total = len(head) + size + len(tail)
        buffer, start = writer.room(total + 1)  # its errors are the output's: not caught
        data = start + len(head)
        try:
            complete = read_exactly_into(fd, buffer, data, size)
        except Exception as e:
            return _Failure(item.source, f"cannot read: {_describe(e)}", BadSourceError)
    finally:
        os.close(fd)
    if not complete:
        return False
    try:
        check_image_in(buffer, data, data + size)
    except ImageFault as e:
        return _Failure(item.source, str(e), BadSourceError)
    if item.fields:
        _check_fields(item, options.image_field)
    buffer[start:data] = head
    buffer[data + size : start + total] = tail
    writer.append_room(item.key, total)
    return True


def _bin_header(size: int) -> bytes:
    """msgpack's header of a bin value of ``size`` bytes (bin 8, bin 16 or bin 32)."""
    if size < 1 << 8:
        return bytes((0xC4, size))
    if size < 1 << 16:
        return b"\xc5" + size.to_bytes(2, "big")
    return b"\xc6" + size.to_bytes(4, "big")


def _check_fields(item: Item, image_field: str) -> None:
    clash = {"key", "label", image_field}.intersection(item.fields)
    if clash:
        raise ConfigError(
            f"item {item.key!r}: fields {sorted(clash)} clash with the sample's own fields"
        )
    if not RESERVED_FIELDS.isdisjoint(item.fields):
        reserved = sorted(map(str, RESERVED_FIELDS.intersection(item.fields)))
        raise ReservedKeyError(f"item {item.key!r}: reserved field name(s) {reserved}")


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{type(error).__name__}: {error.strerror}"  # the path is already the source
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
