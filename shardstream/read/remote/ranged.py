"""The first batch of a cold epoch read as byte ranges instead of waiting for whole shards.

A batch of the full permutation touches about one shard per sample (64 samples of a set of
480 shards touch about 60), so its first batch waits until some 60 whole shards (240 MB of
4 MB shards) are downloaded. :func:`fetch_ranges` instead fetches such a batch's samples as
byte ranges, all at once: the offsets of the shards this process has no offsets of (one
request of the set's offsets file where the manifest names one, :mod:`.set_offsets`; else one
``.offsets`` request per shard), then one round of ranges, concurrently where the filesystem is
asynchronous. The order and the samples are unchanged.

The Loader has the :class:`~.prefetch.ShardPrefetcher` fetch them (:data:`RANGED_BATCHES`
batches at the start of an epoch) before any whole shard, so that the ranges do not share the
link with whole shards, while it forks its workers; the samples travel to the worker with the
batch's task (:attr:`~shardstream.engine.tasks.BatchTask.samples`), so workers kept from an
earlier epoch get them too. Later batches read the whole shards the prefetcher fetches in the
order of use; the ranged bytes are downloaded again within them (for 64 images of about
100 kB, about 6 MB a batch), except in shards each of whose samples of the epoch came as a
range (:func:`served_shards`), which no reader opens.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...format.paths import SUFFIX_OFFSETS
from .remote_set import RemoteSet

__all__ = ["RANGED_BATCHES", "fetch_ranges", "served_shards"]

#: the batches at the start of an epoch that :func:`fetch_ranges` serves
RANGED_BATCHES = 1


def fetch_ranges(reader: Any, indices: Any) -> dict[int, bytes]:
    """Fetch the samples ``indices`` of a remote set as byte ranges, where it pays.

    It pays where the samples lie in more shards not yet in the cache than twice the set's
    ``prefetch_shards`` (fewer come whole as quickly); only in whole-shard mode (the
    Loader's). A failed request is left out: the reader then fetches that sample's shard.

    Args:
        reader: the Loader's reader (any reader: only a remote set's is served).
        indices: global sample indices.

    Returns:
        The packed bytes of the samples fetched, by global index (empty where it does not pay).
    """
    remote = getattr(reader, "remote", None)
    shards = getattr(reader, "shards", None)
    if not isinstance(remote, RemoteSet) or remote.mode != "shards" or not shards:
        return {}
    idx = np.asarray(indices, dtype=np.int64)
    shard_of = np.searchsorted(reader.starts, idx, side="right") - 1
    wanted: dict[int, list[int]] = {}
    for global_index, number in zip(idx.tolist(), shard_of.tolist()):
        wanted.setdefault(number, []).append(global_index - int(reader.starts[number]))
    wanted = {n: local for n, local in wanted.items() if not remote.is_cached(shards[n].spec)}
    if len(wanted) <= 2 * max(1, remote.prefetch_shards):
        return {}
    try:
        unknown = [n for n in wanted if not shards[n].has_offsets]
        listed = remote.set_offsets
        if unknown and listed is not None and listed.usable:  # all in one request
            for n in unknown:
                part = listed.part(remote, n)
                if part is None:
                    break
                shards[n].take_offsets(part)
            unknown = [n for n in unknown if not shards[n].has_offsets]
        urls = [shards[n].spec.url + SUFFIX_OFFSETS for n in unknown]
        found = remote.read_many(urls) if urls else {}
        for n, url in zip(unknown, urls):
            if url in found:
                shards[n].take_offsets(found[url])
        paths, starts, ends, keys = [], [], [], []
        for n, local in wanted.items():
            if not shards[n].has_offsets:
                continue
            offsets = shards[n].offsets
            path = remote.path(shards[n].spec.url)
            for i in local:
                paths.append(path)
                starts.append(int(offsets[i]))
                ends.append(int(offsets[i + 1]))
                keys.append(int(reader.starts[n]) + i)
        got = remote.fs.cat_ranges(paths, starts, ends, on_error="return") if paths else []
    except Exception:  # best effort: the readers fetch whole shards as without it
        return {}
    return {
        key: data
        for key, data, start, end in zip(keys, got, starts, ends)
        if isinstance(data, bytes) and len(data) == end - start
    }


def served_shards(starts: np.ndarray, order: Any, samples: Any) -> np.ndarray:
    """The shards each of whose samples in ``order`` is among ``samples``: no reader needs them
    whole while reading ``order``.

    Args:
        starts: global index of each shard's first sample, plus the total at the end.
        order: global sample indices.
        samples: the global indices at hand (e.g. fetched as ranges), each once.

    Returns:
        int64 shard numbers, ascending.
    """
    count = len(starts) - 1
    shard_of = np.searchsorted(starts, np.asarray(order, dtype=np.int64), side="right") - 1
    needed = np.bincount(shard_of, minlength=count)
    held = np.searchsorted(starts, np.asarray(samples, dtype=np.int64), side="right") - 1
    have = np.bincount(held, minlength=count)
    return np.flatnonzero((needed > 0) & (have >= needed)).astype(np.int64)
