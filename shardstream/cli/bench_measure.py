"""The plan of ``shardstream bench``'s runs: every source, cache state, worker count and repeat.

Runs are ordered so that a machine's changing load affects every source alike: per cache state,
worker count and repeat, each source runs in turn, alternating which goes first. A warm phase
starts by reading every file once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..read import MsgpackReader, Reader, ShardedReader
from . import bench_runs
from .bench_report import Row

__all__ = ["input_bytes", "measure"]


def measure(
    *,
    sources: Sequence[bench_runs.Source],
    caches: Sequence[str],
    workers: Sequence[int],
    repeat: int,
    order: np.ndarray,
    preset: str | None,
    batch_size: int,
    shuffle: bool,
    seed: int,
    raw: bool,
    decode_image: Callable[[Any], int] | None,
    progress: Any,
    preset_modes: dict[str, str] | None = None,
) -> list[Row]:
    """Run every configuration ``repeat`` times and return one :class:`Row` per source, cache
    (``"cold"`` or ``"warm"``) and worker count, in that nesting order.

    Args:
        sources: the data sets (packed first, then loose files, if any).
        caches, workers, repeat: the configurations and how often each runs.
        order: the sample order of plain reads.
        preset: a ``--preset`` name (Loader epochs) or None (plain reads: ``raw`` bytes,
            decoded samples, and images decoded with ``decode_image`` when it is given).
        batch_size, shuffle, seed: the Loader's settings.
        progress: a tqdm-like bar (``total``, ``update``, ``close``), closed at the end.
        preset_modes: the preset's ``resize`` / ``decode`` settings (none: the exact path).

    Raises:
        ShardstreamError: a reader or the Loader fails (see :mod:`.bench_runs`).
    """
    progress.total = len(order) * len(sources) * len(caches) * len(workers) * repeat
    files: dict[str, list[str]] = {}
    nbytes: dict[str, int] = {}
    for source in sources:
        with source.open() as reader:
            files[source.name] = bench_runs.data_files(reader)
            nbytes[source.name] = input_bytes(reader)
    runs: dict[tuple[str, str, int], list[bench_runs.RunResult]] = {}
    try:
        for cache in caches:
            if cache == "warm":
                for source in sources:
                    bench_runs.warm_page_cache(files[source.name])
            for count in workers:
                for turn in range(repeat):
                    for source in sources if turn % 2 == 0 else sources[::-1]:
                        cold = cache == "cold"
                        if preset is not None:
                            result = bench_runs.loader_run(
                                source,
                                preset_name=preset,
                                workers=count,
                                batch_size=batch_size,
                                shuffle=shuffle,
                                seed=seed,
                                cold=cold,
                                nbytes=nbytes[source.name],
                                progress=progress.update,
                                modes=preset_modes,
                            )
                        else:
                            result = bench_runs.read_run(
                                source,
                                order=order,
                                workers=count,
                                raw=raw,
                                cold=cold,
                                decode_image=decode_image,
                                progress=progress.update,
                            )
                        runs.setdefault((source.name, cache, count), []).append(result)
    finally:
        progress.close()
    return [
        Row(
            source=source.name,
            path=source.path,
            cache=cache,
            workers=count,
            runs=tuple(runs[source.name, cache, count]),
        )
        for source in sources
        for cache in caches
        for count in workers
    ]


def input_bytes(reader: Reader) -> int:
    """The bytes a full pass reads: packed sample bytes, or the files' sizes."""
    if isinstance(reader, MsgpackReader):
        return reader._data_size
    if isinstance(reader, ShardedReader):
        return sum(input_bytes(shard) for shard in reader.shards)
    return sum(os.path.getsize(p) for p in bench_runs.data_files(reader))
