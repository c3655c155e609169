"""Shared helpers for side-by-side benchmarks: timing with medians, and a table of ratios.

Every benchmark script runs the peer and shardstream in one process on the same data, repeats
each measurement, and reports medians. Targets are printed next to the measured ratio; they are
never asserted in tests (the machines are shared and noisy).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Measurement", "measure", "Row", "Table"]


@dataclass
class Measurement:
    """Wall-clock seconds of each repeat of one workload of ``items`` items / ``nbytes`` bytes."""

    seconds: list[float]
    items: int
    nbytes: int = 0

    @property
    def median(self) -> float:
        """Median seconds per repeat."""
        return statistics.median(self.seconds)

    @property
    def items_per_s(self) -> float:
        """Items per second at the median time."""
        return self.items / self.median

    @property
    def mb_per_s(self) -> float:
        """MB (10**6 bytes) per second at the median time."""
        return self.nbytes / self.median / 1e6


def measure(
    run: Callable[[], object], *, items: int, nbytes: int = 0, repeats: int = 5, warmup: int = 1
) -> Measurement:
    """Time ``run()`` ``repeats`` times after ``warmup`` untimed runs (GC disabled while timing)."""
    for _ in range(warmup):
        run()
    seconds = []
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            run()
            seconds.append(time.perf_counter() - start)
        finally:
            gc.enable()
    return Measurement(seconds, items, nbytes)


@dataclass
class Row:
    """One line of the result table: ``ours`` against ``peer``, a target ratio or an absolute limit.

    Attributes:
        target: the ratio (how many times better than the peer) shardstream must reach.
        limit: for ``lower_is_better`` rows, the largest acceptable value of ``ours`` itself.
    """

    name: str
    peer: float | None
    ours: float
    unit: str
    target: float | None = None
    limit: float | None = None
    note: str = ""
    lower_is_better: bool = False

    @property
    def ratio(self) -> float | None:
        """How many times better shardstream is than the peer (inverted for times)."""
        if not self.peer or not self.ours:
            return None
        return self.peer / self.ours if self.lower_is_better else self.ours / self.peer

    @property
    def verdict(self) -> str:
        """``ok`` / ``MISS`` against the target and limit (empty when there is neither)."""
        checks = []
        if self.target is not None and self.ratio is not None:
            checks.append(self.ratio >= self.target)
        if self.limit is not None:
            checks.append(self.ours <= self.limit)
        if not checks:
            return ""
        return "ok" if all(checks) else "MISS"

    @property
    def goal(self) -> str:
        """The target as printed: ``>=1.5x`` or ``<=50ms``."""
        if self.limit is not None:
            return f"<={self.limit:g}{self.unit}"
        if self.target is not None:
            return f">={self.target:g}x"
        return ""


@dataclass
class Table:
    """Rows printed as an aligned text table."""

    title: str
    peer_name: str
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        """Append ``row`` and print it at once (so partial results survive a slow run)."""
        self.rows.append(row)
        print(self._format(row), flush=True)
        return row

    def header(self) -> None:
        """Print the title and column names."""
        print(f"\n== {self.title} ==", flush=True)
        print(
            f"{'measurement':44} {self.peer_name:>14} {'shardstream':>14} {'unit':>10} "
            f"{'ratio':>7} {'target':>8} verdict",
            flush=True,
        )

    def _format(self, row: Row) -> str:
        peer = f"{row.peer:14,.1f}" if row.peer is not None else f"{'-':>14}"
        ratio = f"{row.ratio:6.2f}x" if row.ratio is not None else f"{'-':>7}"
        target = row.goal.rjust(8)
        line = (
            f"{row.name:44} {peer} {row.ours:14,.1f} {row.unit:>10} {ratio} {target} {row.verdict}"
        )
        return f"{line}  {row.note}".rstrip()
