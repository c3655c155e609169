"""What every augment shares: the datadings interface and strict state loading."""

from __future__ import annotations

import json

import pytest

from shardstream.errors import ShardstreamError, StateMismatchError
from shardstream.format.codec import unpackb
from shardstream.order.augment_base import Augment
from shardstream.order.quasi import QuasiShuffler
from shardstream.order.range import Range
from shardstream.order.repeat import Cycler, Repeater
from shardstream.order.shuffle import Shuffler
from shardstream.order.state import check_state, state_counter
from tests.contracts.stateful import take
from tests.order.readers import LoggingReader, numbered_samples

FACTORIES = {
    "Shuffler": lambda reader: Shuffler(reader, seed=3),
    "QuasiShuffler": lambda reader: QuasiShuffler(reader, 4, 2),
    "Range": lambda reader: Range(reader, 1, 5),
    "Repeater": lambda reader: Repeater(reader, 2),
    "Cycler": Cycler,
}
ALL = pytest.mark.parametrize("kind", sorted(FACTORIES))


def build(kind: str, n: int = 6) -> tuple[Augment, LoggingReader]:
    reader = LoggingReader(numbered_samples(n))
    return FACTORIES[kind](reader), reader


@ALL
def test_context_manager_len_and_iteration_forms(kind):
    augment, reader = build(kind)
    with augment as entered:
        assert entered is augment
        assert len(augment) == 6
        expected = [s["i"] for s in take(FACTORIES[kind](LoggingReader(numbered_samples(6))), 4)]
        assert [s["i"] for s in take(augment, 4)] == expected
    assert reader.closed == 1
    fresh, _ = build(kind)
    pairs = take(fresh, 4, lambda a: a.iter(yield_key=True))
    assert pairs == [(f"s{i}", {"key": f"s{i}", "i": i}) for i in expected]
    fresh, _ = build(kind)
    raw = take(fresh, 4, lambda a: a.rawiter())
    assert [unpackb(data)["i"] for data in raw] == expected


@ALL
def test_state_is_json_and_strictly_checked(kind):
    augment, _ = build(kind)
    take(augment, 3)
    state = augment.state_dict()
    assert json.loads(json.dumps(state)) == state
    assert state["kind"] == kind
    assert state["length"] == 6
    other, _ = build(kind, n=7)
    with pytest.raises(StateMismatchError, match=f"length=6 but this {kind} has length=7"):
        other.load_state_dict(state)
    before = other.state_dict()
    with pytest.raises(StateMismatchError, match="lacks kind"):
        other.load_state_dict({k: v for k, v in state.items() if k != "kind"})
    with pytest.raises(StateMismatchError, match="has unknown keys extra"):
        other.load_state_dict({**before, "extra": 1})
    with pytest.raises(StateMismatchError, match="must be a mapping"):
        other.load_state_dict([("kind", kind)])
    assert other.state_dict() == before


def test_state_mismatch_error_is_a_value_error():
    assert issubclass(StateMismatchError, ValueError)
    assert issubclass(StateMismatchError, ShardstreamError)


def test_check_state_messages():
    state = {"kind": "Shuffler", "length": 5, "seed": 5, "epoch": 0, "position": 1}
    config = {"length": 5, "seed": 5}
    assert check_state(state, kind="Shuffler", config=config, fields=("epoch", "position")) is state
    with pytest.raises(StateMismatchError, match="'Shuffler' cannot be loaded into a Cycler"):
        check_state(state, kind="Cycler", config={}, fields=())
    without_position = {k: v for k, v in state.items() if k != "position"}
    with pytest.raises(StateMismatchError, match=r"Shuffler state lacks position; pass a dict"):
        check_state(without_position, kind="Shuffler", config=config, fields=("epoch", "position"))
    with pytest.raises(StateMismatchError, match=r"seed=5 but this Shuffler has seed=6"):
        check_state(
            state, kind="Shuffler", config={"length": 5, "seed": 6}, fields=("epoch", "position")
        )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "must be an integer"),
        ("3", "must be an integer"),
        (1.0, "must be an integer"),
        (-1, r"outside \[0, 4\]"),
        (5, r"outside \[0, 4\]"),
    ],
)
def test_state_counter_rejects(value, message):
    with pytest.raises(StateMismatchError, match=message):
        state_counter({"position": value}, "position", kind="Shuffler", low=0, high=4)


def test_state_counter_accepts():
    assert state_counter({"epoch": 10**12}, "epoch", kind="Cycler", low=0, high=None) == 10**12
