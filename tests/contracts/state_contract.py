"""The state contract's test harness: one set of checks for every stateful thing.

Like torchdata's save/load-state test helper, it takes a factory for a fresh stateful iterable
(a :class:`StateCase`) and checks, on top of :mod:`.stateful`'s :func:`check_resume_at`:

- the object is a :class:`~shardstream.order.state.Stateful` and its state survives JSON;
- resume at the start, mid-epoch, just before and at the end of the first epoch, just after it,
  and mid-way through the next epoch (each: the restored object yields exactly the rest of the
  uninterrupted run, also when loaded into an object that was already iterated);
- reloading the initial state into a used object replays the run from its start;
- for objects whose iterator ends with the epoch, the state taken after the iterator ran out
  resumes with the next epoch;
- a state of another config or another kind, a non-mapping, a state lacking a counter or
  holding an unknown key or an out-of-range counter is refused with ``StateMismatchError``, and
  the refused load leaves the object as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from shardstream.errors import StateMismatchError
from shardstream.order.state import Stateful

from .stateful import Run, check_resume_at, take

__all__ = [
    "StateCase",
    "check_initial_state_reloads",
    "check_refusals",
    "check_resume_points",
    "check_state_contract",
    "check_stateful",
    "next_epoch_when_done",
    "resume_points",
]


def _same(sample: Any) -> Any:
    return sample


@dataclass(frozen=True)
class StateCase:
    """One stateful thing for the contract.

    Attributes:
        name: test id.
        make: builds a fresh object; every call must build an identical one.
        epoch_length: items one epoch (or one pass of an endless stream) yields.
        iterate: turns the object into an iterator over the rest of its current pass.
        normalize: maps yielded items to comparable values.
        ends_with_epoch: one ``iterate`` call yields exactly one epoch (``False`` for endless
            streams and for objects whose first pass is shorter, e.g. after ``start_iter``).
        make_other: builds an object of the same kind with another order-defining argument.
        epochs: epochs the uninterrupted reference run covers (plus two items).
    """

    name: str
    make: Callable[[], Any]
    epoch_length: int
    iterate: Callable[[Any], Iterator[Any]] = iter
    normalize: Callable[[Any], Any] = _same
    ends_with_epoch: bool = True
    make_other: Callable[[], Any] | None = None
    epochs: int = 2

    @property
    def total(self) -> int:
        """Items of the uninterrupted run that the checks compare."""
        return self.epochs * self.epoch_length + 2

    def reference(self) -> list[Any]:
        """The uninterrupted run of a fresh object (items as yielded)."""
        return take(self.make(), self.total, self.iterate)

    def normalized(self, items: list[Any]) -> list[Any]:
        """``items`` mapped to comparable values."""
        return [self.normalize(item) for item in items]


def next_epoch_when_done(stage: Any) -> Iterator[Any]:
    """One pass as a training loop drives a torch-style sampler: ``set_epoch(epoch + 1)`` once
    the epoch is used up (such samplers repeat an epoch until told otherwise)."""
    state = stage.state_dict()
    if "position" in state and state["position"] >= len(stage):
        stage.set_epoch(state["epoch"] + 1)
    return iter(stage)


def resume_points(epoch_length: int) -> dict[str, int]:
    """The named resume points: items consumed when the state is taken."""
    length = epoch_length
    return {
        "start": 0,
        "mid-epoch": max(1, length // 2),
        "before-epoch-end": max(0, length - 1),
        "epoch-end": length,
        "next-epoch-start": length + 1,
        "mid-next-epoch": length + max(1, length // 2),
    }


def _options(case: StateCase) -> dict[str, Any]:
    return {"iterate": case.iterate, "normalize": case.normalize}


def check_stateful(case: StateCase) -> dict[str, Any]:
    """The object is a ``Stateful`` whose fresh state is a JSON-serialisable dict with a kind.

    Returns:
        The fresh object's state.
    """
    stage = case.make()
    assert isinstance(stage, Stateful), f"{case.name} is not Stateful"
    state = stage.state_dict()
    assert isinstance(state, dict) and isinstance(state.get("kind"), str), state
    assert json.loads(json.dumps(state)) == state, "state is not JSON-serialisable as is"
    assert case.make().state_dict() == state, "two fresh objects hold different states"
    return state


def check_resume_points(case: StateCase, reference: list[Any] | None = None) -> None:
    """Resume at every point of :func:`resume_points` (see :func:`check_resume_at`)."""
    if reference is None:
        reference = case.reference()
    for name, k in resume_points(case.epoch_length).items():
        try:
            check_resume_at(case.make, k, reference, **_options(case))
        except AssertionError as error:
            raise AssertionError(f"{case.name}: resume at {name} (k={k}): {error}") from error


def check_initial_state_reloads(case: StateCase, reference: list[Any] | None = None) -> None:
    """The initial state, loaded into an object that was iterated past its first epoch,
    replays the run from its start; and, where one iterator yields one epoch, the state after
    an iterator ran out resumes with the next epoch."""
    if reference is None:
        reference = case.reference()
    initial = case.make().state_dict()
    used = Run(case.make(), case.iterate)
    used.take(case.epoch_length + 1)
    used.stage.load_state_dict(json.loads(json.dumps(initial)))
    assert used.stage.state_dict() == initial, "loading the initial state did not restore it"
    replay = Run(used.stage, case.iterate)
    expected = case.normalized(reference)
    got = case.normalized(replay.take(case.total))
    assert got == expected, f"{case.name}: the initial state does not replay the run"

    if case.ends_with_epoch:
        done = Run(case.make(), case.iterate)
        first = case.normalized(done.finish_pass())
        assert first == expected[: case.epoch_length], "one iterator is not one epoch"
        after = Run(case.make(), case.iterate)
        after.stage.load_state_dict(json.loads(json.dumps(done.stage.state_dict())))
        rest = case.normalized(after.take(case.total - case.epoch_length))
        assert rest == expected[case.epoch_length :], f"{case.name}: after an exhausted epoch"


def _mutations(state: dict[str, Any]) -> Iterable[tuple[str, Any]]:
    """Broken variants of a valid state: (what is wrong, the state)."""
    yield "not a mapping", list(state.items())
    yield "another kind", {**state, "kind": "NoSuchStage"}
    yield "unknown key", {**state, "no_such_key": 1}
    counters = [k for k, v in state.items() if type(v) is int and k != "kind"]
    for name in counters:
        yield f"lacks {name}", {k: v for k, v in state.items() if k != name}
        yield f"{name} negative", {**state, name: -1}
        yield f"{name} not an integer", {**state, name: "0"}


def check_refusals(case: StateCase, foreign_states: Iterable[dict[str, Any]] = ()) -> None:
    """Broken states, a state of another config and states of other kinds are refused with
    ``StateMismatchError``; after each refusal the object's state and its next items are those
    it had before."""
    expected = case.normalized(case.reference())
    k = max(1, case.epoch_length // 2)
    live = Run(case.make(), case.iterate)
    live.take(k)
    before = live.stage.state_dict()
    valid = json.loads(json.dumps(before))
    bad: list[tuple[str, Any]] = list(_mutations(valid))
    if case.make_other is not None:
        other = case.make_other().state_dict()
        assert other["kind"] == valid["kind"] and other != case.make().state_dict()
        bad.append(("another config", other))
    for state in foreign_states:
        if state.get("kind") != valid["kind"]:
            bad.append((f"a {state.get('kind')} state", state))
    for what, state in bad:
        with pytest.raises(StateMismatchError):
            live.stage.load_state_dict(state)
            raise AssertionError(f"{case.name}: a state with {what} was accepted")
        assert live.stage.state_dict() == before, f"{case.name}: refusing {what} changed it"
    # the refusals did not disturb the live iterator either
    got = case.normalized(live.take(case.total - k))
    assert got == expected[k:], f"{case.name}: refused loads disturbed the run"


def check_state_contract(case: StateCase, foreign_states: Iterable[dict[str, Any]] = ()) -> None:
    """Every check of this module for one case."""
    check_stateful(case)
    reference = case.reference()
    assert len(reference) == case.total, f"{case.name}: the run is shorter than {case.total}"
    check_resume_points(case, reference)
    check_initial_state_reloads(case, reference)
    check_refusals(case, foreign_states)
