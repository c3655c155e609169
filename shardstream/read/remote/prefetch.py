"""Fetching the shards an epoch reads next into the node-local cache, in the order of first use.

The Loader knows its order: :func:`start_prefetch` takes this rank's remaining sample order
(global indices), turns it into the order in which shards are first needed, and a
:class:`ShardPrefetcher` downloads them with ``prefetch_shards`` threads. Without a cache limit
the whole set fits and it fetches as fast as those threads go; with one it stays at most
``prefetch_shards`` shards ahead of the readers, so that it never evicts a shard before it was
read: before it fetches use position ``p``, the shard at ``p - prefetch_shards`` must have been
opened by a reader (a flag in a page the loader's forked workers share with it, see
:meth:`RemoteSet.opened`; where there is none, the shard's use stamp in the cache must have
moved past the time the prefetcher stored it). Downloads overlap the workers' decoding; a
worker that needs a shard before the prefetcher has it simply fetches it itself (the cache's
download lock makes it one download either way).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import numpy as np

from .ranged import fetch_ranges, served_shards
from .reader import RemoteSet, RemoteShardReader

__all__ = ["ShardPrefetcher", "shard_use_order", "start_prefetch"]

#: how often a waiting prefetcher looks at the use stamps again
_POLL_S = 0.02
#: downloads at once without a cache limit (nothing to evict, so no need to stay only
#: ``prefetch_shards`` ahead): enough to hide each download's request latency and the cache's
#: disk waits (the folder's fsync), and to keep a 20 ms x 1 Gbit/s link's 5 MB in flight
UNGATED_THREADS = 8


def shard_use_order(order: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The shards ``order`` touches, in the order of their first use.

    Args:
        order: global sample indices, in the order they will be read.
        starts: global index of each shard's first sample, plus the total at the end.

    Returns:
        int64 shard numbers, each once.
    """
    if not len(order):
        return np.empty(0, dtype=np.int64)
    shard_of = np.searchsorted(starts, np.asarray(order, dtype=np.int64), side="right") - 1
    shards, first = np.unique(shard_of, return_index=True)
    return shards[np.argsort(first, kind="stable")].astype(np.int64)


class ShardPrefetcher:
    """Downloads shards into the cache in a given order, a bounded number ahead of the readers.

    Args:
        remote: the set's shared state (its cache and filesystem).
        shards: the set's shard readers, by shard number.
        use_order: shard numbers in the order of first use (see :func:`shard_use_order`).
        ahead: most shards fetched beyond the last one a reader opened (also the threads;
            without a cache limit at least :data:`UNGATED_THREADS`).
        first: the shards at the start of ``use_order`` that the first batch needs: fetched
            alone, the others once they are stored (so that they do not share the link).
        prelude: run first in the prefetcher's thread, before any whole shard: returns the
            samples it fetched ahead (:meth:`first_samples`), shards to leave out of
            ``use_order`` and a new ``first``.

    Attributes:
        fetched: shard numbers stored, in completion order.
        errors: exceptions of failed fetches (a reader then fetches and reports itself).
    """

    def __init__(
        self,
        *,
        remote: RemoteSet,
        shards: list[RemoteShardReader],
        use_order: np.ndarray,
        ahead: int,
        first: int = 0,
        prelude: Callable[[], tuple[dict[int, bytes], np.ndarray, int]] | None = None,
    ) -> None:
        self.remote = remote
        self.shards = shards
        self.use_order = [int(s) for s in use_order]
        self.ahead = max(1, ahead)
        self.first = max(0, first)
        self.fetched: list[int] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._stored: dict[int, int] = {}
        self._prelude = prelude
        self._prelude_done = threading.Event()
        self._samples: dict[int, bytes] = {}
        remote.clear_opened()  # before any reader of this epoch opens a shard
        self._thread = threading.Thread(target=self._run, name="shard-prefetch", daemon=True)
        self._thread.start()

    def first_samples(self) -> dict[int, bytes]:
        """The samples the prelude fetched ahead (:mod:`.ranged`), by global index, once its
        requests are done (then empty: they are handed out once)."""
        self._prelude_done.wait()
        samples, self._samples = self._samples, {}
        return samples

    def stop(self) -> None:
        """Stop fetching (a download under way finishes); returns at once."""
        self._stop.set()
        self._samples = {}

    def join(self, timeout: float | None = None) -> None:
        """Wait for the prefetcher to finish or stop."""
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            if self._prelude is not None and not self._stop.is_set():
                samples, skip, self.first = self._prelude()
                left_out = set(skip.tolist())
                self.use_order = [n for n in self.use_order if n not in left_out]
                self._samples = {} if self._stop.is_set() else samples
        except BaseException as e:  # (best effort: the readers fetch the shards themselves)
            self.errors.append(e)
        finally:
            self._prelude_done.set()
        gated = self.remote.cache.limit is not None
        threads = self.ahead if gated else max(self.ahead, UNGATED_THREADS)
        with ThreadPoolExecutor(threads, thread_name_prefix="shard-fetch") as pool:
            running: list[Any] = []
            for position, number in enumerate(self.use_order):
                behind = position - self.ahead
                while (
                    gated and not self._stop.is_set() and behind >= 0 and not self._reached(behind)
                ):
                    time.sleep(_POLL_S)
                if position == self.first and running:  # the first batch's shards first
                    wait(running)
                if self._stop.is_set():
                    break
                running = [f for f in running if not f.done()]
                running.append(pool.submit(self._fetch, number))

    def _reached(self, position: int) -> bool:
        """Whether a reader opened the shard at use ``position`` (since it was stored)."""
        number = self.use_order[position]
        opened = self.remote.opened(number)
        if opened is not None:
            return opened
        stored = self._stored.get(number)
        if stored is None:
            return False  # still downloading
        spec = self.shards[number].spec
        return self.remote.cache.last_used(self.remote.digest, spec.entry_name) > stored

    def _fetch(self, number: int) -> None:
        if self._stop.is_set():
            return
        spec = self.shards[number].spec
        try:
            if not self.remote.cache.contains(self.remote.digest, spec.entry_name):
                self.remote.ensure(spec)  # (a cached one is checked by the reader that opens it)
            self._stored[number] = self.remote.cache.last_used(self.remote.digest, spec.entry_name)
            self.fetched.append(number)
        except BaseException as e:  # a reader that needs the shard fetches it and reports
            self.errors.append(e)
            self._stored[number] = -1


def start_prefetch(reader: Any, order: np.ndarray, ranged: int = 0) -> ShardPrefetcher | None:
    """Start prefetching for a reader opened from a URL; ``None`` for any other reader.

    Also switches the set to whole-shard reads (``remote.mode = "shards"``), the Loader's way.

    Args:
        reader: the Loader's reader.
        order: this rank's global sample indices still to be read this epoch, in order.
        ranged: the first samples of ``order`` to fetch as byte ranges first, where that pays
            (:func:`~.ranged.fetch_ranges`; the Loader sends them with the first batch's task,
            see :meth:`ShardPrefetcher.first_samples`). Whole shards start after them, so
            that they do not share the link, leaving out the shards each of whose samples in
            ``order`` came as a range (no reader opens those this epoch); where they are not
            fetched as ranges, the shards they lie in are fetched first, alone.

    Returns:
        The running prefetcher (call :meth:`ShardPrefetcher.stop` at the epoch's end), or
        ``None`` when the reader is not remote or ``prefetch_shards`` is 0.
    """
    remote = getattr(reader, "remote", None)
    if not isinstance(remote, RemoteSet):
        return None
    remote.mode = "shards"
    if remote.prefetch_shards <= 0:
        return None
    starts = reader.starts

    def prelude() -> tuple[dict[int, bytes], np.ndarray, int]:
        samples = fetch_ranges(reader, order[:ranged])
        if samples:
            return samples, served_shards(starts, order, list(samples)), 0
        first = len(shard_use_order(order[:ranged], starts))  # read whole: those first
        return {}, np.empty(0, dtype=np.int64), first

    return ShardPrefetcher(
        remote=remote,
        shards=reader.shards,
        use_order=shard_use_order(order, starts),
        ahead=remote.prefetch_shards,
        prelude=prelude if ranged > 0 else None,
    )
