"""What ``shardstream bench`` reports: a table of medians and spreads, a JSON file, a plot.

Each row is one configuration (source, cache, workers) summarised over its ``--repeat`` runs:
the median samples/s and MB/s (MB = 10**6 bytes of input data) and the spread, the lowest and
highest samples/s of the runs; for Loader runs also the median milliseconds per sample of the
Loader's read stage (fetching and unpacking a sample, summed over threads), the part of the
work that the storage format decides.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError
from ..format.atomic import TEMP_SUFFIX, open_temp
from .bench_runs import RunResult

__all__ = [
    "JSON_VERSION",
    "Row",
    "format_table",
    "plot_rows",
    "pyplot",
    "summarise",
    "write_json",
]

#: ``"version"`` of the JSON layout written by ``--json``.
JSON_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class Row:
    """One configuration and its runs."""

    source: str
    path: str
    cache: str
    workers: int
    runs: tuple[RunResult, ...]

    def rates(self) -> list[float]:
        """Samples/s of each run."""
        return [r.samples / r.seconds for r in self.runs]

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values (medians, spread and every run)."""
        rates = self.rates()
        mb = [r.nbytes / r.seconds / 1e6 for r in self.runs]
        return {
            "source": self.source,
            "path": self.path,
            "cache": self.cache,
            "workers": self.workers,
            "samples": self.runs[0].samples,
            "samples_per_s": statistics.median(rates),
            "samples_per_s_min": min(rates),
            "samples_per_s_max": max(rates),
            "mb_per_s": statistics.median(mb),
            "read_ms_per_sample": self.read_ms(),
            "runs": [
                {
                    "seconds": r.seconds,
                    "samples": r.samples,
                    "bytes": r.nbytes,
                    "samples_per_s": r.samples / r.seconds,
                    "mb_per_s": r.nbytes / r.seconds / 1e6,
                    "read_seconds": r.read_seconds,
                    "stall_pct": r.stall_pct,
                }
                for r in self.runs
            ],
        }

    def read_ms(self) -> float | None:
        """Median milliseconds per sample of a Loader's read stage (None for plain reads)."""
        times = [r.read_seconds * 1e3 / r.samples for r in self.runs if r.read_seconds is not None]
        return statistics.median(times) if times and all(r.samples for r in self.runs) else None


def summarise(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Every row as :meth:`Row.as_dict`."""
    return [row.as_dict() for row in rows]


def format_table(rows: Sequence[Row]) -> list[str]:
    """The table lines: a header and one line per configuration."""
    loader = any(row.read_ms() is not None for row in rows)
    header: tuple[str, ...] = (
        "source",
        "cache",
        "workers",
        "samples/s",
        "spread (min-max)",
        "MB/s",
        "runs",
    )
    if loader:
        header += ("read ms/sample",)
    body: list[tuple[str, ...]] = []
    for row in rows:
        d = row.as_dict()
        spread = f"{d['samples_per_s_min']:.1f}-{d['samples_per_s_max']:.1f}"
        body.append(
            (
                row.source,
                row.cache,
                str(row.workers),
                f"{d['samples_per_s']:.1f}",
                spread,
                f"{d['mb_per_s']:.2f}",
                str(len(row.runs)),
            )
        )
        if loader:
            read_ms = row.read_ms()
            body[-1] += ("-" if read_ms is None else f"{read_ms:.3f}",)
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    return [line(header), *(line(cells) for cells in body)]


def write_json(path: str | os.PathLike, document: dict[str, Any]) -> None:
    """Write ``document`` as indented JSON, atomically (a temporary file renamed into place)."""
    _atomic_write(Path(path), json.dumps(document, indent=2).encode() + b"\n")


def plot_rows(path: str | os.PathLike, rows: Sequence[Row], title: str) -> None:
    """Draw median samples/s (with min-max error bars) against workers, one line per source
    and cache (colour: source; solid: cold, dashed: warm), and for Loader runs a second panel
    of the read stage's ms per sample, into an image file (format from the suffix), written
    atomically.

    Raises:
        MissingDependencyError: matplotlib is not installed (the ``plot`` extra).
    """
    plt = pyplot()
    path = Path(path)
    reads = any(row.read_ms() is not None for row in rows)
    figure, panels = plt.subplots(1, 2 if reads else 1, figsize=(11 if reads else 7, 4.5), dpi=100)
    panels = list(panels) if reads else [panels]
    colours: dict[str, str] = {}
    try:
        lines: dict[tuple[str, str], list[Row]] = {}
        for row in rows:
            lines.setdefault((row.source, row.cache), []).append(row)
        for (source, cache), group in lines.items():
            group = sorted(group, key=lambda r: r.workers)
            colour = colours.setdefault(source, f"C{len(colours)}")
            style = {
                "marker": "o" if cache == "cold" else "s",
                "linestyle": "-" if cache == "cold" else "--",
                "color": colour,
                "label": f"{source}, {cache} cache",
            }
            x = [r.workers for r in group]
            medians = [statistics.median(r.rates()) for r in group]
            low = [m - min(r.rates()) for m, r in zip(medians, group)]
            high = [max(r.rates()) - m for m, r in zip(medians, group)]
            panels[0].errorbar(x, medians, yerr=[low, high], capsize=3, **style)
            if reads:
                panels[1].plot(x, [r.read_ms() or 0.0 for r in group], **style)
        panels[0].set_ylabel("samples/s (median, min-max)")
        if reads:
            panels[1].set_ylabel("Loader read stage, ms per sample (median)")
        for axes in panels:
            axes.set_xlabel("workers")
            axes.set_xticks(sorted({r.workers for r in rows}))
            axes.set_ylim(bottom=0)
            axes.grid(alpha=0.3)
            axes.legend(fontsize=8)
        figure.suptitle(title, fontsize=10)
        figure.tight_layout()
        fd, temp = open_temp(path, TEMP_SUFFIX + path.suffix)  # savefig picks the format by suffix
        os.close(fd)
        try:
            figure.savefig(temp)
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise
    finally:
        plt.close(figure)


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend.

    Raises:
        MissingDependencyError: matplotlib is not installed (the ``plot`` extra).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise MissingDependencyError(
            f"bench --plot needs matplotlib, which is not installed ({e}): "
            "pip install 'shardstream[plot]'"
        ) from e
    return plt


def _atomic_write(path: Path, data: bytes) -> None:
    fd, temp = open_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise
