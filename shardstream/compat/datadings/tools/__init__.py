"""datadings' ``tools``: paths, hashes, progress, downloads, threads and data set file handling.

Hashing, md5 files, downloads and prompts are shardstream's engine
(:mod:`shardstream.format`, :mod:`shardstream.sets.sources`, :mod:`shardstream.write.prompt`);
the rest are datadings' small helpers, written here once. Differences from datadings 3.4.7:

- a source file with the wrong md5 raises
  :class:`~shardstream.errors.SourceChecksumError` and a failed download
  :class:`~shardstream.errors.DownloadError` (datadings printed and called ``sys.exit(1)``);
  downloads go to a temp file that is renamed only when complete;
- :func:`yield_threaded` / :func:`yield_process` raise ``RuntimeError`` *from* the generator's
  exception (datadings lost it);
- :func:`tiff_to_nd_array` reads with tifffile (or Pillow) instead of GDAL, giving the same
  ``(bands, height, width)`` array.
"""

from __future__ import annotations

import inspect
import multiprocessing as mp
import os
import os.path as pt
import threading as th
from collections.abc import Callable, Iterable, Iterator
from itertools import product
from pathlib import Path
from queue import Empty, Full, Queue
from struct import Struct
from typing import Any

import numpy as np

from ....errors import MissingDependencyError
from ....format.integrity import load_md5file, md5_file
from ....format.keyhash import hash_string as _hash_string
from ....sets.console import BAR_FORMAT, ProgressPrinter, make_printer, print_over
from ....sets.sources import SourceFile, download_source, verify_source
from ....write.prompt import query_user

__all__ = [
    "BAR_FORMAT",
    "DOWNLOAD_BAR",
    "ProgressPrinter",
    "SentinelEnd",
    "SentinelError",
    "Yielder",
    "YielderProc",
    "document_keys",
    "download_files_if_not_found",
    "download_if_not_found",
    "hash_md5hex",
    "hash_string",
    "hash_string_bytes",
    "load_md5file",
    "locate_files",
    "make_printer",
    "path_append",
    "path_append_suffix",
    "prepare_indir",
    "print_over",
    "query_user",
    "split_array",
    "tiff_to_nd_array",
    "verify_file",
    "verify_files",
    "yield_process",
    "yield_threaded",
]

DOWNLOAD_BAR = "{rate_fmt}, {n_fmt} of {total_fmt} ({percentage:3.0f}%) {elapsed}<{remaining}"
_STRUCT = Struct(">Q")
_NO_MD5 = "0" * 32  # downloads without a published md5 are not verified


def path_append(path: Path, string: str) -> Path:
    """``path`` with ``string`` appended to its name.

    Raises:
        ValueError: ``path`` has no name (e.g. ``/``).
    """
    return path.with_name(path.name + string)


def path_append_suffix(path: Path, suffix: str) -> Path:
    """``path`` with ``suffix`` appended unless ``path.suffix == suffix`` (datadings' rule:
    ``("some.txt", "txt")`` gives ``some.txttxt``)."""
    path = Path(path)
    return path if path.suffix == suffix else path_append(path, suffix)


def hash_md5hex(path: str | os.PathLike, read_size: int = 64 * 1024, progress: bool = False) -> str:
    """Hexadecimal md5 of the file at ``path`` (``progress``: show a bar)."""
    return md5_file(path, read_size=read_size, progress=progress)


def hash_string(s: str, salt: bytes = b"", __struct: Struct = _STRUCT) -> int:
    """First 8 bytes of ``blake2s(s, salt=salt)`` as a big-endian uint64 (``__struct`` unused)."""
    return _hash_string(s, salt)


def hash_string_bytes(s: str, salt: bytes = b"", __struct: Struct = _STRUCT) -> bytes:
    """First 8 bytes of ``blake2s(s, salt=salt)`` (``__struct`` unused)."""
    return _hash_string(s, salt).to_bytes(8, "big")


def download_if_not_found(url: str, path: str) -> None:
    """Download ``url`` to ``path`` unless ``path`` exists (parent folders are created).

    Google Drive links need ``gdown``, everything else uses shardstream's downloader.

    Raises:
        DownloadError: the download failed (nothing is left at ``path``).
        MissingDependencyError: a Google Drive link and ``gdown`` is not installed.
    """
    if pt.exists(path):
        return
    parent = pt.dirname(path) or "."
    os.makedirs(parent, mode=0o777, exist_ok=True)
    print("downloading", pt.basename(path), "-->", path)
    if "drive.google.com" in url:
        try:
            import gdown
        except ImportError as error:
            raise MissingDependencyError(f"{url}: Google Drive downloads need gdown") from error
        gdown.download(url, path)
        return
    source = SourceFile(name=pt.basename(path), md5=_NO_MD5, url=url)
    download_source(source, parent, verify=False)


def download_files_if_not_found(files: dict, indir: str) -> None:
    """:func:`download_if_not_found` for each file description in ``files`` that has a URL."""
    for meta in files.values():
        if meta.get("url"):
            download_if_not_found(meta["url"], pt.join(indir, meta["path"]))


def verify_file(meta: dict, indir: str) -> None:
    """Check the md5 of the file ``meta`` describes (``path`` relative to ``indir``, ``md5``).

    Raises:
        SourceChecksumError: the md5 differs; SourceNotFoundError: the file is missing.
    """
    path = pt.join(indir, meta["path"])
    print("Verifying " + pt.basename(meta["path"]))
    source = SourceFile(name=pt.basename(path), md5=meta["md5"], url=meta.get("url"))
    verify_source(path, source, progress=True)


def verify_files(files: dict, indir: str) -> None:
    """:func:`verify_file` for every file description in ``files``."""
    for meta in files.values():
        verify_file(meta, indir)


def locate_files(files: dict, indir: str) -> dict:
    """A copy of ``files`` with each ``path`` joined onto ``indir``."""
    return {name: dict(meta, path=pt.join(indir, meta["path"])) for name, meta in files.items()}


def prepare_indir(files: dict, args: Any) -> dict:
    """Download missing files into ``args.indir``, verify them unless
    ``args.skip_verification``, and return :func:`locate_files` of them.

    ``files`` maps names to ``{"path": ..., "url": ..., "md5": ...}``.
    """
    download_files_if_not_found(files, args.indir)
    if not args.skip_verification:
        verify_files(files, args.indir)
    return locate_files(files, args.indir)


def split_array(
    img: np.ndarray, v_pixels: int, h_pixels: int, indices: tuple[int, int] = (1, 2)
) -> Iterator[np.ndarray]:
    """Yield tiles of ``v_pixels`` x ``h_pixels`` of a ``(channels, height, width)`` array,
    row by row; ``indices`` are the axes whose lengths give the number of tiles."""
    i_ = np.arange(img.shape[indices[0]]) // v_pixels
    j_ = np.arange(img.shape[indices[1]]) // h_pixels
    for i, j in product(np.unique(i_), np.unique(j_)):
        yield img[:, i_ == i][:, :, j_ == j]


def tiff_to_nd_array(file_path: str | os.PathLike, type: Any = np.uint8) -> np.ndarray:
    """The bands of a TIFF image as one ``(bands, height, width)`` array of dtype ``type``.

    Reads with tifffile when installed (any number of bands), else with Pillow.

    Raises:
        MissingDependencyError: neither tifffile nor Pillow can read the file's layout.
    """
    try:
        import tifffile
    except ImportError:
        from PIL import Image

        with Image.open(file_path) as image:
            array = np.asarray(image)
    else:
        with tifffile.TiffFile(file_path) as tif:
            page = tif.pages[0]
            array = page.asarray()
            if page.planarconfig == tifffile.PLANARCONFIG.SEPARATE and array.ndim == 3:
                return array.astype(type)
    if array.ndim == 2:
        array = array[None]
    else:
        array = np.moveaxis(array, -1, 0)
    return array.astype(type)


class Yielder(th.Thread):
    """Daemon thread that puts the items of ``gen`` into ``queue``, then ``end``.

    ``error`` is put last in any case (the consumer stops reading at ``end``); an exception
    of the generator is kept in ``exception``. :meth:`stop` makes it stop early.
    """

    def __init__(self, gen: Iterable, queue: Queue, end: Any, error: Any) -> None:
        super().__init__(daemon=True)
        self.running = True
        self.gen = gen
        self.queue = queue
        self.end = end
        self.error = error
        self.exception: BaseException | None = None

    def _put(self, obj: Any) -> None:
        while self.running:
            try:
                self.queue.put(obj, timeout=1)
                return
            except Full:
                pass

    def run(self) -> None:
        """Feed the queue (the thread's body)."""
        try:
            for obj in self.gen:
                if not self.running:
                    break
                self._put(obj)
            else:
                self._put(self.end)
        except BaseException as error:
            self.exception = error
        finally:
            self._put(self.error)

    def stop(self) -> None:
        """Stop after the current item."""
        self.running = False


def yield_threaded(gen: Iterable) -> Iterator:
    """Run ``gen`` in a background thread and yield its items here.

    Raises:
        RuntimeError: the generator raised (chained from its exception).
    """
    end, error = object(), object()
    queue: Queue = Queue(maxsize=3)
    yielder = Yielder(gen, queue, end, error)
    try:
        yielder.start()
        while True:
            try:
                obj = queue.get(timeout=1)
            except Empty:
                continue
            if obj is end:
                break
            if obj is error:
                raise RuntimeError("the generator failed") from yielder.exception
            yield obj
    finally:
        yielder.stop()


class SentinelEnd:
    """Marks the end of a :class:`YielderProc`'s items."""


class SentinelError:
    """Marks that a :class:`YielderProc`'s generator stopped (last item in any case)."""

    def __init__(self, message: str = "") -> None:
        self.message = message


class YielderProc(mp.Process):
    """Daemon process that puts the items of ``gen`` into ``queue``, then a
    :class:`SentinelEnd`, and a :class:`SentinelError` in any case."""

    def __init__(self, gen: Iterable, queue: Any) -> None:
        super().__init__(daemon=True)
        self.running = mp.Value("b")
        self.running.value = True
        self.gen = gen
        self.queue = queue

    def _put(self, obj: Any) -> None:
        while self.running.value:
            try:
                self.queue.put(obj, timeout=1)
                return
            except Full:
                pass

    def run(self) -> None:
        """Feed the queue (the process's body)."""
        message = ""
        try:
            for obj in self.gen:
                if not self.running.value:
                    break
                self._put(obj)
            else:
                self._put(SentinelEnd())
        except BaseException as error:
            message = f"{type(error).__name__}: {error}"
        finally:
            self._put(SentinelError(message))

    def stop(self) -> None:
        """Stop after the current item."""
        self.running.value = False


def yield_process(gen: Iterable) -> Iterator:
    """Run ``gen`` in a background process and yield its items here.

    Raises:
        RuntimeError: the generator raised (the message names its exception).
    """
    queue: Any = mp.Queue(maxsize=3)
    yielder = YielderProc(gen, queue)
    try:
        yielder.start()
        while True:
            try:
                obj = queue.get(timeout=1)
            except Empty:
                continue
            if isinstance(obj, SentinelEnd):
                break
            if isinstance(obj, SentinelError):
                raise RuntimeError(f"the generator failed: {obj.message}")
            yield obj
    finally:
        yielder.stop()


def document_keys(
    typefun: Callable,
    block: str = "Important:",
    prefix: str = "Samples have the following keys:",
    postfix: str = "",
) -> str:
    """A docstring block listing the keys of the samples ``typefun`` creates.

    ``typefun`` (e.g. ``sets.types.ImageClassificationData``) is called with ``1`` for each
    parameter; the result's keys are listed in order.
    """
    sample = typefun(*((1,) * len(inspect.signature(typefun).parameters)))
    return (
        "{block}\n"
        + "    {prefix}\n\n    - "
        + "\n    - ".join(f'``"{k}"``' for k in sample)
        + "\n{postfix}"
    ).format(block=block, prefix=prefix, postfix=postfix)
