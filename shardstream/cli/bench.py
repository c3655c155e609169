"""``shardstream bench``: measure how fast a dataset reads and loads: samples/s and MB/s.

``PATH`` is a packed file, a ``*.manifest``, a glob of shard files, a ZIP file (members found
with the pattern ``{LABEL}/**``, a :class:`~shardstream.read.ZipFileReader`), a directory (read
as ``PATH/{LABEL}/**``), or any :class:`~shardstream.read.DirectoryReader` pattern or list file
(``--separator``, ``--root-dir``, ``--include`` and ``--exclude`` apply to those).

Modes: samples decoded from msgpack (default); ``--raw``, the sample bytes only (what a loader's
main process does when its workers decode); ``--decode``, decoded and the image field (``image``
or ``data``) decoded to pixels as well (simplejpeg for JPEG when installed, else Pillow);
``--preset dino|supervised|eval``, an epoch of :class:`~shardstream.loader.Loader` with that preset
(colour on the CPU, in the workers) and batches of ``--batch-size``, as training runs it;
with ``--resize device`` (and ``--preset-decode device``, nvJPEG, CUDA only) the dino and
supervised presets ship uint8 regions (JPEG bytes) and the timed epoch includes their device
step, on CUDA when torch sees it.
Packed data is read as the Loader reads it: zero-copy views into the memory map; raw reads touch
every page of each view, so the bytes are really read. Files are read into memory.
``--shuffle`` reads in a :class:`~shardstream.order.Shuffler`'s first-epoch order (seed
``len(dataset)`` unless ``--seed``) instead of sequentially. ``--workers 0,1,2`` lists the
worker counts to measure: reading threads (0: this thread) in the read modes, Loader worker
processes (0: in this process) with ``--preset``.

Packed against loose files: ``--loose DIR`` also measures a folder of the same images
(``DIR/{LABEL}/**``); ``--loose-from-packed`` writes the packed set's images into a temporary
folder (removed at the end) and measures that. A packed ``PATH`` with ``--preset`` is compared
with such a copy unless ``--loose`` or ``--no-loose`` is given. ``--cache cold`` drops the
data's pages from the page cache before each run (``posix_fadvise(POSIX_FADV_DONTNEED)`` on
every file; no root needed), ``warm`` reads every file once first; ``both`` (the default when
comparing) measures both. Each configuration runs ``--repeat`` times.

Printed: the readers, the mode, the setup time (opening the reader and loading its offsets),
for a single run ``N samples read in T seconds, S samples/s, M MB/s`` as datadings prints it,
then a table: per source, cache and worker count the median samples/s, the spread (lowest and
highest of the runs) and the median MB/s, with MB = 10**6 bytes of input data (for packed data
the msgpack bytes; for files, the file bytes); with ``--preset`` also the median milliseconds per
sample of the Loader's read stage, which isolates what the storage costs from the preset's
decoding and cropping. ``--json PATH`` writes the figures and every run;
``--plot PATH`` draws samples/s against workers (needs matplotlib: the ``plot`` extra).

Differences from ``datadings-bench`` (3.4.7), all deliberate:

- ZIP files, manifests and globs of shards are benchmarked (datadings raised
  ``NotImplementedError`` for ZIP and had no shards); a directory is read as ``PATH/{LABEL}/**``;
- ``--decode``, ``--preset``, ``--workers``, ``--seed``, the loose-file comparison, the cache
  control, ``--repeat``, the table, ``--json`` and ``--plot`` are new; ``-b/--buffering`` is gone
  (reads go through a memory map; ``datadings-bench``'s compatible command accepts it);
- ``--raw`` on file readers reads the files (datadings packed each file's sample with msgpack);
- MB means 10**6 bytes (datadings divided by 2**20) and directory trees report their bytes
  read (datadings printed 0 MB/s for them unless it found ``bytes_read``).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..order import shuffle_order
from ..read import Reader
from ..read.open import open_files
from . import bench_measure, bench_report, bench_runs
from ._common import make_progress, nonnegative_int, positive_int
from ._remote import add_storage_options, storage_options_of

__all__ = ["add_parser", "run", "image_decoder", "worker_counts"]

#: Samples fetched per ``getitems`` call (and per thread task).
CHUNK = bench_runs.CHUNK


def worker_counts(text: str) -> list[int]:
    """Parse ``--workers``: comma-separated counts >= 0, e.g. ``"0,1,2"`` (duplicates dropped).

    Raises:
        argparse.ArgumentTypeError: not a list of non-negative integers.
    """
    counts: list[int] = []
    for part in text.split(","):
        try:
            count = int(part.strip())
        except ValueError:
            count = -1
        if count < 0:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated counts >= 0 such as 0,1,2, got {text!r}"
            )
        if count not in counts:
            counts.append(count)
    return counts


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``bench`` subcommand."""
    parser = subparsers.add_parser(
        "bench",
        help="read and load benchmark: packed against loose files, cold or warm, per worker count",
        description="Measure how fast a dataset reads and loads: samples/s and MB/s, packed "
        "against loose files, with a cold or warm page cache, per worker count.",
    )
    parser.add_argument(
        "path",
        help="packed file, *.manifest, quoted glob of shards, ZIP file, folder, "
        "DirectoryReader pattern or list file, or a URL of a packed set (s3://, https://)",
    )
    add_storage_options(parser)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "-r", "--raw", action="store_true", help="read sample bytes only, decode nothing"
    )
    mode.add_argument(
        "--decode", action="store_true", help="also decode each sample's image to pixels"
    )
    mode.add_argument(
        "--preset",
        choices=sorted(bench_runs.PRESETS),
        help="run the Loader with this preset (CPU colour) instead of plain reads",
    )
    parser.add_argument("-s", "--shuffle", action="store_true", help="read in shuffled order")
    parser.add_argument(
        "--seed", type=nonnegative_int, default=None, help="shuffle seed (default: the length)"
    )
    parser.add_argument(
        "--workers",
        type=worker_counts,
        default=None,
        help="worker counts to measure, e.g. 0,1,2: threads for reads, Loader processes with "
        "--preset (default: 1 for reads, 0,1,2 with --preset)",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=32, help="--preset only: batch size"
    )
    parser.add_argument(
        "--resize",
        choices=("cpu", "device"),
        default="cpu",
        help="--preset dino|supervised: resize the views in the workers (exact) or in the "
        "device step (on CUDA when there is one)",
    )
    parser.add_argument(
        "--preset-decode",
        choices=("cpu", "device"),
        default="cpu",
        help="--preset dino|supervised: decode the JPEGs in the workers or with nvJPEG in the "
        "device step (needs CUDA; --decode is the plain-decode mode)",
    )
    loose = parser.add_mutually_exclusive_group()
    loose.add_argument("--loose", help="also measure this folder of the same images as files")
    loose.add_argument(
        "--loose-from-packed",
        action="store_true",
        help="also measure a temporary folder of the packed set's images written as files",
    )
    loose.add_argument(
        "--no-loose", action="store_true", help="with --preset: no loose-file comparison"
    )
    parser.add_argument(
        "--cache",
        choices=("warm", "cold", "both"),
        default=None,
        help="page cache state: cold drops the files' pages before each run "
        "(default: both when comparing with loose files, else warm)",
    )
    parser.add_argument(
        "--repeat", type=positive_int, default=1, help="runs per configuration (default: 1)"
    )
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument(
        "--plot", metavar="PATH", help="draw samples/s against workers (needs matplotlib)"
    )
    parser.add_argument(
        "--image-field",
        default=None,
        help="packed field holding the encoded image (default: image, else data)",
    )
    parser.add_argument(
        "--tmp-dir", default=None, help="where the loose copy is written (default: system temp)"
    )
    parser.add_argument(
        "--separator", default="\t", help="list files only: column separator (default: tab)"
    )
    parser.add_argument(
        "--root-dir", default="", help="directory readers only: where patterns are relative to"
    )
    parser.add_argument(
        "--include", nargs="+", default=(), help="file readers only: fnmatch patterns to keep"
    )
    parser.add_argument(
        "--exclude", nargs="+", default=(), help="file readers only: fnmatch patterns to drop"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run, parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print its figures and table, write ``--json`` / ``--plot``; returns 0.

    Raises:
        DatasetNotFoundError: nothing to benchmark at ``PATH`` or ``--loose``.
        ConfigError: a loose copy asked of data that is not packed or has no image field, a
            loose folder of another length, or a ``--json`` / ``--plot`` folder that is missing.
        MissingDependencyError: ``--plot`` without matplotlib, ``--preset`` without torch.
    """
    for option, output in (("--json", args.json), ("--plot", args.plot)):
        folder = os.path.dirname(os.path.abspath(output)) if output else ""
        if output and not os.path.isdir(folder):
            raise ConfigError(f"{output}: {option} output folder {folder} does not exist")
    if args.plot:
        bench_report.pyplot()  # fail before the runs, not after them
    decode_image = image_decoder() if args.decode else None
    tree = {
        "separator": args.separator,
        "root_dir": args.root_dir,
        "include": tuple(args.include),
        "exclude": tuple(args.exclude),
    }
    options = storage_options_of(args)
    started = time.perf_counter()
    reader = open_files(args.path, storage_options=options, **tree)
    with reader:
        n = len(reader)
        packed = bench_runs.is_packed(reader)
        if n:
            reader.getitems([0], raw=packed)  # loads the offsets / opens the archive
        setup = time.perf_counter() - started
        image_field = _image_field_of(reader, args.image_field) if packed else "data"
    sources = [
        bench_runs.Source(
            name="packed" if packed else "files",
            path=str(args.path),
            open=lambda: open_files(args.path, storage_options=options, **tree),
            image_field=image_field,
        )
    ]
    want_copy = args.loose_from_packed or (
        args.preset is not None and packed and not args.no_loose and args.loose is None
    )
    if (args.loose_from_packed or args.loose) and not packed:
        raise ConfigError(f"{args.path}: the loose-file comparison needs a packed PATH")
    comparing = want_copy or args.loose is not None
    caches = {"warm": ["warm"], "cold": ["cold"], "both": ["cold", "warm"]}[
        args.cache or ("both" if comparing else "warm")
    ]
    workers = args.workers or ([0, 1, 2] if args.preset else [1])
    seed = n if args.seed is None else args.seed
    order = shuffle_order(n, seed) if args.shuffle else np.arange(n, dtype=np.int64)
    temp_dir = None
    try:
        if want_copy:
            temp_dir = tempfile.mkdtemp(prefix="shardstream-bench-", dir=args.tmp_dir)
            started = time.perf_counter()
            with open_files(args.path, storage_options=options, **tree) as source_reader:
                nbytes = bench_runs.write_loose_copy(source_reader, Path(temp_dir), image_field)
            took = time.perf_counter() - started
            loose_note = (
                f"a copy of the {image_field!r} field, {nbytes / 1e6:.1f} MB written in "
                f"{took:.2f} s"
            )
            loose_path = temp_dir
        elif args.loose is not None:
            loose_path, loose_note = args.loose, "given"
        if comparing:
            sources.append(
                bench_runs.Source(
                    name="loose",
                    path=loose_path,
                    open=lambda: open_files(loose_path),
                    image_field="data",
                )
            )
        print(f"reader:     {type(reader).__name__} {args.path} ({n:,} samples)")
        if comparing:
            with sources[1].open() as loose_reader:
                count = len(loose_reader)
            print(f"loose:      {type(loose_reader).__name__} {loose_path} ({count:,} samples)")
            print(f"            {loose_note}")
            if count != n:
                raise ConfigError(
                    f"{loose_path}: holds {count} samples but {args.path} holds {n}; the "
                    "comparison needs the same images"
                )
        print(f"mode:       {_mode_text(args, decode_image, seed)}, {_workers_text(workers)}")
        print(f"runs:       {' and '.join(caches)} cache, {args.repeat} run(s) each")
        print(f"setup time: {setup:.4f} seconds")
        rows = bench_measure.measure(
            sources=sources,
            caches=caches,
            workers=workers,
            repeat=args.repeat,
            order=order,
            preset=args.preset,
            batch_size=args.batch_size,
            preset_modes=_preset_modes(args),
            shuffle=args.shuffle,
            seed=seed,
            raw=args.raw,
            decode_image=decode_image,
            progress=make_progress(args.quiet, None, f"bench {os.path.basename(str(args.path))}"),
        )
    finally:
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
    if len(rows) == 1 and len(rows[0].runs) == 1:
        _print_single(rows[0].runs[0], decode_image is not None)
    for line in bench_report.format_table(rows):
        print(line)
    title = f"shardstream bench {os.path.basename(str(args.path))}: {_mode_text(args, None, seed)}"
    if args.json:
        document = {
            "version": bench_report.JSON_VERSION,
            "path": str(args.path),
            "samples": n,
            "mode": "preset" if args.preset else "raw" if args.raw else "decoded",
            "preset": args.preset,
            "batch_size": args.batch_size if args.preset else None,
            "image_decode": bool(args.decode),
            "shuffle": bool(args.shuffle),
            "seed": seed if args.shuffle else None,
            "workers": workers,
            "caches": caches,
            "repeat": args.repeat,
            "setup_seconds": setup,
            "rows": bench_report.summarise(rows),
        }
        bench_report.write_json(args.json, document)
    if args.plot:
        bench_report.plot_rows(args.plot, rows, title)
    return 0


def image_decoder() -> Callable[[bytes], int]:
    """The fastest image decoder installed: returns a function that decodes and counts pixels.

    Returns:
        ``decode(data) -> number of pixels``; its ``__doc__`` names the library.
    """
    try:
        import simplejpeg
    except ImportError:
        simplejpeg = None

    def with_pillow(data: bytes) -> int:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as opened:
            image = opened.convert("RGB")
            image.load()
            return image.width * image.height

    if simplejpeg is None:
        with_pillow.__doc__ = "Pillow"
        return with_pillow

    def with_simplejpeg(data: bytes) -> int:
        if bytes(data[:3]) != b"\xff\xd8\xff":
            return with_pillow(data)
        pixels = simplejpeg.decode_jpeg(data, colorspace="RGB")
        return pixels.shape[0] * pixels.shape[1]

    with_simplejpeg.__doc__ = "simplejpeg for JPEG, Pillow otherwise"
    return with_simplejpeg


# --- helpers --------------------------------------------------------------------------------


def _image_field_of(reader: Reader, wanted: str | None) -> str:
    """The packed field holding the image: ``wanted``, else ``"image"``, else ``"data"``."""
    if wanted is not None or not len(reader):
        return wanted or "image"
    sample = reader.get(0)
    if isinstance(sample, dict) and "image" not in sample and "data" in sample:
        return "data"
    return "image"


def _mode_text(args: argparse.Namespace, decode_image: Any, seed: int) -> str:
    if args.preset:
        mode = f"Loader with the {args.preset} preset, batches of {args.batch_size}"
        if args.resize != "cpu" or args.preset_decode != "cpu":
            mode += f" (resize {args.resize}, decode {args.preset_decode})"
    else:
        mode = "raw sample bytes" if args.raw else "decoded samples"
    if decode_image is not None:
        mode += f" + image decode ({decode_image.__doc__})"
    order = f"shuffled (seed {seed})" if args.shuffle else "sequential"
    return f"{mode}, {order}"


def _preset_modes(args: argparse.Namespace) -> dict[str, str]:
    """The ``resize`` / ``decode`` settings the preset takes (none where both are ``cpu``).

    Raises:
        ConfigError: a device mode without ``--preset dino`` or ``--preset supervised``.
    """
    modes = {"resize": args.resize, "decode": args.preset_decode}
    if modes == {"resize": "cpu", "decode": "cpu"}:
        return {}
    if args.preset not in ("dino", "supervised"):
        raise ConfigError(
            "--resize device / --preset-decode device need --preset dino or supervised"
        )
    return modes


def _workers_text(workers: list[int]) -> str:
    return f"{','.join(map(str, workers))} worker(s)"


def _print_single(result: bench_runs.RunResult, decoded: bool) -> None:
    """The datadings-style result line of a single run (and the decoded pixels)."""
    seconds = result.seconds
    print(
        f"{result.samples} samples read in {seconds:.2f} seconds, "
        f"{result.samples / seconds:.2f} samples/s, {result.nbytes / seconds / 1e6:.2f} MB/s"
    )
    if decoded:
        print(
            f"images:     {result.pixels / 1e6:.1f} megapixels decoded, "
            f"{result.pixels / seconds / 1e6:.1f} Mpx/s"
        )
