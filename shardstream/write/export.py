"""Export a packed set to WebDataset tar shards or to a Parquet file, losslessly.

The field mapping is :mod:`shardstream.format.interchange`'s; importing the result back
(``shardstream write webdataset``, every member kept by default, or ``shardstream write
parquet``) gives every
sample exactly. Both writers are atomic: every tar shard (or the Parquet file) is written
under a temp name and committed as one group, so an interrupted export leaves no partial
output and an older export of the same name stays until the commit.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InterchangeError, MissingDependencyError, NothingToConvertError
from ..format.atomic import StagedFiles
from ..format.interchange import (
    ENCODING_KEY,
    KEY_SUFFIX,
    column_plan,
    member_suffixes,
    rows_to_columns,
    webdataset_key,
)
from .prompt import confirm_overwrite

__all__ = ["export_parquet", "export_webdataset", "webdataset_shard_name"]

#: Rows per Parquet row group (a group of ~100 KB images is ~100 MB).
DEFAULT_ROWS_PER_GROUP = 1024


def webdataset_shard_name(name: str, index: int) -> str:
    """``<name>-000000.tar``: WebDataset's usual shard names (6 digits, brace-expandable)."""
    return f"{name}-{index:06d}.tar"


def export_webdataset(
    samples: Iterable[Mapping[str, Any]],
    folder: str | os.PathLike,
    *,
    name: str,
    samples_per_shard: int = 10_000,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Write ``samples`` as WebDataset tar shards ``folder/<name>-000000.tar``, ...

    Args:
        samples: sample dicts with a str ``"key"``, in order.
        folder: the output folder (created).
        name: the shards' name stem.
        samples_per_shard: samples per tar shard.
        overwrite: replace existing shards of that name without asking.
        progress: called with the number of samples after each one.

    Returns:
        The shards written, in order.

    Raises:
        ConfigError: ``samples_per_shard`` is not positive.
        NothingToConvertError: no samples.
        InterchangeError: a field name cannot be a member name.
        DatasetExistsError: the first shard exists and may not be replaced.
    """
    if samples_per_shard < 1:
        raise ConfigError(f"samples_per_shard must be at least 1, got {samples_per_shard}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    first = folder / webdataset_shard_name(name, 0)
    if first.exists() and not overwrite:
        confirm_overwrite(first)
    staged = StagedFiles(anchor=first)
    shards: list[Path] = []
    tar: tarfile.TarFile | None = None
    file: Any = None
    count = 0
    try:
        for number, sample in enumerate(samples):
            if number % samples_per_shard == 0:
                if tar is not None:
                    _close_shard(tar, file)
                shards.append(folder / webdataset_shard_name(name, len(shards)))
                file = staged.open(shards[-1])
                tar = tarfile.open(fileobj=file, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115
            key, keep_key = webdataset_key(sample["key"], number)
            members = member_suffixes(sample)
            if keep_key:
                members.append((KEY_SUFFIX, sample["key"].encode("utf-8", "surrogatepass")))
            for suffix, data in members:
                _add_member(tar, f"{key}.{suffix}", data)  # type: ignore[arg-type]
            count = number + 1
            if progress is not None:
                progress(count)
        if tar is None:
            raise NothingToConvertError(f"{folder}: nothing to export: the set has no samples")
        _close_shard(tar, file)
        staged.commit()
    except BaseException:
        if file is not None and not file.closed:
            file.close()
        staged.abort()
        raise
    return shards


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0  # the same samples give the same bytes
    tar.addfile(info, io.BytesIO(data))


def _close_shard(tar: tarfile.TarFile, file: Any) -> None:
    tar.close()
    os.fsync(file.fileno())
    file.close()


def export_parquet(
    samples: Callable[[], Iterable[Mapping[str, Any]]],
    output: str | os.PathLike,
    *,
    rows_per_group: int = DEFAULT_ROWS_PER_GROUP,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write the samples as one Parquet file (a row per sample, images as binary columns).

    Args:
        samples: returns the samples each time it is called (they are read twice: once to
            choose each column's type, once to write).
        output: the Parquet file.
        rows_per_group: rows per row group.
        overwrite: replace an existing file without asking.
        progress: called with the number of samples written after each row group.

    Returns:
        ``output``.

    Raises:
        MissingDependencyError: pyarrow is not installed.
        NothingToConvertError: no samples.
        DatasetExistsError: ``output`` exists and may not be replaced.
    """
    pa, pq = import_pyarrow()
    output = Path(output)
    if rows_per_group < 1:
        raise ConfigError(f"rows_per_group must be at least 1, got {rows_per_group}")
    if output.exists() and not overwrite:
        confirm_overwrite(output)
    plan = column_plan(samples())
    if not plan:
        raise NothingToConvertError(f"{output}: nothing to export: the set has no samples")
    if "key" in plan and plan["key"] != "string":
        raise InterchangeError(output, "every sample's key must be a str")
    types = {
        "string": pa.string(),
        "binary": pa.binary(),
        "int64": pa.int64(),
        "double": pa.float64(),
        "bool": pa.bool_(),
    }
    schema = pa.schema(
        [
            pa.field(name, pa.binary(), metadata={ENCODING_KEY: b"msgpack"})
            if kind == "msgpack"
            else pa.field(name, types[kind])
            for name, kind in plan.items()
        ]
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    staged = StagedFiles()
    file = staged.open(output)
    try:
        with pq.ParquetWriter(file, schema) as writer:
            batch: list[Mapping[str, Any]] = []
            written = 0
            for sample in samples():
                batch.append(sample)
                if len(batch) == rows_per_group:
                    written += _write_group(pa, writer, schema, plan, batch)
                    batch = []
                    if progress is not None:
                        progress(written)
            if batch:
                written += _write_group(pa, writer, schema, plan, batch)
                if progress is not None:
                    progress(written)
        os.fsync(file.fileno())
        file.close()
        staged.commit()
    except BaseException:
        file.close()
        staged.abort()
        raise
    return output


def _write_group(pa: Any, writer: Any, schema: Any, plan: Mapping[str, str], batch: list) -> int:
    columns = rows_to_columns(batch, plan)
    arrays = [pa.array(columns[f.name], type=f.type) for f in schema]
    writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
    return len(batch)


def import_pyarrow() -> tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``.

    Raises:
        MissingDependencyError: pyarrow is not installed.
    """
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as error:
        raise MissingDependencyError(
            "Parquet export and import need pyarrow: pip install pyarrow"
        ) from error
    return pyarrow, pyarrow.parquet
