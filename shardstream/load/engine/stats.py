"""Throughput bookkeeping of a worker pool: what was delivered, how fast, and where time went."""

from __future__ import annotations

import time

from .tasks import STAGES

__all__ = ["PoolStats"]


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

    def snapshot(self) -> dict[str, float]:
        """Return every counter and the rates derived from them.

        Returns:
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
        return out
