"""datadings' ``commands``: ``bench``, ``cat``, ``convert_index``, ``merge``, ``sample``,
``shuffle``, ``split`` and ``write``, each run by shardstream's command line (:mod:`shardstream.cli`).

Each module has ``main(argv=None)`` (datadings' options; ``argv`` defaults to
``sys.argv[1:]``; returns the exit code), ``entry()`` (``main`` as a script: exits with that
code) and datadings' functions, which run the same engine and raise its errors. No
``datadings-*`` console scripts are installed; use ``shardstream <command>`` or
``python -m shardstream.compat.datadings.commands.<command>``. The engine's deliberate
differences from datadings are listed in each ``shardstream <command> --help`` module docstring.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ....cli import build_parser

__all__ = ["argv_or_sys", "entry_point", "run_engine"]


def argv_or_sys(argv: Sequence[str] | None) -> list[str]:
    """``argv`` as a list of ``str``, or the process's arguments (``sys.argv[1:]``) when None."""
    return [str(a) for a in (sys.argv[1:] if argv is None else argv)]


def run_engine(argv: Sequence[object]) -> int:
    """Run ``shardstream <argv>`` and return its exit code, letting its errors propagate.

    Raises:
        SystemExit: the arguments do not parse (argparse's usage error, code 2).
        ShardstreamError: the command failed (the error names the file and the fault).
    """

    args = build_parser().parse_args([str(a) for a in argv])
    return args.run(args)


def entry_point(main: object) -> None:
    """Run ``main()`` as a script: exit with its code (``KeyboardInterrupt``: 130)."""
    try:
        code = main()  # type: ignore[operator]
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
