"""parquet: import Parquet files (``shardstream export parquet`` output, or any table with a key).

Each row is a sample: ``{"key": <the key column>, **the other columns}`` (a null is a field the
sample lacks; columns marked ``shardstream.encoding = msgpack`` are unpacked with the dataset
codec, see :mod:`shardstream.format.interchange`), so a set exported with ``shardstream export
parquet`` comes back exactly. Bytes in the ``image`` column are checked as images (or
transcoded with ``--max-side`` / ``--quality``) like those of any other converter. Without a
``key`` column (``--key-column``), keys are the row numbers (``000000012``).

The files are listed in order (globs sorted); every file must have the first file's schema
(names, types and encodings), else :class:`~shardstream.errors.InterchangeError` names it.
Only the key column is read up front; the workers read each row group once (the rows of a task
are consecutive) and take their rows from it.
"""

from __future__ import annotations

import argparse
import functools
import glob
import os
from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import InterchangeError, NothingToConvertError, SourceNotFoundError
from ..format.interchange import ENCODING_KEY, columns_to_rows
from ..write.conversion import Item, SizedItems
from ..write.export import import_pyarrow

__all__ = ["NAME", "SOURCES", "add_arguments", "items", "parquet_items", "read_row"]

NAME = "parquet"
SOURCES: tuple = ()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the parquet arguments (files and the key column)."""
    parser.add_argument("files", nargs="+", help="Parquet files or globs, in order")
    parser.add_argument(
        "--key-column", default="key", help="the column of sample keys (default: %(default)s)"
    )
    parser.add_argument(
        "--split", default="train", help="split name used in the output name (default: train)"
    )


def items(args: argparse.Namespace) -> dict[str, Iterable[Item]]:
    """The rows of ``args.files``, as the single split ``args.split``."""
    return {args.split: parquet_items(_find(args.files), key_column=args.key_column)}


def parquet_items(files: Sequence[str], *, key_column: str = "key") -> SizedItems:
    """Items for every row of ``files``.

    Raises:
        NothingToConvertError: no files.
        InterchangeError: a file is not readable Parquet, or its schema differs from the
            first file's.
    """
    pa, pq = import_pyarrow()
    if not files:
        raise NothingToConvertError("nothing to convert: no Parquet files given")
    found: list[Item] = []
    first: tuple[str, list[tuple[str, str, bool]]] | None = None
    for path in files:
        parquet = _open(pq, path)
        shape = _shape(parquet.schema_arrow)
        if first is None:
            first = (path, shape)
        elif shape != first[1]:
            raise InterchangeError(
                path,
                f"its schema {_describe(shape)} differs from {first[0]}'s {_describe(first[1])}",
            )
        names = [name for name, _, _ in shape]
        for group in range(parquet.num_row_groups):
            if key_column in names:
                keys = parquet.read_row_group(group, columns=[key_column]).column(0).to_pylist()
            else:
                keys = [
                    f"{len(found) + row:09d}"
                    for row in range(parquet.metadata.row_group(group).num_rows)
                ]
            for row, key in enumerate(keys):
                if not isinstance(key, str):
                    raise InterchangeError(
                        path, f"row group {group}, row {row}: key {key!r} is not a str"
                    )
                # a whole sample after its key (Item.load may return a dict)
                load: Any = functools.partial(read_row, path, group, row, key_column)
                found.append(Item(key, None, f"{path}:{group}:{row}", load))
    return SizedItems(len(found), found)


def read_row(path: str, group: int, row: int, key_column: str) -> dict[str, Any]:
    """Row ``row`` of row group ``group`` of ``path`` as a sample without its key (the row
    group is read once per process and kept while its rows are asked for)."""
    names, encoded, columns = _row_group(path, group)
    sample = columns_to_rows(names, encoded, [[column[row]] for column in columns])[0]
    sample.pop(key_column, None)
    return sample


@functools.lru_cache(maxsize=2)
def _row_group(path: str, group: int) -> tuple[list[str], list[bool], list[list]]:
    _, pq = import_pyarrow()
    table = _open(pq, path).read_row_group(group)
    shape = _shape(table.schema)
    return (
        [n for n, _, _ in shape],
        [e for _, _, e in shape],
        [c.to_pylist() for c in table.columns],
    )


def _open(pq: Any, path: str) -> Any:
    try:
        return pq.ParquetFile(path)
    except OSError as error:
        if isinstance(error, FileNotFoundError):
            raise SourceNotFoundError(path, "Parquet file not found") from None
        raise InterchangeError(path, f"not a readable Parquet file: {error}") from None
    except Exception as error:  # pyarrow's ArrowInvalid and friends
        raise InterchangeError(path, f"not a readable Parquet file: {error}") from None


def _shape(schema: Any) -> list[tuple[str, str, bool]]:
    return [
        (f.name, str(f.type), (f.metadata or {}).get(ENCODING_KEY) == b"msgpack") for f in schema
    ]


def _describe(shape: list[tuple[str, str, bool]]) -> str:
    return "(" + ", ".join(f"{n}: {'msgpack' if e else t}" for n, t, e in shape) + ")"


def _find(patterns: Sequence[str]) -> list[str]:
    files: list[str] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise SourceNotFoundError(pattern, "no Parquet file matches this pattern")
            files += matches
        elif os.path.isfile(pattern):
            files.append(pattern)
        else:
            raise SourceNotFoundError(pattern, "Parquet file not found")
    return files
