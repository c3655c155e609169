"""The timed runs of ``shardstream bench``: raw/decoded reads and Loader epochs, cold or warm.

A run opens its reader afresh, drops the page cache of the data's files when the run is cold
(:func:`drop_page_cache`: ``posix_fadvise(POSIX_FADV_DONTNEED)`` on each file, no root needed),
then times reading every sample once. Packed data is read as the Loader reads it: zero-copy views
into the memory map (``getitems(..., raw=True, copy=False)``), so no byte is copied before the
msgpack decoder (or, for raw reads, a touch of every page) needs it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..format.codec import unpackb
from ..format.paths import DatasetPaths
from ..loader import Loader
from ..read import MsgpackReader, Reader, ShardedReader, ZipFileReader

__all__ = [
    "CHUNK",
    "PRESETS",
    "RunResult",
    "Source",
    "data_files",
    "drop_page_cache",
    "is_packed",
    "loader_run",
    "read_run",
    "warm_page_cache",
    "write_loose_copy",
]

#: Samples fetched per ``getitems`` call (and per thread task).
CHUNK = 64

#: ``--preset`` names and the module and class each builds (imported lazily).
PRESETS = {
    "dino": ("dino", "DinoPreset"),
    "supervised": ("supervised", "SupervisedPreset"),
    "eval": ("supervised", "EvalPreset"),
}

_PAGE = 4096
_SIDECARS = ("offsets", "keys", "key_hashes", "filter", "legacy_index")


@dataclass(frozen=True, kw_only=True)
class Source:
    """One data set to benchmark.

    Attributes:
        name: ``"packed"`` or ``"loose"`` (the row label).
        path: what the user named (or the temporary loose copy).
        open: opens a fresh reader of it.
        image_field: the field holding the encoded image (``"data"`` for file readers).
    """

    name: str
    path: str
    open: Callable[[], Reader]
    image_field: str


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """One timed run: samples and input bytes read in ``seconds``; for a Loader run also the
    seconds its read stage took (summed over its threads) and its input-stall percentage."""

    samples: int
    nbytes: int
    seconds: float
    pixels: int = 0
    read_seconds: float | None = None
    stall_pct: float | None = None


def is_packed(reader: Reader) -> bool:
    """Whether ``reader`` reads msgpack data files (a packed file or shards)."""
    return isinstance(reader, (MsgpackReader, ShardedReader))


def data_files(reader: Reader) -> list[str]:
    """Every file whose pages a run of ``reader`` reads: data and index files of packed data,
    the archive of a ZIP reader, each sample's file of a file-tree reader."""
    if isinstance(reader, MsgpackReader):
        paths = DatasetPaths.of(reader.path)
        files = [paths.data, *(getattr(paths, name) for name in _SIDECARS)]
        return [os.fspath(p) for p in files if p.exists()]
    if isinstance(reader, ShardedReader):
        return [f for shard in reader.shards for f in data_files(shard)]
    if isinstance(reader, ZipFileReader):
        return [reader._path]
    samples = getattr(reader, "_samples", None) or []
    return [s["path"] for s in samples if isinstance(s, dict) and "path" in s]


def drop_page_cache(paths: list[str]) -> int:
    """Ask the kernel to drop the cached pages of each file (``POSIX_FADV_DONTNEED``).

    The file's dirty pages are written first (``fdatasync``); then its pages that no process
    maps are dropped, so the next read comes from the disk; no root is needed. Returns the number of files handled (files that vanished are skipped).
    """
    done = 0
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            os.fdatasync(fd)  # dirty pages (a file just written) are not dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            done += 1
        finally:
            os.close(fd)
    return done


def read_run(
    source: Source,
    *,
    order: np.ndarray,
    workers: int,
    raw: bool,
    cold: bool,
    decode_image: Callable[[Any], int] | None,
    progress: Callable[[int], Any],
) -> RunResult:
    """Read every sample of ``source`` once in ``order`` with ``workers`` threads (0: in this
    thread): raw bytes, samples decoded from msgpack, or those and their images.

    Returns:
        The samples, the input bytes (packed sample bytes or file bytes) and the seconds.
    """
    with source.open() as reader:
        len(reader)
        if cold:
            drop_page_cache(data_files(reader))
        work = _chunk_work(reader, is_packed(reader), raw, decode_image)
        chunks = [order[i : i + CHUNK] for i in range(0, len(order), CHUNK)]
        started = time.perf_counter()
        count = nbytes = pixels = 0
        for done, size, area in _run_chunks(work, chunks, workers):
            count += done
            nbytes += size
            pixels += area
            progress(done)
        seconds = max(time.perf_counter() - started, 1e-9)
    return RunResult(samples=count, nbytes=nbytes, seconds=seconds, pixels=pixels)


def loader_run(
    source: Source,
    *,
    preset_name: str,
    workers: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
    cold: bool,
    nbytes: int,
    progress: Callable[[int], Any],
) -> RunResult:
    """One epoch of ``shardstream.Loader`` over ``source`` with the named preset (colour on the
    CPU, in the workers) and ``workers`` worker processes, timed from the first ``next`` (worker
    start-up included, as a training run sees it) to the last batch.

    Raises:
        MissingDependencyError: torch is not installed.
        ConfigError: an unknown preset name.
    """
    import importlib

    if preset_name not in PRESETS:
        raise ConfigError(f"bench: unknown preset {preset_name!r} (choose from {sorted(PRESETS)})")
    module, name = PRESETS[preset_name]
    preset_class = getattr(importlib.import_module(f"shardstream.vision.{module}"), name)
    with source.open() as reader:
        label = "label" if _has_field(reader, "label") else None
        preset = preset_class(image_field=source.image_field, label_field=label)
        if cold:
            drop_page_cache(data_files(reader))
        loader = Loader(reader, seed=seed).batch(batch_size)
        if shuffle:
            loader = loader.shuffle()
        loader = loader.preset(preset).pytorch(num_workers=workers)
        with loader:
            started = time.perf_counter()
            for _ in loader:
                pass
            seconds = max(time.perf_counter() - started, 1e-9)
            stats = loader.stats()
        progress(int(stats["samples"]))
    return RunResult(
        samples=int(stats["samples"]),
        nbytes=nbytes,
        seconds=seconds,
        read_seconds=float(stats["read_s"]),
        stall_pct=float(stats["stall_pct"]),
    )


def write_loose_copy(reader: Reader, folder: Path, image_field: str) -> int:
    """Write each sample's image as a file ``folder/<label>/<index>.<jpg|png|bin>`` (labels
    zero-padded so the folder order is the label order), the layout a
    :class:`~shardstream.read.DirectoryReader` reads back with the same numeric labels.

    Returns:
        The bytes written.

    Raises:
        ConfigError: a sample has no ``image_field`` bytes.
    """
    total = 0
    width = len(str(max(len(reader) - 1, 0)))
    for index in range(len(reader)):
        sample = reader.get(index)
        data = sample.get(image_field) if isinstance(sample, dict) else None
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ConfigError(
                f"{getattr(reader, 'path', reader)!r}: sample {index} has no {image_field!r} "
                "bytes to write as a loose file"
            )
        label = sample.get("label", 0)
        label_dir = folder / (f"{label:06d}" if isinstance(label, int) else str(label))
        label_dir.mkdir(parents=True, exist_ok=True)
        name = f"{index:0{width}d}{_extension(bytes(data[:8]))}"
        (label_dir / name).write_bytes(data)
        total += len(data)
    return total


# --- helpers --------------------------------------------------------------------------------


def _has_field(reader: Reader, name: str) -> bool:
    if not len(reader):
        return False
    sample = reader.get(0)
    return isinstance(sample, dict) and name in sample


def _extension(head: bytes) -> str:
    if head.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if head.startswith(b"\x89PNG"):
        return ".png"
    return ".bin"


def _touch(view: memoryview) -> None:
    """Read one byte of every page of ``view`` (what a decoder does first), so a raw read of a
    memory map brings its pages in from the disk instead of timing only the offset lookups."""
    if len(view):
        int(np.frombuffer(view, dtype=np.uint8)[::_PAGE].sum())


def _chunk_work(
    reader: Reader, packed: bool, raw: bool, decode_image: Callable[[Any], int] | None
) -> Callable[[np.ndarray], tuple[int, int, int]]:
    """The task run per chunk of indices: returns (samples, bytes, pixels decoded)."""

    def work(indices: np.ndarray) -> tuple[int, int, int]:
        if packed:
            views = reader.getitems(indices, raw=True, copy=False)
            size = sum(len(v) for v in views)
            if raw:
                for view in views:
                    _touch(view)
                return len(views), size, 0
            samples = [unpackb(v) for v in views]
            del views
        else:
            samples = reader.getitems(indices)  # the file bytes, in "data"
            size = sum(len(s.get("data", b"")) for s in samples)
            if raw:
                return len(samples), size, 0
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
    if workers == 0:
        for chunk in chunks:
            yield work(chunk)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="shardstream-bench") as pool:
        yield from pool.map(work, chunks)


def warm_page_cache(paths: list[str]) -> int:
    """Read each file once, so a warm run finds its pages in the page cache.

    Returns the bytes read (files that vanished are skipped).
    """
    total = 0
    for path in paths:
        try:
            with open(path, "rb", buffering=0) as f:
                while chunk := f.read(1 << 20):
                    total += len(chunk)
        except FileNotFoundError:
            continue
    return total
