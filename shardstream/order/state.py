"""The state contract: how every stateful stage saves, validates and loads its position.

A state dict is small, JSON-serialisable and self-describing: ``"kind"`` names the stage, the
order-defining arguments (length, seed, sizes) are stored next to the counters (epoch, position),
and loading checks every one of them before changing anything, so a run can only be resumed by a
stage that produces the same order.

Every stateful thing (the augments, every sampler, datadings' ``IterableDataset``, the ``Loader``)
is a :class:`Stateful`. Those that own their state derive from :class:`StatefulMixin`: they
describe their state once in a :class:`StateSpec` (kind, config, :class:`StateCounter` ranges, other
fields), and the mixin builds ``state_dict()`` and validates ``load_state_dict()`` through it, so
the checking steps are written here only.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..errors import StateMismatchError

__all__ = [
    "StateCounter",
    "StateSpec",
    "Stateful",
    "StatefulMixin",
    "check_state",
    "state_counter",
]


@runtime_checkable
class Stateful(Protocol):
    """Anything whose position can be saved and restored (torchdata's ``Stateful`` shape)."""

    def state_dict(self) -> dict[str, Any]:
        """A small JSON-serialisable dict from which :meth:`load_state_dict` resumes."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from a :meth:`state_dict` result.

        Raises:
            StateMismatchError: the state does not fit this object (which is then unchanged).
        """
        ...


@dataclass(frozen=True)
class StateCounter:
    """An integer counter of a state, checked to lie in ``[low, high]``.

    Attributes:
        name: the counter's key (``"epoch"``, ``"position"``, ...).
        low: smallest allowed value.
        high: largest allowed value; ``None`` for no upper bound.
        nullable: ``None`` is allowed too (and loaded as ``None``).
    """

    name: str
    low: int = 0
    high: int | None = None
    nullable: bool = False


@dataclass(frozen=True)
class StateSpec:
    """What a stage's state holds; builds the state dict and validates a saved one once.

    A state is ``{"kind": kind, **config, **counters and fields}``, in that key order.

    Attributes:
        kind: the stage name stored under ``"kind"``.
        config: the order-defining arguments; a saved state must hold equal values.
        counters: integer counters, range-checked on load.
        fields: other required keys, returned unchecked (the stage checks them itself).
        optional: keys a state may lack (e.g. added by a later version); returned when present.
        label: the name counter messages use (default: ``kind``).
    """

    kind: str
    config: Mapping[str, Any] = field(default_factory=dict)
    counters: tuple[StateCounter, ...] = ()
    fields: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    label: str | None = None

    def extend(
        self,
        *,
        config: Mapping[str, Any] | None = None,
        counters: Iterable[StateCounter] = (),
        fields: Iterable[str] = (),
    ) -> StateSpec:
        """This spec with more config values, counters and fields (for a subclass).

        Args:
            config: config values to add after the existing ones.
            counters: counters to add after the existing ones.
            fields: fields to add after the existing ones.

        Returns:
            A new spec of the same kind.
        """
        return StateSpec(
            kind=self.kind,
            config={**self.config, **(config or {})},
            counters=(*self.counters, *counters),
            fields=(*self.fields, *fields),
            optional=self.optional,
            label=self.label,
        )

    def state(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The state dict of a stage whose counters and fields hold ``values``.

        Args:
            values: the counters and fields (and present optional keys), in state order.

        Returns:
            A new dict ``{"kind": kind, **config, **values}``.
        """
        return {"kind": self.kind, **self.config, **values}

    def load(self, state: object) -> dict[str, Any]:
        """Validate a saved ``state`` against this spec; nothing is changed.

        Args:
            state: the object given to ``load_state_dict``.

        Returns:
            A new dict of the counters (as Python ``int``, or ``None`` where nullable), the
            fields and the present optional keys.

        Raises:
            StateMismatchError: ``state`` is not a mapping, has missing or unknown keys, names
                another kind, was taken with a different config, or holds a counter that is not
                an integer in its range.
        """
        present = tuple(k for k in self.optional if isinstance(state, Mapping) and k in state)
        names = (*(c.name for c in self.counters), *self.fields)
        checked = check_state(state, kind=self.kind, config=self.config, fields=(*names, *present))
        label = self.label or self.kind
        values: dict[str, Any] = {}
        for counter in self.counters:
            if counter.nullable and checked[counter.name] is None:
                values[counter.name] = None
            else:
                values[counter.name] = state_counter(
                    checked, counter.name, kind=label, low=counter.low, high=counter.high
                )
        for name in (*self.fields, *present):
            values[name] = checked[name]
        return values


class StatefulMixin:
    """``state_dict`` / ``load_state_dict`` built from a :class:`StateSpec` (the one contract).

    A subclass implements three hooks: :meth:`_state_spec` (what its state holds, given its
    arguments), :meth:`_state_values` (the current counters and fields) and
    :meth:`_apply_state` (adopt values that :meth:`StateSpec.load` has validated). It may
    validate more in :meth:`_apply_state` before changing anything.
    """

    def state_dict(self) -> dict[str, Any]:
        """A small JSON-serialisable dict from which :meth:`load_state_dict` resumes.

        Returns:
            ``{"kind", <the arguments that define the order>, <counters>}``.
        """
        return self._state_spec().state(self._state_values())

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from ``state``: the next item yielded is the one that followed the save.

        Args:
            state: a dict from :meth:`state_dict` of the same kind of object built with the
                same order-defining arguments.

        Raises:
            StateMismatchError: the state is not a mapping, is of another kind, lacks or adds
                keys, was taken with other arguments, or holds an out-of-range counter. The
                object is unchanged.
        """
        self._apply_state(self._state_spec().load(state))

    def _state_spec(self) -> StateSpec:
        """What this object's state holds (kind, config, counters, fields)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _state_spec()")

    def _state_values(self) -> dict[str, Any]:
        """The current counters and fields, in state order."""
        raise NotImplementedError(f"{type(self).__name__} must implement _state_values()")

    def _apply_state(self, values: dict[str, Any]) -> None:
        """Adopt ``values`` validated by :meth:`StateSpec.load`; raise before changing anything."""
        raise NotImplementedError(f"{type(self).__name__} must implement _apply_state()")


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
