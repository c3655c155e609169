"""Strict checks for the state dicts that order stages save and load.

A state dict is small, JSON-serialisable and self-describing: ``"kind"`` names the stage, the
order-defining arguments (length, seed, sizes) are stored next to the counters (epoch, position),
and loading checks every one of them before changing anything, so a run can only be resumed by a
stage that produces the same order.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import StateMismatchError

__all__ = ["check_state", "state_counter"]


def check_state(
    state: object, *, kind: str, config: Mapping[str, Any], fields: Iterable[str]
) -> Mapping[str, Any]:
    """Check that ``state`` is a state dict of a ``kind`` stage built like this one.

    Args:
        state: the object given to ``load_state_dict``.
        kind: the stage name the state must carry under ``"kind"``.
        config: the order-defining arguments of this stage; each must equal the state's value.
        fields: the other keys the state must have (counters, nested states).

    Returns:
        ``state`` itself, checked.

    Raises:
        StateMismatchError: ``state`` is not a mapping, has missing or unknown keys, names
            another kind of stage, or was taken with different arguments.
    """
    if not isinstance(state, Mapping):
        raise StateMismatchError(
            f"{kind} state must be a mapping (from state_dict()), got {type(state).__name__}"
        )
    expected = {"kind", *config, *fields}
    missing = sorted(expected - state.keys())
    unknown = sorted(map(str, state.keys() - expected))
    if state.get("kind", kind) != kind:
        raise StateMismatchError(
            f"state of a {state['kind']!r} cannot be loaded into a {kind}; load it into the "
            "stage that saved it"
        )
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"lacks {', '.join(missing)}")
        if unknown:
            problems.append(f"has unknown keys {', '.join(unknown)}")
        raise StateMismatchError(
            f"{kind} state {' and '.join(problems)}; pass a dict from {kind}.state_dict()"
        )
    for name, value in config.items():
        if state[name] != value:
            raise StateMismatchError(
                f"{kind} state was saved with {name}={state[name]!r} but this {kind} has "
                f"{name}={value!r}; build the {kind} with the same arguments (and dataset) to "
                "resume that run"
            )
    return state


def state_counter(
    state: Mapping[str, Any], name: str, *, kind: str, low: int, high: int | None
) -> int:
    """Read the integer counter ``state[name]`` and check ``low <= value <= high``.

    Args:
        state: a state dict already checked by :func:`check_state`.
        name: the counter's key (``"epoch"``, ``"position"``, ...).
        kind: the stage name, for the message.
        low: smallest allowed value.
        high: largest allowed value; ``None`` for no upper bound.

    Returns:
        The counter as a Python ``int``.

    Raises:
        StateMismatchError: the value is not an integer or lies outside ``[low, high]``.
    """
    value = state[name]
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise StateMismatchError(
            f"{kind} state has {name}={value!r}; it must be an integer"
        ) from None
    if value < low or (high is not None and value > high):
        bounds = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise StateMismatchError(
            f"{kind} state has {name}={value}, outside {bounds} for this {kind}"
        )
    return value
