"""One loader's run through its epochs: cursor, worker pool, stats, progress and state.

An :class:`EpochRun` belongs to one :class:`~shardstream.loader.loader.Loader`. It plans the epoch
(:class:`~shardstream.loader.plan.EpochPlan`), hands its batch tasks to the engine's
:class:`~shardstream.engine.pool.WorkerPool`, advances the cursor as batches are returned (never
for the ones the engine prefetched), runs a preset's device step, shows progress and saves and
restores the position.
"""

from __future__ import annotations

import collections
from collections.abc import Generator, Iterator, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from ..engine.pool import WorkerPool
from ..engine.stats import LoaderStats
from ..engine.tasks import BatchTask
from ..errors import ConfigError, StateMismatchError
from ..order.samplers.seeds import SEED_LIMIT
from ..order.state import StateCounter, StatefulMixin, StateSpec
from ..read.reader import Reader
from ..read.remote.prefetch import start_prefetch
from ..read.remote.ranged import RANGED_BATCHES
from ..read.remote.reader import manifest_sample_sizes
from .chain import Chain, effective_mode, field_kinds
from .digest import content_digest
from .plan import EpochPlan, shuffle_window
from .sample_work import SampleWork

__all__ = ["EpochRun", "UNBATCHED_CHUNK"]

#: samples per engine task when the loader is unbatched
UNBATCHED_CHUNK = 16


class EpochRun(StatefulMixin):
    """The iteration state of one loader: where it is, and the pool that makes its batches.

    Args:
        chain: the loader's settings (the run starts at ``chain.offset``, epoch 0).
    """

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.epoch = 0
        self.cursor = chain.offset or 0
        self.returned = 0
        self._iterator: Generator[Any, None, None] | None = None
        self._pool: WorkerPool | None = None
        self._work: SampleWork | None = None
        self._plan_cache: EpochPlan | None = None
        self._last_stats: dict[str, Any] = {}

    def start(self) -> None:
        """Begin (or continue) the epoch at the cursor, ending any run in progress."""
        self.stop()
        self._iterator = self._epoch_batches()

    def next(self) -> Any:
        """The next batch (or sample, when unbatched).

        Raises:
            StopIteration: the epoch is over.
        """
        if self._iterator is None:
            self._iterator = self._epoch_batches()
        try:
            return next(self._iterator)
        except StopIteration:
            self._iterator = None
            raise

    def close(self) -> None:
        """Stop the run and the workers (idempotent)."""
        self.stop()
        self.close_pool()

    def plan(self) -> EpochPlan:
        if self._plan_cache is None:
            chain = self.chain
            mode = effective_mode(self.chain)
            window = 1
            if chain.shuffle:
                window = shuffle_window(chain.buffer_size, self._mean_sample_bytes())
            self._plan_cache = EpochPlan(
                view=chain.view,
                dataset_length=len(chain.reader),
                seed=chain.seed,
                shuffle=bool(chain.shuffle),
                window=window,
                batch_size=chain.batch_size,
                drop_last=chain.drop_last,
                rank=mode.rank,
                world_size=mode.world_size,
                shard_starts=_block_starts(chain),
                shards_per_block=chain.shards_per_block,
            )
        return self._plan_cache

    def state_dict(self) -> dict[str, Any]:
        """The loader's position: ``{"kind", "sample_count", "digest", "seed", "epoch",
        "cursor"}``.

        ``cursor`` counts the epoch positions consumed by all ranks (batches already returned;
        never the ones the engine prefetched). ``digest`` is the data set's recorded content
        digest (see :func:`~shardstream.loader.digest.content_digest`; ``None`` when it records
        none), so a run is not resumed on another data set of the same length.

        Returns:
            A small JSON-serialisable dict for :meth:`load_state_dict`.
        """
        return super().state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue at a saved position: the next iteration yields exactly the batches an
        uninterrupted run would have yielded after the save.

        Args:
            state: a dict from :meth:`state_dict` of a loader over a view of the same length
                (any ``num_workers``, ``num_threads`` or batch size).

        Raises:
            StateMismatchError: the state is of another kind, misses or adds keys, was taken
                over a view of another length or over a data set with another content digest
                (the message names both), or holds an out-of-range seed, epoch or cursor. A
                state without ``digest`` (saved by an older version) is not checked for it.
        """
        super().load_state_dict(state)

    def _state_spec(self) -> StateSpec:
        sample_count = len(self.plan())
        counters = (
            StateCounter("seed", high=SEED_LIMIT - 1),
            StateCounter("epoch", high=SEED_LIMIT - 1),
            StateCounter("cursor", high=sample_count),
        )
        # a state saved by an older version has no digest; it is then not checked for one
        return StateSpec(
            kind="Loader",
            config={"sample_count": sample_count},
            counters=counters,
            optional=("digest",),
        )

    def _state_values(self) -> dict[str, Any]:
        return {
            "digest": self._digest(),
            "seed": self.chain.seed,
            "epoch": self.epoch,
            "cursor": self.cursor,
        }

    def _apply_state(self, values: dict[str, Any]) -> None:
        if "digest" in values:
            self._check_digest(values["digest"])
        seed = values["seed"]
        self.stop()
        if seed != self.chain.seed:
            self.close_pool()
            self._work = None
            self.chain = replace(self.chain, seed=seed, seed_given=True)
            self._plan_cache = None
        self.epoch, self.cursor = values["epoch"], values["cursor"]

    def _digest(self) -> str | None:
        shared = self.chain.shared
        if "digest" not in shared:
            shared["digest"] = content_digest(self.chain.reader)
        return shared["digest"]

    def _check_digest(self, saved: Any) -> None:
        if saved is not None and not isinstance(saved, str):
            raise StateMismatchError(
                f"Loader state holds digest={saved!r}; pass a dict from Loader.state_dict()"
            )
        mine = self._digest()
        if saved is not None and mine is not None and saved != mine:
            raise StateMismatchError(
                f"Loader state was saved over a data set with content digest {saved}, but "
                f"{self.chain.reader!r} has content digest {mine}: another data set (of the "
                "same length) is at that place; resume with the data set the state was saved on"
            )

    def stats(self) -> dict[str, Any]:
        """Throughput of the current (or last) run.

        Returns:
            A :class:`~shardstream.engine.stats.LoaderStats`: a dict of the engine's stats
            (samples/s, bytes/s, input-stall share, seconds per stage, skipped samples, ...; all 0
            before the first batch) plus the loader's ``epoch``, ``cursor`` and ``returned``
            (batches, or samples when unbatched, returned so far). ``print(loader.stats())``
            shows them as one line; ``.stages()`` gives the seconds per stage.
        """
        stats = LoaderStats()
        if self._pool is not None:
            stats.update(self._pool.stats())
        elif self._last_stats:
            stats.update(self._last_stats)
        stats.setdefault("skipped", 0)
        stats.update(epoch=self.epoch, cursor=self.cursor, returned=self.returned)
        return stats

    def _mean_sample_bytes(self) -> float:
        chain = self.chain
        shared = chain.shared
        if "sizes" not in shared:
            shared["sizes"] = _sample_sizes(chain.reader)
        sizes = shared["sizes"]
        if sizes is None or not len(sizes):
            return 0.0
        picked = sizes if chain.view is None else sizes[chain.view]
        return float(picked.mean()) if len(picked) else 0.0

    def _build_work(self) -> SampleWork:
        chain = self.chain
        mode = effective_mode(self.chain)
        return_index = mode.return_index
        fields = mode.tensors
        if chain.preset is not None:
            fields = tuple(chain.preset.fields)
        elif isinstance(chain.transform, Mapping):
            fields = tuple(k for k in chain.transform if k != "index")
            return_index = return_index or "index" in chain.transform
        return SampleWork(
            reader=chain.reader,
            seed=chain.seed,
            fields=fields,
            decode=mode.decode_method,
            kinds=field_kinds(self.chain),
            return_index=return_index,
            transform=None if chain.preset is not None else chain.transform,
            preset=chain.preset,
            collate_fn=mode.collate_fn,
            convert="pytorch" if chain.preset is not None else mode.name,
            batched=chain.batch_size is not None,
            ignore_errors=chain.ignore_errors,
            verify=chain.verify,
            zero_copy=mode.num_workers > 0,
        )

    def _get_pool(self) -> WorkerPool:
        if self._pool is None or self._pool.closed:
            if self._work is None:
                self._work = self._build_work()
            mode = effective_mode(self.chain)
            self._pool = WorkerPool(
                work=self._work,
                num_workers=mode.num_workers,
                num_threads=mode.num_threads,
                prefetch_factor=mode.prefetch_factor,
                persistent_workers=mode.persistent_workers,
                pin_memory=_is_cuda(self.chain.device),
                timeout=mode.timeout,
            )
        return self._pool

    def _epoch_batches(self) -> Generator[Any, None, None]:
        plan = self.plan()
        epoch, cursor = self.epoch, self.cursor
        if cursor > len(plan):
            raise ConfigError(f"offset/cursor {cursor} is past the end of the {len(plan)} samples")
        planned = plan.batches(epoch, cursor, UNBATCHED_CHUNK)
        pending: collections.deque = collections.deque()  # (sequence, PlannedBatch) sent out

        def tasks() -> Iterator[Any]:
            for sequence, batch in enumerate(planned):
                pending.append((sequence, batch))
                # a remote set's first batch: samples fetched as ranges meanwhile, sent along
                ahead = prefetcher.first_samples() if sequence == 0 and prefetcher else None
                yield BatchTask(
                    sequence=sequence,
                    epoch=epoch,
                    indices=batch.indices,
                    positions=batch.positions,
                    samples=ahead or None,
                )

        def skip_to(sequence: int | None) -> Any:
            # the engine yields no batch whose samples were all skipped: pass over them
            while pending and (sequence is None or pending[0][0] < sequence):
                _, skipped = pending.popleft()
                self._advance(epoch, skipped.cursor, skipped.last)
            return pending.popleft()[1] if sequence is not None else None

        total = plan.batch_count(cursor)
        if total == 0:
            self.epoch, self.cursor = epoch + 1, 0
            return
        chain = self.chain
        bar = _progress_bar(total, epoch) if chain.verbose else None
        prefetcher = start_prefetch(  # remote sets: fetch shards in this rank's order of use
            chain.reader,
            plan.order(epoch)[plan.rank_positions(cursor) % len(plan)],
            ranged=RANGED_BATCHES * (chain.batch_size or 1),
        )
        pool = self._get_pool()
        batched = chain.batch_size is not None
        try:
            for task, (positions, batch) in pool.run(tasks()):
                done = skip_to(task.sequence)
                if batched:
                    self._advance(epoch, done.cursor, done.last)
                    self.returned += 1
                    yield self._deliver(batch)
                else:
                    for j, sample in enumerate(batch):
                        cursor_j = plan.cursor_after(int(positions[j]))
                        last = done.last and j == len(batch) - 1 and cursor_j == done.cursor
                        self._advance(epoch, cursor_j, last)
                        self.returned += 1
                        yield self._deliver(sample)
                    self._advance(epoch, done.cursor, done.last)
                if bar is not None:
                    _update_bar(bar, pool.stats())
            skip_to(None)
        finally:
            if prefetcher is not None:
                prefetcher.stop()
            if bar is not None:
                bar.close()
            self._last_stats = dict(pool.stats())
            if pool.closed and self._pool is pool:  # a worker died or timed out: start afresh
                self._pool = None

    def _advance(self, epoch: int, cursor: int, last: bool) -> None:
        if last:
            self.epoch, self.cursor = epoch + 1, 0
        elif self.epoch == epoch:
            self.cursor = cursor

    def _deliver(self, batch: Any) -> Any:
        preset = self.chain.preset
        if preset is None:
            return batch
        device = self.chain.device
        if device is not None:
            host = getattr(preset, "host_fields", ())  # e.g. JPEG bytes nvJPEG reads from host
            if host and isinstance(batch, dict):
                batch = {k: v if k in host else _to_device(v, device) for k, v in batch.items()}
            else:
                batch = _to_device(batch, device)
        out = preset.device(batch)
        if isinstance(batch, dict) and "index" in batch and isinstance(out, dict):
            out.setdefault("index", batch["index"])  # keep the dataset indices with the batch
        return out

    def stop(self) -> None:
        run, self._iterator = self._iterator, None
        if run is not None:
            run.close()

    def close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            self._last_stats = dict(pool.stats())
            pool.close()


def _sample_sizes(reader: Reader) -> np.ndarray | None:
    """Packed byte size of every sample, from the offsets where the reader has them (a remote
    set's from its manifest: no request)."""
    remote = manifest_sample_sizes(reader)
    if remote is not None:
        return remote
    offsets = getattr(reader, "offsets", None)
    if isinstance(offsets, np.ndarray):
        return np.diff(offsets.astype(np.int64))
    shards = getattr(reader, "shards", None)
    if shards:
        parts = [_sample_sizes(shard) for shard in shards]
        present = [p for p in parts if p is not None]
        if len(present) == len(parts):
            return np.concatenate(present)
    n = len(reader)
    if not n:
        return None
    probe = np.linspace(0, n - 1, min(n, 32)).astype(np.int64)
    probed = []
    for i in probe.tolist():
        raw = reader.get(i, raw=True)
        probed.append(len(raw) if isinstance(raw, (bytes, bytearray, memoryview)) else 0)
    return np.full(n, float(np.mean(probed)))


def _is_cuda(device: Any) -> bool:
    if device is None:
        return False
    return str(device).startswith("cuda")


def _to_device(tree: Any, device: Any) -> Any:
    import torch

    if isinstance(tree, torch.Tensor):
        return tree.to(device, non_blocking=True)
    if isinstance(tree, Mapping):
        return {k: _to_device(v, device) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        values = [_to_device(v, device) for v in tree]
        return values if isinstance(tree, list) else type(tree)(values)
    return tree


def _progress_bar(total: int, epoch: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=f"epoch {epoch}", unit="batch")


def _update_bar(bar: Any, stats: Mapping[str, Any]) -> None:
    bar.update(1)
    rate = stats.get("samples_per_s", 0.0)
    stall = stats.get("stall_pct", 0.0)
    bar.set_postfix_str(f"{rate:,.0f} img/s, stall {stall:.0f}%", refresh=False)


def _block_starts(chain: Chain) -> np.ndarray | None:
    """The shard starts of ``shuffle(order="blocks")`` (one shard for an unsharded reader).

    Raises:
        ConfigError: blocks were asked for on a view (after ``query`` or ``sample_by``).
    """
    if not chain.shuffle or chain.order != "blocks":
        return None
    if chain.view is not None:
        raise ConfigError('shuffle(order="blocks") needs the whole set, not a query or sample_by')
    starts = getattr(chain.reader, "starts", None)
    if starts is None:
        return np.array([0, len(chain.reader)], dtype=np.int64)
    return np.asarray(starts, dtype=np.int64)
