"""Sample codec: msgpack with numpy arrays and complex numbers encoded exactly as msgpack-numpy does.

Encoding matches msgpack-numpy 0.4.8 byte for byte, so datadings reads what shardstream writes and
vice versa. Decoding differs in one deliberate way: object arrays (``kind`` ``b"O"``, stored as a
pickle by msgpack-numpy) are refused with :class:`~shardstream.errors.UnsafeDataError` instead of
being unpickled, because unpickling data from a file runs arbitrary code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
import numpy as np

from ..errors import SampleEncodeError, UnsafeDataError

__all__ = [
    "RESERVED_FIELDS",
    "MSGPACK_SIZE_LIMIT",
    "encode_numpy",
    "decode_numpy",
    "make_packer",
    "packb",
    "unpackb",
]

#: Field names a sample may not use: they mark encoded arrays and complex numbers.
RESERVED_FIELDS = frozenset(["nd", "complex", b"nd", b"complex"])
#: msgpack limits strings, bytes, arrays, maps and (for datadings) whole samples to this size.
MSGPACK_SIZE_LIMIT = 2**32 - 1


def encode_numpy(obj: Any) -> Any:
    """msgpack ``default`` hook: numpy arrays/scalars and Python ``complex`` as msgpack-numpy does.

    Raises:
        SampleEncodeError: for object arrays (msgpack-numpy would pickle them) and any other type
            msgpack cannot represent.
    """
    if isinstance(obj, np.ndarray):
        dtype = obj.dtype
        if dtype.hasobject:
            raise SampleEncodeError(
                f"cannot store a numpy array of dtype {dtype}: object arrays would need pickling"
            )
        if dtype.kind == "V":
            kind, descr = b"V", dtype.descr
        else:
            kind, descr = b"", dtype.str
        # datetime arrays export no buffer; msgpack-numpy fails on them, their bytes decode fine
        contiguous = obj.flags["C_CONTIGUOUS"] and dtype.kind not in "Mm"
        data = obj.data if contiguous else obj.tobytes()
        return {b"nd": True, b"type": descr, b"kind": kind, b"shape": obj.shape, b"data": data}
    if isinstance(obj, (np.bool_, np.number)):
        return {b"nd": False, b"type": obj.dtype.str, b"data": obj.data}
    if isinstance(obj, complex):
        return {b"complex": True, b"data": repr(obj)}
    raise SampleEncodeError(f"cannot serialize {type(obj).__name__!r} object {obj!r:.80}")


class _MalformedArray(ValueError):
    """Raised inside decode; readers re-raise it as CorruptSampleError naming file and sample."""


def decode_numpy(obj: dict) -> Any:
    """msgpack ``object_hook``: turn encoded arrays, scalars and complex numbers back into values.

    Maps without the markers pass through unchanged. Arrays are built over the received buffer
    without a copy (so they are read-only, as with msgpack-numpy).

    Raises:
        UnsafeDataError: for pickled object arrays.
        ValueError: (internal) when an array map is malformed.
    """
    if b"nd" in obj:
        try:
            if obj[b"nd"] is True:
                kind = obj.get(b"kind", b"")
                if kind == b"O":
                    raise UnsafeDataError(
                        None, "sample holds a pickled object array; refusing to unpickle"
                    )
                descr = obj[b"type"]
                if kind == b"V":
                    descr = _structured_descr(descr)
                dtype = np.dtype(descr)
                if dtype.hasobject:
                    raise UnsafeDataError(None, f"sample holds an array of object dtype {dtype}")
                return np.ndarray(buffer=obj[b"data"], dtype=dtype, shape=obj[b"shape"])
            dtype = np.dtype(obj[b"type"])
            if dtype.hasobject:
                raise UnsafeDataError(None, f"sample holds a scalar of object dtype {dtype}")
            return np.frombuffer(obj[b"data"], dtype=dtype)[0]
        except KeyError:
            return obj
        except UnsafeDataError:
            raise
        except (TypeError, ValueError, IndexError) as e:
            raise _MalformedArray(f"malformed numpy array in sample: {e}") from e
    if b"complex" in obj:
        try:
            data = obj[b"data"]
            return complex(data.decode() if isinstance(data, bytes) else data)
        except KeyError:
            return obj
        except (TypeError, ValueError) as e:
            raise _MalformedArray(f"malformed complex number in sample: {e}") from e
    return obj


def _structured_descr(descr: Any) -> Any:
    """Rebuild a structured dtype description from its msgpack form (lists, maybe bytes names)."""
    if isinstance(descr, (list, tuple)):
        return [(_as_str(field[0]), _structured_descr(field[1]), *field[2:]) for field in descr]
    return _as_str(descr)


def _as_str(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def make_packer() -> msgpack.Packer:
    """A msgpack Packer configured exactly as datadings' writer (bin type, numpy hook)."""
    return msgpack.Packer(default=encode_numpy)


def packb(obj: Any) -> bytes:
    """Pack one object to bytes with the dataset codec."""
    return msgpack.packb(obj, default=encode_numpy)


_unpackb: Callable[..., Any] = msgpack.unpackb


def unpackb(data: bytes | bytearray | memoryview) -> Any:
    """Unpack exactly one msgpack message with the dataset codec.

    Raises:
        msgpack exceptions / ValueError for malformed input (readers wrap them into
        :class:`~shardstream.errors.CorruptSampleError`), UnsafeDataError for pickled arrays.
    """
    return _unpackb(data, object_hook=decode_numpy, strict_map_key=False)
