"""Shared parts of the datadings-compatible set writers (``shardstream write VOC2012 ...``).

A module of :mod:`shardstream.sets` is a datadings-compatible set when it defines, besides the
``NAME``, ``SOURCES``, ``add_arguments(parser)`` and ``items(args)`` of every converter:

- ``DATADINGS = True``;
- ``NAME``: datadings' name of the set (``"VOC2012"``; the command line accepts it in any case);
- ``FIELDS``: the sample's keys in order, each with a short description (shown by ``--help``);
- optionally ``UNLISTED_SOURCES``: names of files read without an md5 to check (no
  :class:`~shardstream.sets.sources.SourceFile`, as datadings publishes none);
- ``add_arguments(parser)`` calls :func:`add_arguments` (datadings' common options) and adds the
  set's own options;
- optionally ``command(args)``: run first; a mode that writes no data set (datadings'
  ``--calculate-weights`` and the like) does its work and returns the exit code, else ``None``;
- ``items(args)`` maps each output file name, as datadings names it (``"train.msgpack"``), to
  that file's items, in datadings' order; an item's ``load`` returns the whole sample after its
  key (a ``dict``, see :class:`~shardstream.write.conversion.Item`).

The files are written to ``--outdir`` (default: ``INDIR``), like datadings does. With
``--shuffle yes`` (datadings' default where the set offers it) samples are shuffled as datadings
shuffles them: :func:`random.shuffle` of each output's list, in output order, with a generator
seeded from the operating system, so no two runs agree. ``--seed N`` (ours) seeds it instead:
the order then equals datadings' own after ``random.seed(N)``.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import tarfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import DatasetFormatError, MissingDependencyError, SourceNotFoundError
from ..format.atomic import StagedFiles
from ..write.loaders import read_file, read_file_range, read_zip_member
from .sources import SourceFile, source_url, sources_from_args

__all__ = [
    "add_arguments",
    "add_threads_argument",
    "describe",
    "is_datadings_set",
    "locate",
    "output_dir",
    "output_paths",
    "read_blob",
    "shuffler",
    "class_counts",
    "given_sample",
    "median_frequency_weights",
    "print_values",
    "load_matlab",
    "tiff_bands",
    "write_json",
    "png_bytes",
    "raw_sample",
    "zip_names",
    "tar_members",
    "Blob",
]

Blob = tuple
"""Where a source's bytes are: ``("zip", archive, member)``, ``("range", file, offset, size)``
(a member of an uncompressed tar) or ``("file", path)``; picklable, read by :func:`read_blob`."""


def is_datadings_set(module: ModuleType) -> bool:
    """Whether a converter module is a datadings-compatible set (``DATADINGS = True``)."""
    return getattr(module, "DATADINGS", False) is True


def add_arguments(
    parser: argparse.ArgumentParser, *, shuffle: bool = True, verification: bool = True
) -> None:
    """Add datadings' common options: ``INDIR``, ``-o/--outdir``, ``-s/--skip-verification``,
    ``--shuffle yes|no`` (default ``yes``) and ``--seed``, plus ``--no-download`` and ``--mirror``.

    ``-y/--no-confirm`` is added by ``shardstream write`` for every converter.

    Args:
        parser: the set's parser.
        shuffle: whether the set has datadings' ``--shuffle`` option (some write in source
            order only; they then get ``shuffle=False`` in ``args``).
        verification: whether the set has ``-s/--skip-verification`` (datadings leaves it out
            for sets whose files have no published md5).
    """
    group = parser.add_argument_group("datadings options")
    group.add_argument(
        "indir",
        nargs="?",
        default=".",
        metavar="INDIR",
        help="directory that holds the source files (default: the working directory)",
    )
    group.add_argument(
        "-o",
        "--outdir",
        default=None,
        metavar="PATH",
        help="output directory (default: INDIR)",
    )
    if verification:
        group.add_argument(
            "-s",
            "--skip-verification",
            action="store_true",
            help="do not check the md5 of the source files",
        )
    else:
        parser.set_defaults(skip_verification=True)
    if shuffle:
        group.add_argument(
            "--shuffle",
            default=True,
            choices=("yes", "no"),
            type=lambda text: text,
            action=_YesNo,
            help="write samples in random order (default: yes, as datadings)",
        )
        group.add_argument(
            "--seed",
            type=int,
            default=None,
            help="seed the shuffle (default: unseeded, as datadings); the order then equals "
            "datadings' own after random.seed(SEED)",
        )
    else:
        parser.set_defaults(shuffle=False, seed=None)
    group.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="fail on a missing source file instead of downloading it (datadings downloads)",
    )
    group.add_argument(
        "--mirror",
        metavar="URL",
        default=None,
        help="download missing files from URL/<file name> instead of the official site",
    )


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """Add datadings' ``-t/--threads N``: accepted so datadings' command lines run; the engine's
    ``--workers`` sets the processes (datadings' threads only change its speed, and with more
    than one thread some of its writers write in completion order)."""
    parser.add_argument(
        "-t",
        "--threads",
        type=int,
        default=1,
        metavar="N",
        help="accepted for datadings' command lines; --workers sets the processes",
    )


class _YesNo(argparse.Action):
    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        setattr(namespace, self.dest, values == "yes")


def locate(args: argparse.Namespace, sources: Sequence[SourceFile]) -> dict[str, Path]:
    """Find (download when missing, unless ``--no-download``) and verify the source files.

    Args:
        args: the parsed options.
        sources: the files needed.

    Returns:
        The path of each file, by file name.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: see
            :func:`~shardstream.sets.sources.locate_source`.
    """
    if getattr(args, "download", True):
        for source in sources:  # a file without a URL cannot be downloaded: say so plainly
            path = Path(args.indir) / source.name
            if not path.exists() and source_url(source, args.mirror) is None:
                note = f" ({source.note})" if source.note else ""
                raise SourceNotFoundError(path, f"{source.name} is not in {args.indir}{note}")
    return sources_from_args(args, sources)


def shuffler(args: argparse.Namespace) -> random.Random | None:
    """The generator that shuffles each output's list, or ``None`` for ``--shuffle no``.

    Shuffle the lists with it in datadings' output order, one ``shuffle`` call each.
    """
    if not getattr(args, "shuffle", False):
        return None
    return random.Random(args.seed)


def output_dir(args: argparse.Namespace) -> Path:
    """Where the outputs go: ``--outdir``, else ``INDIR`` (datadings' ``outdir or indir``)."""
    return Path(args.outdir or args.indir)


def output_paths(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Path]:
    """Each output file name's path, inside :func:`output_dir`."""
    outdir = output_dir(args)
    return {name: outdir / name for name in names}


def describe(module: ModuleType) -> str:
    """The ``--help`` text of a set: its docstring, source files (md5, URL) and sample keys."""
    lines = [(module.__doc__ or module.NAME).strip().replace("``", ""), "", "source files:"]
    for source in module.SOURCES:
        where = source.url or f"no download URL{': ' + source.note if source.note else ''}"
        lines.append(f"  {source.name}  md5 {source.md5}")
        lines.append(f"      {where}")
    for name in getattr(module, "UNLISTED_SOURCES", ()):
        lines.append(f"  {name}  (no published md5 or download URL: not verified)")
    lines += ["", "sample keys:"]
    lines += [f"  {name:<16} {text}" for name, text in module.FIELDS]
    return "\n".join(lines)


def tar_members(path: str | Path) -> dict[str, tuple[int, int]]:
    """The regular members of an uncompressed tar: name -> (data offset, size).

    Raises:
        DatasetFormatError: not a readable uncompressed tar.
    """
    members = {}
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if member.isfile():
                    members[member.name] = (member.offset_data, member.size)
    except (tarfile.TarError, OSError) as e:
        raise DatasetFormatError(path, f"not a readable (uncompressed) tar file: {e}") from None
    return members


def read_blob(blob: Blob) -> bytes:
    """Read the bytes a :data:`Blob` points at (in a worker process)."""
    kind = blob[0]
    if kind == "zip":
        return read_zip_member(str(blob[1]), blob[2])
    if kind == "range":
        return read_file_range(str(blob[1]), blob[2], blob[3])
    return read_file(str(blob[1]))


def png_bytes(array: Any, mode: str | None = None, **options: Any) -> bytes:
    """Encode an array as PNG with Pillow (as datadings does: same encoder, same options)."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(array, mode).save(out, "PNG", **options)
    return out.getvalue()


def zip_names(path: str | Path) -> list[str]:
    """The member names of a ZIP file, in the archive's order.

    Raises:
        DatasetFormatError: not a readable ZIP file.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError) as e:
        raise DatasetFormatError(path, f"not a readable ZIP file: {e}") from None


def raw_sample(fields: tuple[tuple[str, Blob], ...]) -> dict:
    """A sample of source bytes as they are: ``{name: <bytes of blob>, ...}`` in order."""
    return {name: read_blob(blob) for name, blob in fields}


def given_sample(sample: dict) -> dict:
    """Return ``sample``: the load function of a sample made while listing (e.g. array tiles)."""
    return sample


def load_matlab(source: bytes | str | Path) -> dict:
    """Load a MATLAB (v5) file with :func:`scipy.io.loadmat` (never unpickles anything).

    Args:
        source: the file's bytes, or its path.

    Raises:
        MissingDependencyError: scipy is not installed.
        ValueError, TypeError, OSError: the data is not a readable MATLAB file.
    """
    try:
        import scipy.io
    except ImportError:
        raise MissingDependencyError(
            "reading MATLAB files needs scipy: pip install 'shardstream[sets]'"
        ) from None
    return scipy.io.loadmat(io.BytesIO(source) if isinstance(source, bytes) else source)


def tiff_bands(path: str | Path, dtype: Any = None) -> Any:
    """The bands of a TIFF image as one array (bands, H, W), as GDAL's band reading gives them.

    Args:
        path: the TIFF file.
        dtype: cast to this dtype (``None``: keep the file's).

    Raises:
        MissingDependencyError: tifffile is not installed.
    """
    try:
        import tifffile
    except ImportError:
        raise MissingDependencyError(
            "reading TIFF images needs tifffile: pip install 'shardstream[sets]'"
        ) from None
    import numpy as np

    array = tifffile.imread(str(path))
    array = array[np.newaxis] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    return array if dtype is None else array.astype(dtype)


def class_counts(
    maps: Iterable[Any], *, total: int | None = None, progress: bool = True
) -> dict[int, float]:
    """Each class' pixel share summed over label maps, as datadings' ``class_counts`` sums them.

    Prints ``N samples analyzed`` when done, as datadings does.

    Args:
        maps: integer label maps (arrays).
        total: how many maps there are (for the progress bar).
        progress: show a progress bar (on stderr).

    Returns:
        Class -> summed share, for the classes that occur, by class.
    """
    import numpy as np

    counts = np.zeros(0, dtype=np.float64)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="class counts", unit=" samples", file=sys.stderr)
    analyzed = 0
    try:
        for labels in maps:
            shares = np.bincount(labels.ravel()).astype(np.float64) / labels.size
            if len(shares) > len(counts):
                counts = np.concatenate([counts, np.zeros(len(shares) - len(counts))])
            counts[: len(shares)] += shares
            analyzed += 1
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
    print(f"{analyzed} samples analyzed")
    return {int(c): float(counts[c]) for c in np.nonzero(counts)[0]}


def print_values(name: str, values: Iterable[Any]) -> None:
    """Print ``NAME = [`` then one ``    value,`` line per value, then ``]`` (datadings' layout)."""
    print(f"{name} = [")
    for value in values:
        print(f"    {value},")
    print("]")


def median_frequency_weights(counts: Sequence[float]) -> list[float]:
    """Median frequency balancing: ``median(freq) / freq`` of each class' share of ``counts``."""
    import numpy as np

    total = sum(counts)
    frequencies = [count / total for count in counts]
    median = float(np.median(frequencies))
    return [median / frequency for frequency in frequencies]


def write_json(path: str | Path, value: Any) -> None:
    """Write ``value`` as JSON (``json.dump``'s default layout, as datadings writes it), atomically.

    Args:
        path: the file (its folder is made when missing).
        value: what to write.
    """
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = StagedFiles()
    try:
        staged.write_bytes(path, json.dumps(value).encode("utf-8"))
        staged.commit()
    except BaseException:
        staged.abort()
        raise
