"""Asking the user whether an existing output may be overwritten."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import DatasetExistsError

__all__ = ["query_user", "confirm_overwrite"]


def query_user(
    question: str, default: str | None = "yes", answers: Sequence[str] = ("yes", "no", "abort")
) -> str:
    """Ask ``question`` on the terminal until one of ``answers`` (or a prefix of one) is given.

    The prompt shows the answers' first letters, the default in upper case, e.g. ``[Y/n/a/?]``;
    an empty answer means ``default``; anything else prints the choices and asks again.

    Raises:
        ValueError: ``default`` is not one of ``answers``.
        EOFError: standard input closed before a valid answer.
    """
    if default is not None and default not in answers:
        raise ValueError(f"invalid default answer: {default!r}")
    valid = {"": default} if default is not None else {}
    for answer in reversed(answers):  # earlier answers win shared prefixes
        valid.update({answer[:i]: answer for i in range(1, len(answer) + 1)})
    letters = "/".join(a[0].upper() if a == default else a[0] for a in answers)
    prompt = f"{question} [{letters}/?]"
    while True:
        print(prompt, end=" ", flush=True)
        chosen = valid.get(input().strip().lower())
        if chosen:
            return chosen
        print("You can choose", ", ".join(answers), flush=True)


def confirm_overwrite(path: Path) -> None:
    """Decide what happens when ``path`` exists and overwriting was not allowed up front.

    On an interactive terminal, ask yes/no/abort: *yes* returns (the caller overwrites), *no*
    raises :class:`~shardstream.errors.DatasetExistsError` (a ``FileExistsError``), *abort* raises
    ``KeyboardInterrupt``. Without a terminal on stdin, raise ``DatasetExistsError`` at once.
    """
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        raise DatasetExistsError(
            path, "exists; pass overwrite=True (or -y on the command line) to replace it"
        )
    answer = query_user(f"{path.name} exists, overwrite?")
    if answer == "no":
        raise DatasetExistsError(path, "exists and the user declined to overwrite it")
    if answer == "abort":
        raise KeyboardInterrupt(str(path))
