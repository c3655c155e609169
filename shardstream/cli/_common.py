"""What the dataset subcommands share: opening inputs, naming outputs, common options.

An input argument is one of

- a packed data file (or any of its sidecar files): opened as a
  :class:`~shardstream.read.MsgpackReader`;
- a ``*.manifest``: its shards opened as one :class:`~shardstream.read.ShardedReader`;
- a glob pattern (``*``, ``?`` or ``[`` and no file of that exact name): the data files it matches
  (files with a ``.offsets`` or legacy ``.index`` next to them; a matched sidecar stands for its
  data file), sorted, opened as one :class:`~shardstream.read.ShardedReader`.

An output argument (:class:`DatasetOutput`) is a sharded set when it ends in ``.manifest``: shards
``<stem>-00000.msgpack``, ... of at most ``--shard-size`` bytes each (default: the largest data
file among the inputs, so a sharded input keeps its shard size) and the manifest, written by a
:class:`~shardstream.write.ShardedWriter`. Any other name is one packed file, written by a
:class:`~shardstream.write.RawWriter`.

A URL (``s3://...``, any fsspec URL; ``--storage-options JSON``) is a remote input, and a remote
output written by :class:`~shardstream.write.remote.RemoteShardedWriter` (shards uploaded as they
complete, the manifest last) or :class:`~shardstream.write.remote.RemoteFileWriter`.

Class names travel with a dataset in ``<data file or manifest>.labels.txt`` (one name a line, in
label order; written by ``shardstream write``, read with :func:`shardstream.read.list.load_labels`).
:func:`input_labels` finds an input's names and :class:`DatasetOutput` writes them next to its
output, so the commands that copy samples (``split``, ``sample``, ``merge``, ``shuffle``) keep them.

Not a subcommand: the leading underscore keeps :func:`shardstream.cli.command_modules` from
loading it as one.
"""

from __future__ import annotations

import argparse
import os
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..checks import argument_type, parse_int, parse_positive_float, size_argument
from ..errors import ConfigError, DatasetNotFoundError, LabelError
from ..format.atomic import StagedFiles
from ..format.manifest import is_manifest
from ..format.paths import DatasetPaths
from ..read.list import load_labels
from ..read.open import data_files, is_glob
from ..write import RawWriter, ShardedWriter
from ..write.remote import RemoteFileWriter, RemoteShardedWriter, is_remote_output, put_bytes
from ..write.sharded import sharded_output_paths
from ._remote import remote_data_sizes, remote_text

__all__ = [
    "INPUT_HELP",
    "LABELS_SUFFIX",
    "OUTPUT_HELP",
    "DatasetOutput",
    "add_overwrite_argument",
    "add_quiet_argument",
    "add_seed_argument",
    "add_shard_size_argument",
    "check_outputs",
    "counted",
    "input_labels",
    "labels_path",
    "make_progress",
    "nonnegative_int",
    "positive_float",
    "positive_int",
    "random_seed",
    "shard_size_for",
]

#: Help text of an input argument.
INPUT_HELP = "a packed data file, a *.manifest of shards, or a quoted glob of shard files"

#: Help text of an output argument (the command's own words go before it).
OUTPUT_HELP = "a packed data file, or a *.manifest for a sharded set (see --shard-size)"

#: Suffix of the class-names file next to a data file or manifest.
LABELS_SUFFIX = ".labels.txt"

#: Samples written between progress bar updates (tqdm's per-call cost adds up otherwise).
PROGRESS_STEP = 256


def labels_path(spec: str | os.PathLike) -> Path:
    """The class-names file of a dataset argument: ``<manifest>.labels.txt`` for a manifest,
    else ``<data file>.labels.txt`` (a sidecar stands for its data file)."""
    if is_manifest(spec):
        return Path(os.fspath(spec) + LABELS_SUFFIX)
    data = DatasetPaths.of(spec).data
    return data.with_name(data.name + LABELS_SUFFIX)


def input_labels(spec: str, storage_options: dict[str, Any] | None = None) -> list[str] | None:
    """The class names of an input argument, or None if it has none.

    A data file or manifest has its own ``.labels.txt`` (an object next to a URL's); a glob has
    the names that its matched data files' ``.labels.txt`` files hold (those that have one must
    agree).

    Raises:
        LabelError: the shards of a glob have different class names.
        DatasetNotFoundError: a glob matches no data file.
        RemoteStorageError: a URL's names cannot be read.
    """
    if is_remote_output(spec):
        text = remote_text(spec + LABELS_SUFFIX, storage_options)
        return None if text is None else [line for line in text.splitlines() if line]
    if not is_glob(spec):
        path = labels_path(spec)
        return load_labels(path) if path.is_file() else None
    found: list[str] | None = None
    first: Path | None = None
    for data in data_files(spec):
        path = labels_path(data)
        if not path.is_file():
            continue
        names = load_labels(path)
        if found is None:
            found, first = names, path
        elif names != found:
            raise LabelError(f"{spec}: the shards' class names differ: {first} and {path}")
    return found


def check_outputs(
    parser: argparse.ArgumentParser, inputs: Iterable[str], outputs: Iterable[str]
) -> None:
    """Exit with a usage error (code 2) if an output is an input or two outputs are the same file.

    Compares the real paths of the data files (sidecars count as their data file), so
    ``in.msgpack`` and ``./in.msgpack.offsets`` are the same dataset.
    """
    taken: dict[str, str] = {}
    for spec in inputs:
        taken[_real(spec)] = spec
        try:
            files = data_files(spec)
        except (DatasetNotFoundError, OSError, ValueError):
            continue  # opening the input reports this with its own message
        for path in files:
            taken[_real(path)] = spec
    outputs_seen: dict[str, str] = {}
    for out in outputs:
        real = _real(DatasetPaths.of(out).data)
        if real in taken:
            parser.error(f"input and output must be different files: {out} is input {taken[real]}")
        if is_manifest(out):
            for taken_path, spec in taken.items():
                if _is_shard_of(taken_path, out):
                    parser.error(
                        f"input and output must be different files: {out} would replace its "
                        f"shard {path} of input {spec}"
                    )
        if real in outputs_seen:
            parser.error(f"output {out} given twice (also as {outputs_seen[real]})")
        outputs_seen[real] = out


def add_shard_size_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--shard-size SIZE`` (bytes, as ``shardstream write`` takes it; .manifest outputs)."""
    parser.add_argument(
        "--shard-size",
        type=size_argument,
        default=None,
        metavar="SIZE",
        help="for a .manifest output: shards of at most SIZE bytes (512M, 1G, ...; default: "
        "the largest data file among the inputs, i.e. a sharded input's shard size)",
    )


def shard_size_for(
    parser: argparse.ArgumentParser,
    shard_size: int | None,
    inputs: Sequence[str],
    outputs: Sequence[str],
    storage_options: dict[str, Any] | None = None,
) -> int | None:
    """The shard size for the ``.manifest`` outputs among ``outputs`` (None if there are none).

    Args:
        parser: reports a ``--shard-size`` without a ``.manifest`` output (usage error, exit 2).
        shard_size: ``--shard-size`` as given, or None.
        inputs: the input arguments; without ``shard_size`` their largest data file (in bytes)
            is the shard size, so a sharded input's shards keep their size.
        outputs: the output arguments.
        storage_options: for URL inputs.

    Raises:
        DatasetNotFoundError, CorruptIndexError: an input is missing (or a bad manifest).
    """
    if not any(is_manifest(out) for out in outputs):
        if shard_size is not None:
            parser.error(
                f"--shard-size needs a .manifest output (a sharded set); got {', '.join(outputs)}"
            )
        return None
    if shard_size is not None:
        return shard_size
    sizes = [
        size
        for spec in inputs
        for size in (
            remote_data_sizes(spec, storage_options)
            if is_remote_output(spec)
            else [path.stat().st_size for path in data_files(spec)]
        )
    ]
    return max([1, *sizes])  # ShardedWriter needs >= 1 byte; a larger sample gets its own shard


class DatasetOutput:
    """A dataset that a subcommand writes: a packed file, or a sharded set for a ``.manifest``.

    A context manager like the writer it wraps: the output appears only when ``with`` ends
    without an exception (then the writer is closed), else everything written is discarded.

    Args:
        path: the output; ending in ``.manifest`` it is written by a
            :class:`~shardstream.write.ShardedWriter` (shards ``<stem>-00000.msgpack``, ... next to
            it), otherwise by a :class:`~shardstream.write.RawWriter`.
        shard_size: the most bytes per shard; required for a ``.manifest`` output, and must be
            None for any other (see :func:`shard_size_for`).
        overwrite: replace an existing output (otherwise a terminal is asked, and anything else
            raises :class:`~shardstream.errors.DatasetExistsError`).
        labels: class names in label order, written to ``<output>.labels.txt`` together with
            the output (staged before it is committed, renamed into place right after); None
            writes none and removes the replaced dataset's names file.
        storage_options: for a URL ``path`` (uploaded as it is written; the names file after
            the set).

    Raises:
        ConfigError: ``shard_size`` is missing for a ``.manifest`` output or given for another.
        DatasetExistsError, NotADatasetFileError: as the writer raises them.
    """

    def __init__(
        self,
        *,
        path: str | os.PathLike,
        shard_size: int | None,
        overwrite: bool,
        labels: Sequence[str] | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.shard_size = shard_size
        self.labels = None if labels is None else list(labels)
        self._remote = is_remote_output(self.path)
        self._storage_options = storage_options
        remote: dict[str, Any] = {"storage_options": storage_options} if self._remote else {}
        if is_manifest(self.path):
            if shard_size is None:
                raise ConfigError(f"{self.path}: a .manifest output needs a shard size")
            sharded = RemoteShardedWriter if self._remote else ShardedWriter
            self._writer: RawWriter | ShardedWriter = sharded(
                self.path, shard_size=shard_size, overwrite=overwrite, disable=True, **remote
            )
            self._append = self._writer.write_raw
        else:
            if shard_size is not None:
                raise ConfigError(f"{self.path}: a shard size needs a .manifest output")
            if self._remote:
                self._writer = RemoteFileWriter(
                    self.path, overwrite=overwrite, disable=True, **remote
                )
            else:
                self._writer = RawWriter(self.path, overwrite=overwrite, disable=True)
            self._append = self._writer.write

    def __enter__(self) -> DatasetOutput:
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        if exc_type is not None:
            self._writer.__exit__(exc_type, exc_val, exc_tb)
            return
        if self._remote:  # the set is committed by its own upload; its names come after it
            self._writer.__exit__(None, None, None)
            if self.labels is not None:
                text = "".join(f"{name}\n" for name in self.labels)
                put_bytes(
                    self.path + LABELS_SUFFIX, text.encode(), storage_options=self._storage_options
                )
            return
        names_file = labels_path(self.path)
        staged = StagedFiles()
        try:
            if self.labels is not None:
                text = "".join(f"{name}\n" for name in self.labels)
                staged.write_bytes(names_file, text.encode("utf-8"))
            self._writer.__exit__(None, None, None)
            staged.commit()
        except BaseException:
            staged.abort()
            raise
        if self.labels is None:
            names_file.unlink(missing_ok=True)  # the names of the dataset just replaced

    def write(self, key: str, raw: bytes | bytearray | memoryview) -> None:
        """Append one packed sample under ``key`` (errors as ``RawWriter.write`` raises them)."""
        self._append(key, raw)

    @property
    def written(self) -> int:
        """Samples written so far."""
        return self._writer.written

    def describe(self) -> str:
        """The path, plus the shard count and size for a sharded set (after the ``with``)."""
        if isinstance(self._writer, ShardedWriter):
            shards = len(self._writer.shard_paths)
            return (
                f"{self.path} ({shards} shard{'s' if shards != 1 else ''} of at most "
                f"{self.shard_size:,} bytes)"
            )
        return self.path


def random_seed() -> int:
    """A fresh seed for commands whose order is random unless ``--seed`` is given."""
    return random.SystemRandom().randrange(2**32)


positive_int = argument_type(parse_int, low=1, wanted="an integer >= 1")
"""argparse type: an integer >= 1."""

nonnegative_int = argument_type(parse_int, low=0, wanted="an integer >= 0")
"""argparse type: an integer >= 0."""

positive_float = argument_type(parse_positive_float)
"""argparse type: a finite number > 0."""


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``-y/--no-confirm`` (overwrite existing outputs without asking)."""
    parser.add_argument(
        "-y",
        "--no-confirm",
        dest="no_confirm",
        action="store_true",
        help="overwrite existing outputs without asking (otherwise a terminal is asked and "
        "anything else fails)",
    )


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``-q/--quiet`` (no progress bars)."""
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def add_seed_argument(parser: argparse.ArgumentParser, default_help: str) -> None:
    """Add ``--seed S`` with a help text saying what happens without it."""
    parser.add_argument("--seed", type=nonnegative_int, default=None, help=default_help)


def make_progress(
    quiet: bool, total: int | None, desc: str, unit: str = " samples", unit_scale: bool = False
) -> Any:
    """A tqdm bar on stderr (disabled when ``quiet``; shown only for work longer than 0.5 s)."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=unit_scale,
        disable=quiet,
        leave=False,
        delay=0.5,
    )


def counted(items: Iterable[Any], bar: Any) -> Iterator[Any]:
    """Yield ``items``, advancing ``bar`` every :data:`PROGRESS_STEP` items and at the end."""
    pending = 0
    for item in items:
        yield item
        pending += 1
        if pending == PROGRESS_STEP:
            bar.update(pending)
            pending = 0
    bar.update(pending)


# --- helpers --------------------------------------------------------------------------------


def _real(path: str | os.PathLike) -> str:
    return os.path.realpath(os.fspath(path))


def _is_shard_of(real_path: str, manifest: str) -> bool:
    """Whether ``real_path`` has the name a shard of the sharded output ``manifest`` would get."""
    try:
        manifest_path, stem = sharded_output_paths(manifest)
    except ConfigError:
        return False  # the writer reports the nameless output
    path = Path(real_path)
    return path.parent == Path(_real(manifest_path.parent)) and bool(
        re.fullmatch(re.escape(stem) + r"-\d{5,}\.msgpack", path.name)
    )
