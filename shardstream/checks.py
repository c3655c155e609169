"""The one module of argument checks: integers, seeds, sizes, timeouts and the error-policy word.

Every public function, sampler, augment, loader, preset and command checks its arguments with
these, so the same kind of argument is accepted and refused the same way everywhere: an integer
is a Python ``int`` or a numpy integer (anything with ``__index__``), never a ``bool``; a seed is
an integer; a size is a positive number of bytes. Each check returns the value in its plain
Python type and raises :class:`~shardstream.errors.ConfigError` naming the argument otherwise.

The messages are the ones the call sites wrote before they shared these checks (tests assert
many of them), so a check takes the words it differs in as arguments (``owner``, ``message``).

Command-line parsing lives here too: :func:`parse_int`, :func:`parse_positive_float` and
:func:`parse_size` read text, and :func:`argument_type` turns a check into an argparse ``type=``
that reports a :class:`ConfigError` as an ``argparse.ArgumentTypeError``.

This module sits at the bottom layer: it imports nothing of shardstream but its errors.
"""

from __future__ import annotations

import argparse
import functools
import math
import operator
import re
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import numpy as np

from .errors import ConfigError

__all__ = [
    "ON_ERROR",
    "SEED_WORD_LIMIT",
    "TORCH_SEED_MAX",
    "TORCH_SEED_MIN",
    "OnError",
    "argument_type",
    "check_bool",
    "check_int",
    "check_on_error",
    "check_seed",
    "check_seed_word",
    "check_timeout",
    "check_torch_seed",
    "non_negative_int",
    "parse_int",
    "parse_positive_float",
    "parse_size",
    "positive_int",
    "resolve_on_error",
    "size_argument",
]

T = TypeVar("T")

OnError = Literal["raise", "skip"]
"""The error-policy word: stop at the first bad sample or source, or leave it out."""

ON_ERROR: tuple[OnError, ...] = ("raise", "skip")
"""The allowed values of an ``on_error`` argument, the first the default."""

SEED_WORD_LIMIT = 2**32
"""Seeds and epochs of the seed derivation lie in ``[0, SEED_WORD_LIMIT)`` (one 32-bit word)."""

TORCH_SEED_MIN = -(2**63)
"""The smallest seed ``torch.Generator.manual_seed`` accepts."""

TORCH_SEED_MAX = 2**64 - 1
"""The largest seed ``torch.Generator.manual_seed`` accepts."""

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)


def _as_int(value: object) -> int | None:
    """``value`` as an int when it is an integer (bools and numpy bools are not); else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None


def check_int(
    value: object,
    name: str,
    owner: str | None = None,
    *,
    low: int | None = None,
    high: int | None = None,
    message: str | None = None,
) -> int:
    """Return ``value`` as an int after checking it is an integer in ``[low, high]``.

    Args:
        value: the argument.
        name: its name, for the message.
        owner: who takes it (``"Loader"``), put before the name as ``"Loader: "``; or None.
        low: the smallest allowed value (None: no bound).
        high: the largest allowed value (None: no bound).
        message: the message for every refusal instead of the default ones, a ``str.format``
            template with the fields ``name``, ``value`` (the argument as given), ``low`` and
            ``high``, e.g. ``"{name} must be an int >= {low}, got {value!r}"``.

    Returns:
        The plain int.

    Raises:
        ConfigError: ``value`` is not an integer (bools are refused) or is outside the bounds.
    """
    result = _as_int(value)
    if result is not None and (low is None or result >= low) and (high is None or result <= high):
        return result
    if message is not None:
        raise ConfigError(message.format(name=name, value=value, low=low, high=high))
    prefix = f"{owner}: " if owner else ""
    if result is None:
        raise ConfigError(f"{prefix}{name} must be an integer, got {value!r}")
    if low is not None and result < low:
        raise ConfigError(f"{prefix}{name} must be >= {low}, got {result}")
    raise ConfigError(f"{prefix}{name} must be <= {high}, got {result}")


def positive_int(value: object, name: str) -> int:
    """Return ``value`` as an int after checking it is an integer >= 1.

    Raises:
        ConfigError: ``"<name> must be a positive integer, got <value>"``.
    """
    return check_int(value, name, low=1, message="{name} must be a positive integer, got {value!r}")


def non_negative_int(value: object, name: str) -> int:
    """Return ``value`` as an int after checking it is an integer >= 0.

    Raises:
        ConfigError: ``"<name> must be a non-negative integer, got <value>"``.
    """
    return check_int(
        value, name, low=0, message="{name} must be a non-negative integer, got {value!r}"
    )


def check_bool(value: object, name: str, owner: str | None = None) -> bool:
    """Return ``value`` as a bool after checking it is one (numpy bools are accepted).

    Raises:
        ConfigError: ``value`` is not a bool (``1`` and ``"yes"`` are refused).
    """
    if not isinstance(value, (bool, np.bool_)):
        prefix = f"{owner}: " if owner else ""
        raise ConfigError(f"{prefix}{name} must be True or False, got {value!r}")
    return bool(value)


def check_seed(value: object, name: str = "seed", owner: str | None = None) -> int:
    """Return a seed as an int after checking it is an integer (of any size and sign).

    The message says ``or None`` because every caller draws a seed itself when given None.

    Raises:
        ConfigError: ``value`` is not an integer (bools are refused).
    """
    prefix = f"{owner}: " if owner else ""
    return check_int(
        value, name, message=prefix + "{name} must be an integer or None, got {value!r}"
    )


def check_seed_word(value: object, name: str) -> int:
    """Return a seed or epoch of the seed derivation after checking it is in ``[0, 2**32)``.

    Raises:
        ConfigError: ``value`` is not an integer, is negative, or is ``2**32`` or more.
    """
    result = check_int(value, name, "seed derivation", low=0)
    if result >= SEED_WORD_LIMIT:
        raise ConfigError(f"{name} must be below 2**32 for seed derivation, got {result}")
    return result


def check_torch_seed(value: object, name: str, owner: str | None = None) -> int:
    """Return ``value`` after checking ``torch.Generator.manual_seed`` accepts it.

    Raises:
        ConfigError: ``value`` is not an integer in ``[-2**63, 2**64 - 1]``.
    """
    seed = check_int(value, name, owner)
    if not TORCH_SEED_MIN <= seed <= TORCH_SEED_MAX:
        prefix = f"{owner}: " if owner else ""
        raise ConfigError(
            f"{prefix}{name}={seed} is outside torch's seed range [-2**63, 2**64 - 1]"
        )
    return seed


def check_timeout(value: object, name: str = "timeout") -> float | None:
    """Return a timeout in seconds as a float, or None (no timeout).

    Raises:
        ConfigError: ``value`` is not None and not a finite number > 0 (bools are refused).
    """
    if value is None:
        return None
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(value)
        or not value > 0
    ):
        raise ConfigError(f"{name}={value!r} must be a positive number of seconds or None")
    return float(value)


def check_on_error(value: object, name: str = "on_error") -> OnError:
    """Return the error-policy word after checking it is ``"raise"`` or ``"skip"``.

    Args:
        value: the argument.
        name: its name, for the message (``"on_error"``, or an alias being read).

    Raises:
        ConfigError: ``value`` is not one of the words (the message names them).
    """
    if isinstance(value, str) and value in ON_ERROR:
        return value
    raise ConfigError(f"{name} must be 'raise' or 'skip', got {value!r}")


def resolve_on_error(
    on_error: object, *, owner: str, alias: str, alias_value: object, flag: bool = False
) -> OnError:
    """The error policy from ``on_error`` or from an older argument that spells it (an alias).

    Args:
        on_error: the ``on_error`` argument; None when not given (then ``"raise"``).
        owner: who takes them, for the messages (``"Loader"``).
        alias: the alias's name (``"ignore_errors"``).
        alias_value: the alias's argument; None when not given.
        flag: the alias is a bool (``True`` means ``"skip"``) rather than the word itself.

    Returns:
        ``"raise"`` or ``"skip"``.

    Raises:
        ConfigError: both are given, or the one given is not a policy (a bool for a ``flag``
            alias, else ``"raise"`` or ``"skip"``).
    """
    if alias_value is None:
        return "raise" if on_error is None else check_on_error(on_error)
    if on_error is not None:
        raise ConfigError(
            f"{owner}: give on_error or its alias {alias}, not both "
            f"(on_error={on_error!r}, {alias}={alias_value!r})"
        )
    if flag:
        return "skip" if check_bool(alias_value, alias, owner) else "raise"
    return check_on_error(alias_value, alias)


def parse_int(
    text: str, *, low: int | None = None, high: int | None = None, wanted: str | None = None
) -> int:
    """Read an integer from command-line text and check it is in ``[low, high]``.

    Args:
        text: the text.
        low: the smallest allowed value (None: no bound).
        high: the largest allowed value (None: no bound).
        wanted: what the value must be (``"an integer >= 1"``); every refusal then says
            ``"'<text>' is not <wanted>"``. Without it: ``"not an int: '<text>'"``,
            ``"must be at least <low>, got <n>"`` (below ``low``), ``"must be in
            <low>..<high>, got <n>"`` or ``"must be at most <high>, got <n>"`` (above ``high``).

    Raises:
        ConfigError: ``text`` is not an integer or is out of bounds.
    """
    try:
        value = int(text)
    except ValueError:
        message = f"{text!r} is not {wanted}" if wanted else f"not an int: {text!r}"
        raise ConfigError(message) from None
    if (low is None or value >= low) and (high is None or value <= high):
        return value
    if wanted:
        raise ConfigError(f"{text!r} is not {wanted}")
    if high is None or (low is not None and value < low):
        raise ConfigError(f"must be at least {low}, got {value}")
    if low is None:
        raise ConfigError(f"must be at most {high}, got {value}")
    raise ConfigError(f"must be in {low}..{high}, got {value}")


def parse_positive_float(text: str, *, wanted: str = "a number > 0") -> float:
    """Read a finite number > 0 from command-line text.

    Raises:
        ConfigError: ``"'<text>' is not <wanted>"``.
    """
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{text!r} is not {wanted}") from None
    if not 0 < value < math.inf:
        raise ConfigError(f"{text!r} is not {wanted}")
    return value


def parse_size(text: str) -> int:
    """Parse a byte size: ``1048576``, ``512K``, ``512M``, ``1.5G``, ``2T`` (powers of 1024;
    ``KiB``/``MiB`` spellings too) or ``500MB`` (a trailing ``B`` without ``i`` means powers of
    1000).

    Raises:
        ConfigError: not a size, or not positive.
    """
    match = _SIZE.match(text)
    if not match:
        raise ConfigError(f"not a size: {text!r} (e.g. 512M, 1G, 1048576)")
    number, unit, tail = match.group(1), match.group(2).lower(), match.group(3).lower()
    decimal = tail == "b" and unit != ""
    factor = 1000 ** ("kmgt".index(unit) + 1) if decimal else _UNITS[unit]
    size = int(float(number) * factor)
    if size < 1:
        raise ConfigError(f"size must be at least 1 byte, got {text!r}")
    return size


def argument_type(parse: Callable[..., T], /, **options: Any) -> Callable[[str], T]:
    """An argparse ``type=`` from a parser of text: its ConfigError becomes the usage error.

    Args:
        parse: reads the text and returns the value or raises ConfigError.
        **options: keyword arguments passed to ``parse`` with the text.

    Returns:
        A callable named like ``parse`` (argparse uses the name in some messages) that raises
        ``argparse.ArgumentTypeError`` with the ConfigError's message.
    """

    @functools.wraps(parse)
    def convert(text: str) -> T:
        try:
            return parse(text, **options)
        except ConfigError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


size_argument = argument_type(parse_size)
"""argparse ``type=`` of a byte size (:func:`parse_size`; a bad size is a usage error)."""
