"""``shardstream info``: what a dataset holds: count, fields, sizes, shards, labels, checksums.

Prints the number of samples; the fields of the first sample with each value's type (and shape
and dtype for arrays, length for bytes); the sizes of the data and index files; the shards of a
manifest or glob; whether each data file has its ``.md5`` file; the class names of its
``.labels.txt`` file, if it has one; and, when the first sample has a ``label`` field, how many
samples carry each label (with each label's class name).

Cost: everything but the label histogram reads only file sizes, the index header and the first
sample. The histogram reads the ``label`` field of every sample, and only that field: each
packed sample's other values are jumped over by their msgpack length headers without being
copied or decoded, so image bytes are never decoded and, on a memory-mapped file, their pages
are mostly not even read from disk (about 3 µs per sample when cached). ``--no-labels`` skips
it. ``datadings`` has no such command.
"""

from __future__ import annotations

import argparse
import os
import reprlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CorruptSampleError, LabelError
from ..format.manifest import is_manifest
from ..format.paths import INDEX_SUFFIXES, SUFFIX_LEGACY_INDEX, DatasetPaths
from ..read import MsgpackReader, ShardedReader
from ..read.open import data_files, is_glob, open_dataset
from ..read.remote.url import is_url, local_path_of
from ._common import INPUT_HELP, input_labels, labels_path, make_progress, positive_int
from ._peek import MISSING, peek_field
from ._remote import add_storage_options, storage_options_of
from ._system import add_system_argument, run_system

__all__ = ["add_parser", "run", "describe_value", "format_size", "read_label_field"]

_SHARDS_LISTED = 20
_NAMES_LISTED = 10


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``info`` subcommand."""
    parser = subparsers.add_parser(
        "info",
        help="count, fields, sizes, shards and label histogram of a dataset",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("infile", nargs="?", help=INPUT_HELP)
    add_storage_options(parser)
    add_system_argument(parser)
    parser.add_argument(
        "--no-labels", action="store_true", help="skip the label histogram (reads every sample)"
    )
    parser.add_argument(
        "--max-labels",
        type=positive_int,
        default=30,
        help="list the count of each label when there are at most this many (default: 30)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run, parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the report (or, with ``--system``, the fast paths); returns 0."""
    if getattr(args, "system", False):
        return run_system(args)
    if args.infile is None:
        args.parser.error("the following arguments are required: infile (or --system)")
    if is_url(args.infile) and local_path_of(args.infile) is None:
        return remote_info(args)
    files = data_files(args.infile)
    with open_dataset(args.infile) as reader:
        count = len(reader)
        kind = (
            "manifest" if is_manifest(args.infile) else "glob" if is_glob(args.infile) else "file"
        )
        _line("path", f"{args.infile} ({_describe_kind(kind, len(files))})")
        _line("samples", f"{count:,}")
        data_bytes = sum(path.stat().st_size for path in files)
        index_files = [p for path in files for p in _index_files(path)]
        index_bytes = sum(p.stat().st_size for p in index_files)
        suffixes = sorted({_suffix(p) for p in index_files}, key=_suffix_order)
        _line("data", format_size(data_bytes))
        _line("index", f"{format_size(index_bytes)} ({', '.join(suffixes) or 'none'})")
        with_md5 = [path for path in files if DatasetPaths(path).md5.exists()]
        if len(files) == 1:
            md5 = DatasetPaths(files[0]).md5
            _line("md5", f"present ({md5.name})" if with_md5 else f"missing ({md5.name})")
        else:
            _line("md5", f"present for {len(with_md5)} of {len(files)} shards")
        names = _print_class_names(args.infile)
        if len(files) > 1:
            _print_shards(files)
        if count == 0:
            return 0
        first = _print_fields(reader)
        if not args.no_labels and isinstance(first, dict) and "label" in first:
            _print_labels(reader, args, names)
    return 0


def describe_value(value: Any) -> tuple[str, str]:
    """A value's type name and a short description (shape and dtype, length, or abbreviated value).

    Args:
        value: a decoded sample field.

    Returns:
        ``(type, detail)``, e.g. ``("ndarray", "uint8 (3, 4)")`` or ``("bytes", "95,731 bytes")``.
    """
    if isinstance(value, np.ndarray):
        return "ndarray", f"{value.dtype} {tuple(value.shape)}"
    if isinstance(value, np.generic):
        return type(value).__name__, repr(value.item())
    if isinstance(value, (bytes, bytearray, memoryview)):
        return type(value).__name__, f"{len(value):,} bytes{_magic(value)}"
    if isinstance(value, str):
        return "str", _SHORT.repr(value)
    if isinstance(value, (list, tuple)):
        return type(value).__name__, f"{len(value):,} items"
    if isinstance(value, dict):
        return "dict", f"{len(value):,} keys"
    return type(value).__name__, _SHORT.repr(value)


def format_size(size: int) -> str:
    """``size`` bytes in decimal units with the exact count, e.g. ``4.60 MB (4,595,123 bytes)``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.2f} {unit} ({size:,} bytes)"
    return f"{size:,} bytes"


# --- helpers --------------------------------------------------------------------------------

_SHORT = reprlib.Repr()
_SHORT.maxstring = 50
_SHORT.maxother = 50


def _line(name: str, text: str) -> None:
    print(f"{name + ':':<10}{text}")


def _describe_kind(kind: str, shards: int) -> str:
    if kind == "file":
        return "packed file"
    return f"{kind} of {shards} shard{'s' if shards != 1 else ''}"


def _index_files(path: Path) -> list[Path]:
    paths = DatasetPaths(path)
    candidates = [paths.sidecar(s) for s in (*INDEX_SUFFIXES, SUFFIX_LEGACY_INDEX)]
    return [p for p in candidates if p.exists()]


def _suffix(path: Path) -> str:
    return next(s for s in (*INDEX_SUFFIXES, SUFFIX_LEGACY_INDEX) if path.name.endswith(s))


def _suffix_order(suffix: str) -> int:
    return (*INDEX_SUFFIXES, SUFFIX_LEGACY_INDEX).index(suffix)


def _print_shards(files: list[Path]) -> None:
    print(f"shards:   {len(files)}")
    width = max(len(p.name) for p in files[:_SHARDS_LISTED])
    for path in files[:_SHARDS_LISTED]:
        samples = len(MsgpackReader(path))
        md5 = "md5" if DatasetPaths(path).md5.exists() else "no md5"
        size = os.path.getsize(path)
        print(f"  {path.name:<{width}}  {samples:>8,} samples  {size:>14,} bytes  {md5}")
    if len(files) > _SHARDS_LISTED:
        print(f"  ... and {len(files) - _SHARDS_LISTED} more")


def _print_class_names(spec: str) -> list[str] | None:
    """Print the ``classes`` line (the names of the .labels.txt file); returns the names."""
    try:
        names = input_labels(spec)
    except LabelError as e:
        _line("classes", f"unknown: {e}")
        return None
    if names is None:
        return None
    shown = ", ".join(names[:_NAMES_LISTED]) + (", ..." if len(names) > _NAMES_LISTED else "")
    where = "the shards' .labels.txt" if is_glob(spec) else labels_path(spec).name
    _line("classes", f"{len(names):,} in {where}: {shown}")
    return names


def _print_labels(reader: Any, args: argparse.Namespace, names: list[str] | None = None) -> None:
    bar = make_progress(args.quiet, len(reader), "labels")
    try:
        counts = Counter(read_label_field(reader, bar))
    finally:
        bar.close()
    missing = counts.pop(MISSING, 0)
    ordered = sorted(counts.items(), key=lambda item: _label_order(item[0]))
    sizes = [n for _, n in ordered]
    summary = f"{len(ordered)} distinct"
    if sizes:
        low, high = min(sizes), max(sizes)
        summary += f", {low:,} samples each" if low == high else f", {low:,}-{high:,} samples each"
    if missing:
        summary += f"; {missing:,} sample{'s' if missing != 1 else ''} without a label"
    _line("labels", summary)
    if len(ordered) <= args.max_labels:
        width = max(len(repr(label)) for label, _ in ordered) if ordered else 0
        named = {label: _class_name(names, label) for label, _ in ordered}
        name_width = max((len(text) for text in named.values()), default=0)
        for label, n in ordered:
            text = (
                f"  {label!r:>{width}}  {named[label]:<{name_width}}  {n:,}"
                if name_width
                else (f"  {label!r:>{width}}  {n:,}")
            )
            print(text)


def read_label_field(reader: Any, bar: Any) -> Iterable[Any]:
    """The ``label`` of every sample, read with :func:`peek_field` from the raw bytes.

    Args:
        reader: the dataset.
        bar: a progress bar (``update(n)``).

    Returns:
        One label per sample in order: a hashable value (an unhashable one as its repr), or
        :data:`~shardstream.cli._peek.MISSING` for a sample without a ``label`` field.

    Raises:
        CorruptSampleError: a sample's label cannot be read (naming the file and sample).
    """
    done = 0
    for index, raw in enumerate(reader.iter(0, raw=True, copy=False)):
        try:
            label = peek_field(raw, "label")
        except ValueError as e:
            path, local = _sample_location(reader, index)
            raise CorruptSampleError(path, f"sample {local}: cannot read its label: {e}") from e
        if isinstance(label, np.generic):
            label = label.item()
        elif isinstance(label, (list, dict, np.ndarray)):
            try:
                label = repr(label)  # unhashable: count by its text
            except RecursionError:  # nested ~1,000 deep: msgpack allows it, repr does not
                path, local = _sample_location(reader, index)
                raise CorruptSampleError(path, f"sample {local}: label nested too deeply") from None
        yield label
        done += 1
        if done == 4096:
            bar.update(done)
            done = 0
    bar.update(done)


def _sample_location(reader: Any, index: int) -> tuple[Any, int]:
    """The data file holding sample ``index`` and its index there."""
    if isinstance(reader, ShardedReader):
        shard, local = reader.locate(index)
        return getattr(reader.shards[shard], "path", None), local
    return getattr(reader, "path", None), index


def _class_name(names: list[str] | None, label: Any) -> str:
    """The class name of an integer label, or "" (no names, or a label outside them)."""
    if names is None or isinstance(label, bool) or not isinstance(label, int):
        return ""
    return names[label] if 0 <= label < len(names) else "(no name)"


def _label_order(label: Any) -> tuple:
    if isinstance(label, (bool, int, float)):
        return (0, label, "")
    return (1, 0, str(label))


def _magic(value: bytes | bytearray | memoryview) -> str:
    head = bytes(value[:8])
    if head.startswith(b"\xff\xd8\xff"):
        return " (JPEG)"
    if head.startswith(b"\x89PNG"):
        return " (PNG)"
    return ""


def remote_info(args: argparse.Namespace) -> int:
    """``shardstream info URL``: what the manifest (or offsets) tells and sample 0's fields.

    Costs the opening's requests plus one byte range (sample 0); no shard is downloaded whole.

    Raises:
        RemoteStorageError, DatasetNotFoundError: the URL cannot be read.
    """
    with open_dataset(args.infile, storage_options=storage_options_of(args)) as reader:
        shards = [getattr(shard, "spec", None) for shard in getattr(reader, "shards", [])]
        count = len(reader)
        kind = "manifest" if args.infile.endswith(".manifest") else "packed file"
        print(f"{'path:':<10}{args.infile} ({kind}, {len(shards)} shards, remote)")
        print(f"{'samples:':<10}{count:,}")
        sizes = [spec.bytes for spec in shards if spec is not None and spec.bytes is not None]
        if len(sizes) == len(shards):
            print(f"{'data:':<10}{format_size(sum(sizes))}")
        if count == 0:
            return 0
        _print_fields(reader)
    return 0


def _print_fields(reader: Any) -> Any:
    """Print sample 0's key and each field's kind and size (one byte range for a remote set);
    returns sample 0."""
    key, first = reader.get(0, yield_key=True)
    print(f"fields:   (sample 0, key {key!r})")
    if isinstance(first, dict):
        width = max(len(str(name)) for name in first) if first else 0
        for name, value in first.items():
            kind_text, detail = describe_value(value)
            print(f"  {str(name):<{width}}  {kind_text:<10}  {detail}".rstrip())
    else:
        kind_text, detail = describe_value(first)
        print(f"  (not a dict) {kind_text}  {detail}".rstrip())
    return first
