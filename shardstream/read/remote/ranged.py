"""The first batches of a cold epoch read as byte ranges instead of waiting for whole shards.

A batch of the full permutation touches about one shard per sample (64 samples of a set of
480 shards touch about 60), so its first batch waits until some 60 whole shards (240 MB of
4 MB shards) are downloaded. :func:`fetch_ranges` instead fetches such a batch's samples as
byte ranges, all at once: the offsets of the shards this process has no offsets of (one
request of the set's offsets file where the manifest names one, :mod:`.set_offsets`; else one
``.offsets`` request per shard), then one round of ranges, concurrently where the filesystem is
asynchronous; the samples wait in the set's stash (:meth:`RemoteSet.stash`) until the reader
asks for them. The order and the samples are unchanged. The Loader calls it (through
:func:`~.prefetch.start_prefetch`) for the first :data:`RANGED_BATCHES` batches of an epoch
only, in its own process before it starts the prefetcher (whose whole shards would otherwise
share the link with the ranges) and forks its workers, which inherit the stash; workers kept
from an earlier epoch get none and read whole shards. Later batches read the whole shards the
prefetcher fetches in the order of use; the ranged bytes are downloaded again within them (for
64 images of about 100 kB, about 6 MB a batch), except in shards whose every sample of the
epoch came as a range (:func:`stashed_shards`), which no reader opens.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...format.paths import SUFFIX_OFFSETS
from .remote_set import RemoteSet

__all__ = ["RANGED_BATCHES", "fetch_ranges", "stashed_shards"]

#: the batches at the start of an epoch that :func:`fetch_ranges` serves
RANGED_BATCHES = 1


def fetch_ranges(reader: Any, indices: Any) -> int:
    """Fetch the samples ``indices`` of a remote set as byte ranges, where it pays.

    It pays where the samples lie in more shards not yet in the cache than twice the set's
    ``prefetch_shards`` (fewer come whole as quickly); only in whole-shard mode (the
    Loader's). A failed request is left alone: the reader then fetches that sample's shard.

    Args:
        reader: the Loader's reader (any reader: only a remote set's is served).
        indices: global sample indices.

    Returns:
        The number of samples stashed.
    """
    remote = getattr(reader, "remote", None)
    shards = getattr(reader, "shards", None)
    if not isinstance(remote, RemoteSet) or remote.mode != "shards" or not shards:
        return 0
    idx = np.asarray(indices, dtype=np.int64)
    shard_of = np.searchsorted(reader.starts, idx, side="right") - 1
    wanted: dict[int, list[int]] = {}
    for global_index, number in zip(idx.tolist(), shard_of.tolist()):
        local = global_index - int(reader.starts[number])
        if not remote.has_stashed(number, local):
            wanted.setdefault(number, []).append(local)
    wanted = {n: local for n, local in wanted.items() if not remote.is_cached(shards[n].spec)}
    if len(wanted) <= 2 * max(1, remote.prefetch_shards):
        return 0
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
                keys.append((n, i))
        got = remote.fs.cat_ranges(paths, starts, ends, on_error="return") if paths else []
    except Exception:  # best effort: the readers fetch whole shards as without it
        return 0
    stashed = 0
    for (n, i), data, start, end in zip(keys, got, starts, ends):
        if isinstance(data, bytes) and len(data) == end - start:
            remote.stash(n, i, data)
            stashed += 1
    return stashed


def stashed_shards(reader: Any, order: Any) -> np.ndarray:
    """The shards each of whose samples in ``order`` waits in the stash: no reader needs them
    whole while reading ``order``.

    Args:
        reader: the Loader's reader (a remote set's: see :func:`fetch_ranges`).
        order: global sample indices, each at most once.

    Returns:
        int64 shard numbers, ascending.
    """
    remote = getattr(reader, "remote", None)
    if not isinstance(remote, RemoteSet) or not remote.stashed:
        return np.empty(0, dtype=np.int64)
    count = len(reader.starts) - 1
    shard_of = np.searchsorted(reader.starts, np.asarray(order, dtype=np.int64), side="right") - 1
    needed = np.bincount(shard_of, minlength=count)
    stashed = np.bincount(
        np.asarray([n for n, _ in remote.stashed_samples()], dtype=np.int64), minlength=count
    )
    return np.flatnonzero((needed > 0) & (stashed >= needed)).astype(np.int64)
