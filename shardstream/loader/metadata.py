"""The metadata table of a dataset: one row per sample, scalar fields only, cached as Parquet.

Columns, in order: ``index`` (BIGINT, ``0..n-1`` in sample order), ``key`` (VARCHAR), then every
*scalar* field found in the samples in first-seen order (``label``, scores, flags, strings: msgpack
ints, floats, bools, strings and numpy scalars of those kinds), then ``size`` (BIGINT, the packed
byte size of the sample). Bytes, arrays, lists and nested maps are left out. A field missing from
some samples (or ``None`` there) is NULL in those rows; ints mixed with floats become DOUBLE; a
field mixing strings and numbers is left out. Sample fields named ``index`` or ``size`` appear as
``field_index`` / ``field_size``.

Building reads each sample's packed bytes and walks the msgpack map's headers: values that are not
scalars (an image's bytes) are jumped over by their length, never copied or decoded, so on a
memory-mapped file their pages are not even read. Readers that cannot hand out packed bytes are
read with decoded samples instead (``size`` is then NULL).

Caching: the table of a data file ``X`` is stored as ``X.meta.parquet`` (written by DuckDB under a
hidden temp name, then renamed into place). Its Parquet key/value metadata records the dataset's
*fingerprint*: the data md5 recorded in ``X.md5`` (or, without an md5 file, the data file's size and
modification time). A cache whose fingerprint differs is rebuilt. A sharded dataset (a manifest, a
glob, a list of shards) keeps one cache per shard, ``<shard>.meta.parquet``, so rewriting one
shard rebuilds only that shard's table; the tables are concatenated with global indices. When the
folder is not writable the table is built and kept in memory only (no error, no file).

The table lives in an in-memory DuckDB database (``MetadataTable.connection``) as the table
``dataset``; file system access of that connection is switched off once the table is loaded, so
queries run on it cannot read or write files.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CorruptSampleError, MissingDependencyError
from ..format.atomic import StagedFiles
from ..format.codec import unpackb
from ..format.fields import SIZED, map_header, skip_value
from ..format.integrity import load_md5file
from ..format.paths import DatasetPaths
from ..read.msgpack import MsgpackReader
from ..read.open import open_dataset
from ..read.reader import Reader
from ..read.sharded import ShardedReader

__all__ = [
    "META_SUFFIX",
    "TABLE_NAME",
    "MetadataTable",
    "metadata_table",
    "dataset_fingerprint",
]

#: Suffix of the cache file: ``X.meta.parquet`` next to the data file ``X``.
META_SUFFIX = ".meta.parquet"
#: The name under which queries see the table.
TABLE_NAME = "dataset"
#: Parquet key/value metadata entry holding the fingerprint of the dataset the cache was built from.
FINGERPRINT_KEY = "shardstream_fingerprint"
#: Bumped when the table's layout changes, so old caches are rebuilt.
_LAYOUT = "shardstream.meta/1"
_RENAMED = {"index": "field_index", "size": "field_size"}


class MetadataTable:
    """One dataset's metadata table in an in-memory DuckDB database, under the name ``dataset``.

    Args:
        connection: a DuckDB connection holding the table ``dataset``.
        cache_paths: the Parquet files the table was loaded from or saved to (empty when it lives
            in memory only).

    Not picklable (DuckDB connections are not); build it in the process that queries it.
    """

    def __init__(self, *, connection: Any, cache_paths: Iterable[Path] = ()):
        self.connection = connection
        self.cache_paths: list[Path] = list(cache_paths)
        self._len = int(connection.execute(f"SELECT count(*) FROM {TABLE_NAME}").fetchone()[0])
        self.column_names: list[str] = [
            row[0] for row in connection.execute(f"DESCRIBE {TABLE_NAME}").fetchall()
        ]

    def __len__(self) -> int:
        return self._len

    def column(self, name: str) -> np.ndarray:
        """All values of column ``name`` in sample order (a masked array where it has NULLs).

        Raises:
            KeyError: no such column.
        """
        if name not in self.column_names:
            raise KeyError(f"metadata table has no column {name!r}; columns: {self.column_names}")
        quoted = '"' + name.replace('"', '""') + '"'
        return self.connection.execute(
            f"SELECT {quoted} FROM {TABLE_NAME} ORDER BY index"
        ).fetchnumpy()[name]

    def __repr__(self) -> str:
        where = ", ".join(map(str, self.cache_paths)) or "memory"
        return f"MetadataTable(rows={self._len}, columns={self.column_names}, cache={where})"


def metadata_table(source: Reader | str | os.PathLike, *, cache: bool = True) -> MetadataTable:
    """The metadata table of a dataset, from its cache when that is current, else built now.

    Args:
        source: a :class:`~shardstream.read.Reader`, or the path of a data file or a manifest.
        cache: read and write ``<data file>.meta.parquet`` caches (False builds in memory).

    Returns:
        The table (see the module docstring for its columns).

    Raises:
        MissingDependencyError: duckdb is not installed.
        DatasetNotFoundError, MissingIndexError, ...: ``source`` is a path that does not open.
        CorruptSampleError: a sample's bytes are not a msgpack map.
    """
    duckdb = _duckdb()
    if isinstance(source, (str, os.PathLike)):
        source = open_dataset(source)
    readers = source.shards if isinstance(source, ShardedReader) else [source]
    starts = source.starts.tolist() if isinstance(source, ShardedReader) else [0]
    connection = duckdb.connect()
    cache_paths = []
    pieces = []
    for number, (reader, start) in enumerate(zip(readers, starts)):
        saved = _load_part(connection, f"_part{number}", reader, cache)
        if saved is not None:
            cache_paths.append(saved)
        pieces.append(f"SELECT * REPLACE (index + {int(start)} AS index) FROM _part{number}")
    union = " UNION ALL BY NAME ".join(pieces)
    connection.execute(f"CREATE TABLE {TABLE_NAME} AS SELECT * FROM ({union}) ORDER BY index")
    for number in range(len(readers)):
        connection.execute(f"DROP VIEW _part{number}")
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")
    return MetadataTable(connection=connection, cache_paths=cache_paths)


def dataset_fingerprint(data_path: str | os.PathLike) -> str:
    """What a cache is checked against: the data md5 from ``X.md5``, else size and mtime.

    Args:
        data_path: the data file ``X``.

    Returns:
        ``"md5:<hex>"``, or ``"stat:<size>:<mtime_ns>"`` when ``X.md5`` is missing or does not
        list ``X``; prefixed by the table layout version.
    """
    paths = DatasetPaths.of(data_path)
    try:
        digest = load_md5file(paths.md5).get(paths.data.name)
    except (OSError, ValueError):
        digest = None
    if digest is not None:
        return f"{_LAYOUT};md5:{digest}"
    stat = os.stat(paths.data)
    return f"{_LAYOUT};stat:{stat.st_size}:{stat.st_mtime_ns}"


# --- building -----------------------------------------------------------------------------------


def _load_part(connection: Any, view: str, reader: Reader, cache: bool) -> Path | None:
    """Create the temp view ``view`` over one reader's table; return its cache file if any."""
    data_path = getattr(reader, "path", None)
    use_cache = cache and isinstance(reader, MsgpackReader) and data_path is not None
    if use_cache:
        meta_path = Path(data_path).with_name(Path(data_path).name + META_SUFFIX)
        fingerprint = dataset_fingerprint(data_path)
        if meta_path.is_file() and _cached_fingerprint(connection, meta_path) == fingerprint:
            connection.execute(
                f"CREATE TEMP VIEW {view} AS SELECT * FROM read_parquet('{_sql_path(meta_path)}')"
            )
            return meta_path
    arrays, valid = _build_columns(reader)
    source = f"{view}_arrays"
    connection.register(source, {**arrays, **{f"_valid_{k}": m for k, m in valid.items()}})
    exprs = []
    for name in arrays:
        quoted = _quote(name)
        if name in valid:
            exprs.append(f"CASE WHEN {_quote('_valid_' + name)} THEN {quoted} END AS {quoted}")
        else:
            exprs.append(quoted)
    connection.execute(f"CREATE TEMP TABLE {view}_built AS SELECT {', '.join(exprs)} FROM {source}")
    connection.unregister(source)
    connection.execute(f"CREATE TEMP VIEW {view} AS SELECT * FROM {view}_built")
    if use_cache and _save(connection, f"{view}_built", meta_path, fingerprint):
        return meta_path
    return None


def _cached_fingerprint(connection: Any, meta_path: Path) -> str | None:
    try:
        rows = connection.execute(
            "SELECT value::VARCHAR FROM parquet_kv_metadata(?) WHERE key::VARCHAR = ?",
            [str(meta_path), FINGERPRINT_KEY],
        ).fetchall()
    except Exception:  # unreadable or not Parquet: rebuild
        return None
    return rows[0][0] if rows else None


def _save(connection: Any, table: str, meta_path: Path, fingerprint: str) -> bool:
    """Write the cache atomically; False when the folder is not writable."""
    staged = StagedFiles()
    try:
        staged.open(meta_path).close()
    except OSError:
        return False
    tmp = staged.temp_paths[-1]
    try:
        escaped = fingerprint.replace("'", "''")
        connection.execute(
            f"COPY {table} TO '{_sql_path(tmp)}' "
            f"(FORMAT parquet, KV_METADATA {{{FINGERPRINT_KEY}: '{escaped}'}})"
        )
        staged.commit()
    except BaseException:
        staged.abort()
        raise
    return True


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _build_columns(reader: Reader) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Scan every sample into typed columns (``index``, ``key``, fields, ``size``).

    Returns:
        ``(arrays, valid)``: numpy arrays by column name, and for columns with NULLs a boolean
        array that is False where the value is NULL.
    """
    n = len(reader)
    fields: dict[str, list[Any]] = {}
    keys: list[Any] = []
    sizes = np.zeros(n, dtype=np.int64)
    size_known = True
    for i, item in enumerate(reader.slice(0, n, raw=True, copy=False)):
        if isinstance(item, (bytes, bytearray, memoryview)):
            view = memoryview(item)
            if view.ndim != 1 or view.itemsize != 1:
                view = view.cast("B")
            sizes[i] = len(view)
            values = _scalar_fields(view, reader, i)
        else:  # a reader whose raw form is not packed bytes
            size_known = False
            sample = item if isinstance(item, dict) else reader.get(i)
            values = [(k, _plain_scalar(v)) for k, v in sample.items() if isinstance(k, str)]
        key = None
        for name, value in values:
            if name == "key":
                key = value
                continue
            if value is _SKIP:
                continue
            name = _RENAMED.get(name, name)
            column = fields.get(name)
            if column is None:
                column = fields[name] = [None] * i
            elif len(column) > i:  # a field repeated inside one sample: keep the first
                continue
            column.append(value)
        keys.append(key if isinstance(key, str) else None)
        for column in fields.values():
            if len(column) == i:
                column.append(None)
    if any(k is None for k in keys):
        keys = [k if k is not None else str(reader.find_key(i)) for i, k in enumerate(keys)]
    arrays: dict[str, np.ndarray] = {
        "index": np.arange(n, dtype=np.int64),
        "key": np.array(keys, dtype=object) if n else np.array([], dtype=object),
    }
    valid: dict[str, np.ndarray] = {}
    for name, values in fields.items():
        typed = _typed_column(values)
        if typed is not None:
            arrays[name], mask = typed
            if mask is not None:
                valid[name] = mask
    arrays["size"] = sizes
    if not size_known:
        valid["size"] = np.zeros(n, dtype=bool)
    return arrays, valid


class _Skip:
    pass


_SKIP: Any = _Skip()  # a value that is not a scalar
_F64 = struct.Struct(">d")
_F32 = struct.Struct(">f")
_NP_SCALAR_HEAD = b"\x83\xc4\x02nd\xc2"  # {b"nd": False, ...}: msgpack-numpy's scalar encoding
_SCALAR_TYPES = frozenset([0xC0, 0xC2, 0xC3, 0xCA, 0xCB, 0xCC, 0xCD, 0xCE, 0xCF, 0xD0, 0xD1, 0xD2])
_SCALAR_TYPES = _SCALAR_TYPES | {0xD3, 0xD9, 0xDA, 0xDB}


def _scalar_fields(view: memoryview, reader: Reader, index: int) -> list[tuple[str, Any]]:
    """``(field, value)`` for every string-named field of a packed sample; non-scalars are _SKIP."""

    try:
        count, pos = map_header(view)
        out = []
        for _ in range(count):
            key_end = skip_value(view, pos)
            kt = view[pos]
            if 0xA0 <= kt <= 0xBF:
                name: Any = str(view[pos + 1 : key_end], "utf-8")
            elif kt in (0xD9, 0xDA, 0xDB):
                name = str(view[pos + 1 + SIZED[kt] : key_end], "utf-8")
            else:
                name = None
            end = skip_value(view, key_end)
            if name is not None:
                out.append((name, _scalar_value(view, key_end, end)))
            pos = end
        if pos > len(view):
            raise ValueError("sample ends inside a value (truncated msgpack)")
        return out
    except (IndexError, ValueError, UnicodeDecodeError) as e:
        raise CorruptSampleError(
            getattr(reader, "path", None), f"sample {index}: cannot read its fields: {e}"
        ) from e


def _scalar_value(view: memoryview, start: int, end: int) -> Any:
    t = view[start]
    if t <= 0x7F:
        return t
    if t >= 0xE0:
        return t - 0x100
    if 0xA0 <= t <= 0xBF:
        return str(view[start + 1 : end], "utf-8")
    if t == 0xCB:
        return _F64.unpack_from(view, start + 1)[0]
    if t == 0xCA:
        return _F32.unpack_from(view, start + 1)[0]
    if t in _SCALAR_TYPES:
        return unpackb(view[start:end])
    if t == 0x83 and view[start : start + 6] == _NP_SCALAR_HEAD:
        value = unpackb(view[start:end])
        return _plain_scalar(value)
    return _SKIP


def _plain_scalar(value: Any) -> Any:
    """``value`` as a Python scalar if it is one (numpy scalars included), else _SKIP."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    return _SKIP


def _typed_column(values: list[Any]) -> tuple[np.ndarray, np.ndarray | None] | None:
    """``(typed array, validity or None)`` for one field's values, or None to leave it out."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    kinds = {type(v) for v in present}
    if str in kinds and kinds != {str}:
        return None  # strings mixed with numbers
    mask = None
    if len(present) != len(values):
        mask = np.array([v is not None for v in values], dtype=bool)
    if kinds == {str}:
        return np.array([v if v is not None else "" for v in values], dtype=object), mask
    if kinds == {bool}:
        return np.array([bool(v) for v in values], dtype=bool), mask
    if float not in kinds and all(-(2**63) <= v < 2**63 for v in present):
        return np.array([0 if v is None else v for v in values], dtype=np.int64), mask
    return np.array([0.0 if v is None else float(v) for v in values], dtype=np.float64), mask


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError as e:
        raise MissingDependencyError(
            "query() and sample_by() with SQL need duckdb: pip install duckdb"
        ) from e
    return duckdb
