"""Salted 64-bit key hashes (the ``.key_hashes`` file) as datadings computes them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from ..errors import InvalidKeyError

__all__ = ["hash_string", "salt_for", "hash_keys", "MAX_SALT_TRIES"]

MAX_SALT_TRIES = 1000


def salt_for(salt_int: int) -> bytes:
    """The 8-byte salt datadings derives from the integer ``salt_int``: blake2s(str(i))[:8]."""
    return hashlib.blake2s(str(salt_int).encode("utf-8")).digest()[:8]


def hash_string(key: str, salt: bytes = b"") -> int:
    """First 8 bytes of ``blake2s(key, salt=salt)`` as a big-endian unsigned integer."""
    return int.from_bytes(hashlib.blake2s(key.encode("utf-8"), salt=salt).digest()[:8], "big")


def _hash_all(keys: Sequence[str], salt: bytes) -> np.ndarray:
    blake2s = hashlib.blake2s
    digests = b"".join([blake2s(k.encode("utf-8"), salt=salt).digest()[:8] for k in keys])
    return np.frombuffer(digests, dtype=">u8")


def hash_keys(keys: Sequence[str], max_tries: int = MAX_SALT_TRIES) -> tuple[bytes, np.ndarray]:
    """Hash every key, searching salts 0, 1, ... until no two keys share a hash.

    Args:
        keys: the dataset's keys (str).
        max_tries: how many salts to try.

    Returns:
        ``(salt, hashes)`` with ``hashes`` a big-endian uint64 array in key order.

    Raises:
        InvalidKeyError: a key is not a ``str``.
        RuntimeError: if every salt tried gave a collision (practically impossible for distinct
            keys; equal keys always collide, so callers reject duplicates first).
    """
    bad = next((key for key in keys if type(key) is not str), None)
    if bad is not None:
        raise InvalidKeyError(
            f"keys must be str to be hashed, got {type(bad).__name__} {bad!r:.60}"
        )
    for salt_int in range(max_tries):
        salt = salt_for(salt_int)
        hashes = _hash_all(keys, salt)
        if len(np.unique(hashes)) == len(hashes):
            return salt, hashes
    raise RuntimeError(f"hash collisions after {max_tries} tries; try increasing max_tries")
