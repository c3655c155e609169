"""Bytes on disk and nothing else: codec, index files, checksums, atomic replacement."""

from .codec import decode_numpy, encode_numpy, packb, unpackb
from .integrity import ChecksumWarning, load_md5file, md5_file, verify_data, verify_index
from .keyhash import hash_keys, hash_string
from .legacy import convert_legacy_index
from .paths import DatasetPaths, path_append_suffix

__all__ = [
    "ChecksumWarning",
    "DatasetPaths",
    "convert_legacy_index",
    "decode_numpy",
    "encode_numpy",
    "hash_keys",
    "hash_string",
    "load_md5file",
    "md5_file",
    "packb",
    "path_append_suffix",
    "unpackb",
    "verify_data",
    "verify_index",
]
