"""``shardstream info --system``: which fast paths are active on this machine.

Lists the C extensions (built or not, and the resize kernel chosen for this CPU), simplejpeg
(libjpeg-turbo), OpenCV, torch, CUDA and the CPU count: what to check when the loader is slower
than expected. Nothing is read from a dataset.
"""

from __future__ import annotations

import argparse

from ..fastpaths import fast_paths

__all__ = ["add_system_argument", "run_system"]


def add_system_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--system`` to the ``info`` parser."""
    parser.add_argument(
        "--system",
        action="store_true",
        help="list the fast paths active here (C extensions, resize kernel, simplejpeg, "
        "OpenCV, torch, CUDA, CPUs) instead of describing a dataset",
    )


def run_system(args: argparse.Namespace) -> int:
    """Print one ``name: state`` line per fast path; returns 0."""
    lines = fast_paths()
    width = max(len(name) for name, _ in lines)
    for name, state in lines:
        print(f"{name + ':':<{width + 1}} {state}")
    return 0
