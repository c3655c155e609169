"""``shardstream bench``: measure how fast a dataset reads: samples/s and MB/s.

``PATH`` is a packed file, a ``*.manifest``, a glob of shard files, a ZIP file (members found
with the pattern ``{LABEL}/**``, a :class:`~shardstream.read.ZipFileReader`), a directory (read
as ``PATH/{LABEL}/**``), or any :class:`~shardstream.read.DirectoryReader` pattern or list file
(``--separator``, ``--root-dir``, ``--include`` and ``--exclude`` apply to those).

Modes: samples decoded from msgpack (default); ``--raw``, the msgpack bytes only (what a loader's
main process does when its workers decode); ``--decode``, decoded and the image field (``image``
or ``data``) decoded to pixels as well (simplejpeg for JPEG when installed, else Pillow).
``--shuffle`` reads in a :class:`~shardstream.order.Shuffler`'s first-epoch order (seed
``len(dataset)`` unless ``--seed``) instead of sequentially. ``--workers N`` spreads chunks of 64
samples over N threads: file reads, JPEG decoding and md5 release the GIL, msgpack decoding
does not.

Printed: the reader, the mode, the setup time (opening the reader and loading its offsets), and
``N samples read in T seconds, S samples/s, M MB/s`` with MB = 10**6 bytes of sample data (for
packed data the msgpack bytes; for files, the file bytes; for ``--raw`` file readers, the
packed samples).

Differences from ``datadings-bench`` (3.4.7), all deliberate:

- ZIP files, manifests and globs of shards are benchmarked (datadings raised
  ``NotImplementedError`` for ZIP and had no shards); a directory is read as ``PATH/{LABEL}/**``;
- ``--decode``, ``--workers`` and ``--seed`` are new; ``-b/--buffering`` is gone (reads go
  through a memory map);
- MB means 10**6 bytes (datadings divided by 2**20) and directory trees report their bytes
  read (datadings printed 0 MB/s for them unless it found ``bytes_read``); no empty line is
  printed at the end.
"""

from __future__ import annotations

import argparse
import glob
import io
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..errors import DatasetNotFoundError
from ..format.codec import unpackb
from ..format.manifest import is_manifest
from ..format.paths import DatasetPaths
from ..order import shuffle_order
from ..read import DirectoryReader, MsgpackReader, Reader, ShardedReader, ZipFileReader
from ..read.directory import LABEL
from ._common import input_data_files, make_progress, nonnegative_int, positive_int

__all__ = ["add_parser", "run", "open_bench_reader", "image_decoder"]

#: Samples fetched per ``getitems`` call (and per thread task).
CHUNK = 64


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``bench`` subcommand."""
    parser = subparsers.add_parser(
        "bench",
        help="read benchmark: samples/s and MB/s of a packed file, shards, a folder or a ZIP",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "path",
        help="packed file, *.manifest, quoted glob of shards, ZIP file, folder, "
        "DirectoryReader pattern or list file",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "-r", "--raw", action="store_true", help="read msgpack bytes only, decode nothing"
    )
    mode.add_argument(
        "--decode", action="store_true", help="also decode each sample's image to pixels"
    )
    parser.add_argument("-s", "--shuffle", action="store_true", help="read in shuffled order")
    parser.add_argument(
        "--seed", type=nonnegative_int, default=None, help="shuffle seed (default: the length)"
    )
    parser.add_argument(
        "--workers", type=positive_int, default=1, help="reading threads (default: 1)"
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
    """Run the benchmark and print its figures; returns 0."""
    decode_image = image_decoder() if args.decode else None
    started = time.perf_counter()
    reader = open_bench_reader(
        args.path,
        separator=args.separator,
        root_dir=args.root_dir,
        include=tuple(args.include),
        exclude=tuple(args.exclude),
    )
    with reader:
        n = len(reader)
        packed = isinstance(reader, (MsgpackReader, ShardedReader))
        if n:
            reader.getitems([0], raw=packed)  # loads the offsets / opens the archive
        seed = n if args.seed is None else args.seed
        order = shuffle_order(n, seed) if args.shuffle else np.arange(n, dtype=np.int64)
        setup = time.perf_counter() - started
        mode = "raw msgpack bytes" if args.raw else "decoded samples"
        if decode_image is not None:
            mode += f" + image decode ({decode_image.__doc__})"
        order_text = f"shuffled (seed {seed})" if args.shuffle else "sequential"
        print(f"reader:     {type(reader).__name__} {args.path} ({n:,} samples)")
        print(f"mode:       {mode}, {order_text}, {args.workers} worker(s)")
        print(f"setup time: {setup:.4f} seconds")
        work = _make_work(reader, packed, args.raw, decode_image)
        chunks = [order[i : i + CHUNK] for i in range(0, n, CHUNK)]
        bar = make_progress(args.quiet, n, f"bench {os.path.basename(args.path)}")
        started = time.perf_counter()
        count = nbytes = pixels = 0
        try:
            for done, size, area in _run_chunks(work, chunks, args.workers):
                count += done
                nbytes += size
                pixels += area
                bar.update(done)
        finally:
            bar.close()
        seconds = max(time.perf_counter() - started, 1e-9)
    print(
        f"{count} samples read in {seconds:.2f} seconds, {count / seconds:.2f} samples/s, "
        f"{nbytes / seconds / 1e6:.2f} MB/s"
    )
    if decode_image is not None:
        print(
            f"images:     {pixels / 1e6:.1f} megapixels decoded, {pixels / seconds / 1e6:.1f} Mpx/s"
        )
    return 0


def open_bench_reader(
    path: str,
    *,
    separator: str = "\t",
    root_dir: str = "",
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
) -> Reader:
    """Open ``path`` with the reader its kind calls for (see the module docstring).

    Args:
        path: packed file, manifest, glob of shards, ZIP file, folder, pattern or list file.
        separator, root_dir, include, exclude: passed to file readers.

    Returns:
        The reader.

    Raises:
        DatasetNotFoundError: nothing found at ``path``.
        ShardstreamError: the reader cannot open the data (see each reader).
    """
    tree = {"separator": separator, "include": include, "exclude": exclude}
    if is_manifest(path):
        return ShardedReader(path)
    if os.path.isdir(path):
        return _non_empty(DirectoryReader(os.path.join(path, LABEL, "**"), **tree), path)
    if os.path.isfile(path):
        paths = DatasetPaths.of(path)
        if paths.offsets.exists() or paths.legacy_index.exists():
            return MsgpackReader(path)
        if path.lower().endswith(".zip"):
            return _non_empty(ZipFileReader(path, **tree), path)
        return _non_empty(DirectoryReader(path, root_dir=root_dir, **tree), path)
    if LABEL not in path and glob.glob(path):
        try:
            return ShardedReader([MsgpackReader(p) for p in input_data_files(path)])
        except DatasetNotFoundError:
            pass  # the glob matches plain files, not shards: a DirectoryReader pattern
    return _non_empty(DirectoryReader(path, root_dir=root_dir, **tree), path)


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

        with Image.open(io.BytesIO(data)) as image:
            image = image.convert("RGB")
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


def _non_empty(reader: Reader, path: str) -> Reader:
    if len(reader) == 0:
        reader.close()
        raise DatasetNotFoundError(path, "no files found to benchmark")
    return reader


def _make_work(
    reader: Reader, packed: bool, raw: bool, decode_image: Callable[[bytes], int] | None
) -> Callable[[np.ndarray], tuple[int, int, int]]:
    """The task run per chunk of indices: returns (samples, bytes, pixels decoded)."""

    def work(indices: np.ndarray) -> tuple[int, int, int]:
        if packed:
            raws = reader.getitems(indices, raw=True)
            size = sum(len(r) for r in raws)
            if raw:
                return len(raws), size, 0
            samples = [unpackb(r) for r in raws]
        else:
            samples = reader.getitems(indices, raw=raw)
            if raw:
                return len(samples), sum(len(s) for s in samples), 0
            size = sum(len(s.get("data", b"")) for s in samples)
        pixels = 0
        if decode_image is not None:
            for sample in samples:
                image = _image_field(sample)
                if image is not None:
                    pixels += decode_image(image)
        return len(samples), size, pixels

    return work


def _image_field(sample: Any) -> Any:
    if isinstance(sample, dict):
        for name in ("image", "data"):
            value = sample.get(name)
            if isinstance(value, (bytes, bytearray, memoryview)):
                return value
    return None


def _run_chunks(
    work: Callable[[np.ndarray], tuple[int, int, int]], chunks: list[np.ndarray], workers: int
) -> Iterator[tuple[int, int, int]]:
    if workers == 1:
        for chunk in chunks:
            yield work(chunk)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="shardstream-bench") as pool:
        yield from pool.map(work, chunks)
