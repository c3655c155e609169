"""datadings' ``tools.msgpack``: msgpack with numpy arrays, as datadings configures it.

Arrays are packed byte for byte as msgpack-numpy does (shardstream's codec,
:mod:`shardstream.format.codec`). Unpacking never unpickles: an object array (which
msgpack-numpy stores as a pickle) raises :class:`~shardstream.errors.UnsafeDataError`.
"""

from functools import partial

import msgpack as _msgpack

from ....format.codec import decode_numpy, encode_numpy

__all__ = [
    "make_packer",
    "make_unpacker",
    "pack",
    "pack_kwargs",
    "packb",
    "unpack",
    "unpack_kwargs",
    "unpackb",
]

#: keyword arguments of every packer: shardstream's numpy encoder
pack_kwargs = {"default": encode_numpy}
#: keyword arguments of every unpacker: any map key, shardstream's (pickle-free) numpy decoder
unpack_kwargs = {"strict_map_key": False, "object_hook": decode_numpy}

make_packer = partial(_msgpack.Packer, **pack_kwargs)
"""Create a ``msgpack.Packer`` with the numpy encoder."""

make_unpacker = partial(_msgpack.Unpacker, **unpack_kwargs)
"""Create a ``msgpack.Unpacker`` with the numpy decoder."""

pack = partial(_msgpack.pack, **pack_kwargs)
"""Pack an object to a stream."""

packb = partial(_msgpack.packb, **pack_kwargs)
"""Pack an object to bytes."""

unpack = partial(_msgpack.unpack, **unpack_kwargs)
"""Unpack an object from a stream."""

unpackb = partial(_msgpack.unpackb, **unpack_kwargs)
"""Unpack an object from bytes."""
