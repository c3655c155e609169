"""Throughput bookkeeping of a worker pool: what was delivered, how fast, and where time went."""

from __future__ import annotations

import time
from typing import Any

from .tasks import STAGES

__all__ = ["PoolStats", "LoaderStats"]


class LoaderStats(dict):
    """A loader's throughput counters: the plain dict of :meth:`PoolStats.snapshot` (and the
    loader's ``epoch``, ``cursor`` and ``returned``) that prints as one readable line.

    ``str(stats)`` is e.g. ``"1,024 samples in 32 batches, 612 samples/s, 3.1 MB/s, stall 4.2 %,
    0 skipped | read 5 % decode 61 % transform 30 % collate 4 % of 3.3 worker-s, wait 0.21 s"``;
    :meth:`stages` gives the per-stage seconds behind it.
    """

    def stages(self) -> dict[str, float]:
        """The time per pipeline stage: worker seconds of ``read``, ``decode``, ``transform``
        and ``collate`` (summed over workers and threads) and the consumer's ``wait``.

        Returns:
            ``{stage: seconds}`` in pipeline order, ``wait`` last (0 for counters not kept).
        """
        out = {stage: float(self.get(f"{stage}_s", 0.0)) for stage in STAGES}
        out["wait"] = float(self.get("wait_s", 0.0))
        return out

    def __str__(self) -> str:
        stages = self.stages()
        wait = stages.pop("wait")
        work = sum(stages.values())
        shares = " ".join(
            f"{stage} {100 * seconds / work:.0f} %" if work > 0 else f"{stage} -"
            for stage, seconds in stages.items()
        )
        return (
            f"{int(self.get('samples', 0)):,} samples in {int(self.get('batches', 0)):,} batches, "
            f"{self.get('samples_per_s', 0.0):,.0f} samples/s, "
            f"{self.get('bytes_per_s', 0.0) / 1e6:,.1f} MB/s, "
            f"stall {self.get('stall_pct', 0.0):.1f} %, {int(self.get('skipped', 0)):,} skipped"
            f" | {shares} of {work:.2f} worker-s, wait {wait:.2f} s"
        )

    def __repr__(self) -> str:
        return f"LoaderStats({dict.__repr__(self)})"

    def __reduce__(self) -> Any:  # pickles (and copies) as a LoaderStats of the same items
        return (LoaderStats, (dict(self),))


class PoolStats:
    """Counters summed over every run of a pool, read with :meth:`snapshot`.

    Elapsed time is the wall time spent inside runs (from a run's first request for a batch to
    its end); wait time is the part of it the consumer spent blocked on the next batch.
    """

    def __init__(self) -> None:
        self._running_since: float | None = None
        self.reset()

    def reset(self) -> None:
        """Zero every counter (a run in progress keeps counting from now)."""
        self.samples = 0
        self.batches = 0
        self.empty_batches = 0
        self.bytes = 0
        self.skipped = 0
        self.wait_s = 0.0
        self.stages = dict.fromkeys(STAGES, 0.0)
        self._elapsed = 0.0
        if self._running_since is not None:
            self._running_since = time.perf_counter()

    def begin(self) -> None:
        """Mark the start of a run."""
        self._running_since = time.perf_counter()

    def end(self) -> None:
        """Mark the end of a run."""
        if self._running_since is not None:
            self._elapsed += time.perf_counter() - self._running_since
            self._running_since = None

    def add_batch(self, samples: int, skipped: int, nbytes: int, stages: dict[str, float]) -> None:
        """Count one loaded batch (``samples == 0``: every sample was skipped, none delivered)."""
        if samples:
            self.batches += 1
            self.samples += samples
            self.bytes += nbytes
        else:
            self.empty_batches += 1
        self.skipped += skipped
        for stage, seconds in stages.items():
            self.stages[stage] = self.stages.get(stage, 0.0) + seconds

    def add_wait(self, seconds: float) -> None:
        """Count time the consumer spent waiting for a batch."""
        self.wait_s += seconds

    def elapsed(self) -> float:
        """Return the wall time spent in runs so far, including a run in progress."""
        running = self._running_since
        extra = time.perf_counter() - running if running is not None else 0.0
        return self._elapsed + extra

    def snapshot(self) -> LoaderStats:
        """Return every counter and the rates derived from them.

        Returns:
            A :class:`LoaderStats` (a dict that prints as one line):
            ``samples``, ``batches``, ``bytes``, ``skipped``, ``empty_batches``, ``elapsed_s``,
            ``samples_per_s``, ``bytes_per_s``, ``wait_s``, ``stall_pct`` (100 * wait / elapsed)
            and ``<stage>_s`` for each stage (seconds summed over workers and threads).
        """
        elapsed = self.elapsed()
        rate = 1.0 / elapsed if elapsed > 0 else 0.0
        out: dict[str, float] = {
            "samples": self.samples,
            "batches": self.batches,
            "bytes": self.bytes,
            "skipped": self.skipped,
            "empty_batches": self.empty_batches,
            "elapsed_s": elapsed,
            "samples_per_s": self.samples * rate,
            "bytes_per_s": self.bytes * rate,
            "wait_s": self.wait_s,
            "stall_pct": 100.0 * self.wait_s * rate,
        }
        for stage, seconds in self.stages.items():
            out[f"{stage}_s"] = seconds
        return LoaderStats(out)
