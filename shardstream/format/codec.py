"""Sample codec: msgpack with numpy arrays and complex numbers encoded exactly as msgpack-numpy does.

Encoding matches msgpack-numpy 0.4.8 byte for byte, so datadings reads what shardstream writes and
vice versa. Decoding differs in one deliberate way: object arrays (``kind`` ``b"O"``, stored as a
pickle by msgpack-numpy) are refused with :class:`~shardstream.errors.UnsafeDataError` instead of
being unpickled, because unpickling data from a file runs arbitrary code.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import msgpack
import numpy as np

from ..errors import CorruptSampleError, SampleEncodeError, ShardstreamError, UnsafeDataError

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
        SampleEncodeError: for object arrays (msgpack-numpy would pickle them), arrays of a
            zero-size dtype (``|V0``, ``[]``: :func:`decode_numpy` refuses them) and any other
            type msgpack cannot represent.
    """
    if isinstance(obj, np.ndarray):
        dtype = obj.dtype
        if dtype.hasobject:
            raise SampleEncodeError(
                f"cannot store a numpy array of dtype {dtype}: object arrays would need pickling"
            )
        if dtype.itemsize == 0:  # decode_numpy refuses them: their shape is unchecked by bytes
            raise SampleEncodeError(f"cannot store a numpy array of dtype {dtype}: no item size")
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
    """Raised inside decode; :func:`unpackb` re-raises it as CorruptSampleError."""


def decode_numpy(obj: dict) -> Any:
    """msgpack ``object_hook``: turn encoded arrays, scalars and complex numbers back into values.

    Maps without the markers pass through unchanged. Arrays are built over the received buffer
    without a copy (so they are read-only, as with msgpack-numpy). The payload must hold exactly
    the bytes the shape and dtype need, and the dtype must have a positive item size: a
    zero-size dtype with a huge shape (``|V0``, ``[2**62]``) would decode from zero bytes to an
    array whose every later use hangs or runs out of memory.

    Raises:
        UnsafeDataError: for pickled object arrays.
        ValueError: (internal) when an array map is malformed; :func:`unpackb` turns it into
            :class:`~shardstream.errors.CorruptSampleError`.
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
                dtype = _dtype(descr)
                shape = _shape(obj[b"shape"])
                data = _payload(obj[b"data"], dtype, math.prod(shape))
                return np.ndarray(buffer=data, dtype=dtype, shape=shape)
            dtype = _dtype(obj[b"type"])
            return np.frombuffer(_payload(obj[b"data"], dtype, 1), dtype=dtype)[0]
        except KeyError:
            return obj
        except (UnsafeDataError, _MalformedArray):
            raise
        except (TypeError, ValueError, IndexError, OverflowError, RecursionError) as e:
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


def _dtype(descr: Any) -> np.dtype:
    """The dtype an array map names; never an object dtype nor one of zero item size."""
    dtype = np.dtype(descr)
    if dtype.hasobject:
        raise UnsafeDataError(None, f"sample holds an array or scalar of object dtype {dtype}")
    if dtype.itemsize == 0:
        raise _MalformedArray(f"malformed numpy array in sample: dtype {dtype} has no item size")
    return dtype


def _shape(shape: Any) -> tuple[int, ...]:
    """An array map's shape: a list of non-negative ints (an int alone is a 1-d shape)."""
    if type(shape) is int:
        shape = (shape,)
    if not isinstance(shape, (list, tuple)) or not all(type(n) is int and n >= 0 for n in shape):
        raise _MalformedArray(f"malformed numpy array in sample: shape {shape!r:.80}")
    return tuple(shape)


def _payload(data: Any, dtype: np.dtype, count: int) -> Any:
    """``data`` if it holds exactly ``count`` items of ``dtype`` (compared in exact ints)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _MalformedArray(
            f"malformed numpy array in sample: its data is a {type(data).__name__}, not bytes"
        )
    if count * dtype.itemsize != len(data):
        raise _MalformedArray(
            f"malformed numpy array in sample: {count} items of {dtype} need "
            f"{count * dtype.itemsize} bytes, the payload holds {len(data)}"
        )
    return data


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


def unpackb(
    data: bytes | bytearray | memoryview,
    *,
    path: str | os.PathLike | None = None,
    index: int | None = None,
) -> Any:
    """Unpack exactly one msgpack message with the dataset codec.

    msgpack's own limits apply (no string, array or map longer than the data; nesting at most
    msgpack's stack depth), and every array is checked against its payload (see
    :func:`decode_numpy`).

    Args:
        data: the packed message (one sample, or one packed field of it).
        path: the file the bytes come from, named in errors (``None``: unknown).
        index: the sample's index in that file, named in errors (``None``: unknown).

    Raises:
        CorruptSampleError: the bytes are not exactly one well-formed message: truncated,
            trailing bytes, an invalid type byte, too deep, a malformed array, complex number
            or map key, or too large to build in memory.
        UnsafeDataError: the message holds a pickled object array.
    """
    try:
        return _unpackb(data, object_hook=decode_numpy, strict_map_key=False)
    except UnsafeDataError as e:
        if path is None and index is None:
            raise
        raise UnsafeDataError(path, f"{_sample(index)}{e.problem}") from None
    except ShardstreamError:
        raise
    except Exception as e:  # msgpack's, numpy's and Python's errors on malformed input alike
        problem = f"does not decode: {type(e).__name__}: {str(e) or 'not valid msgpack'}"
        raise CorruptSampleError(path, f"{_sample(index)}{problem}") from e


def _sample(index: int | None) -> str:
    return "sample: " if index is None else f"sample {index}: "
