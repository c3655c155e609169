"""Console output of the data-set writers: a line printed over itself and datadings' progress bar."""

from __future__ import annotations

import sys
from typing import Any

import tqdm

__all__ = ["BAR_FORMAT", "ProgressPrinter", "make_printer", "print_over"]

#: datadings' progress-bar layout
BAR_FORMAT = "{desc} {percentage:3.0f}% {elapsed}<{remaining}, {rate_fmt}{postfix}"


def print_over(*args: Any, **kwargs: Any) -> None:
    """``print`` that replaces the current line (carriage return, then clear to end of line).

    Accepts ``print``'s keyword arguments; ``flush=True`` flushes ``file`` afterwards.
    """
    end = kwargs.pop("end", "\n")
    kwargs["end"] = ""
    flush = kwargs.pop("flush", False)
    stream = kwargs.get("file", sys.stdout)
    print("\r", *args, **kwargs)
    print("\033[K", end=end, file=stream)
    if flush:
        stream.flush()


class ProgressPrinter(tqdm.tqdm):
    """A ``tqdm`` bar without monitor thread; calling it advances it (``printer(n=1)``)."""

    monitor_interval = 0
    __call__ = tqdm.tqdm.update


def make_printer(
    bar_format: str = BAR_FORMAT,
    miniters: int = 0,
    mininterval: float = 0.5,
    smoothing: float = 0.1,
    **kwargs: Any,
) -> ProgressPrinter:
    """A :class:`ProgressPrinter` with datadings' defaults; ``kwargs`` go to ``tqdm``."""
    return ProgressPrinter(
        bar_format=bar_format,
        miniters=miniters,
        mininterval=mininterval,
        smoothing=smoothing,
        **kwargs,
    )
