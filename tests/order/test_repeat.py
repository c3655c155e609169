"""Repeater and Cycler: datadings' passes, exact pass counting on resume, and compositions."""

from __future__ import annotations

import itertools

import pytest
from datadings.reader import Cycler as DatadingsCycler
from datadings.reader import QuasiShuffler as DatadingsQuasiShuffler
from datadings.reader import Repeater as DatadingsRepeater
from datadings.reader import Shuffler as DatadingsShuffler
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream.errors import ConfigError, StateMismatchError
from shardstream.order.quasi import QuasiShuffler
from shardstream.order.range import Range
from shardstream.order.repeat import Cycler, Repeater
from shardstream.order.shuffle import Shuffler
from tests.contracts.stateful import check_resume_at, run_save_restore, take
from tests.order.readers import LoggingReader, datadings_reader, ids, make_reader, numbered_samples


def as_samples(indices):
    return [{"key": f"s{i}", "i": i} for i in indices]


def test_repeater_matches_datadings():
    assert ids(Repeater(make_reader(4), 3)) == ids(DatadingsRepeater(datadings_reader(4), 3))
    assert ids(Repeater(make_reader(4), 3)) == [0, 1, 2, 3] * 3


def test_repeater_first_pass_starts_at_the_reader_position():
    ours, theirs = make_reader(5), datadings_reader(5)
    ours.seek(3)
    theirs.seek(3)
    assert ids(Repeater(ours, 2)) == ids(DatadingsRepeater(theirs, 2)) == [3, 4, 0, 1, 2, 3, 4]


def test_cycler_matches_datadings():
    ours = ids(itertools.islice(Cycler(make_reader(3)), 11))
    theirs = ids(itertools.islice(DatadingsCycler(datadings_reader(3)), 11))
    assert ours == theirs == [0, 1, 2] * 3 + [0, 1]


def test_cycler_of_shuffler_matches_datadings():
    ours = ids(itertools.islice(Cycler(Shuffler(make_reader(5))), 15))
    theirs = ids(itertools.islice(DatadingsCycler(DatadingsShuffler(datadings_reader(5))), 15))
    assert ours == theirs == [0, 1, 3, 2, 4, 3, 2, 1, 0, 4, 4, 3, 2, 0, 1]


def test_repeater_remembers_passes_and_restarts_when_done():
    repeater = Repeater(make_reader(3), 2)
    it = iter(repeater)
    assert [next(it)["i"] for _ in range(4)] == [0, 1, 2, 0]
    assert repeater.epoch == 1
    assert ids(repeater) == [1, 2]  # the rest of the run, not two new passes
    assert repeater.epoch == 2
    assert ids(repeater) == [0, 1, 2, 0, 1, 2]  # done: iterating again starts over


def test_break_at_a_pass_boundary_counts_the_pass():
    repeater = Repeater(make_reader(3), 2)
    it = iter(repeater)
    assert [next(it)["i"] for _ in range(3)] == [0, 1, 2]
    assert repeater.epoch == 1
    del it
    assert ids(repeater) == [0, 1, 2]


def test_seek():
    repeater = Repeater(make_reader(5), 3)
    repeater.seek(7)
    assert repeater.epoch == 1
    assert ids(repeater) == [2, 3, 4, 0, 1, 2, 3, 4]
    with pytest.raises(IndexError, match="index 15 out of range"):
        repeater.seek(15)
    cycler = Cycler(make_reader(5))
    cycler.seek(12)
    assert cycler.epoch == 2
    assert ids(itertools.islice(cycler, 5)) == [2, 3, 4, 0, 1]
    with pytest.raises(IndexError, match="index -1 out of range"):
        cycler.seek(-1)


def test_empty_and_zero_passes():
    assert list(itertools.islice(Cycler(make_reader(0)), 3)) == []  # datadings loops forever
    assert list(Repeater(make_reader(0), 4)) == []
    assert list(Repeater(make_reader(3), 0)) == []
    with pytest.raises(IndexError):
        Cycler(make_reader(0)).seek(0)
    with pytest.raises(IndexError):
        Repeater(make_reader(3), 0).seek(0)


def test_state_dict_values():
    cycler = Cycler(make_reader(3))
    it = iter(cycler)
    for _ in range(4):
        next(it)
    assert cycler.state_dict() == {
        "kind": "Cycler",
        "length": 3,
        "epoch": 1,
        "source": {"kind": "Reader", "length": 3, "position": 1},
    }
    repeater = Repeater(Shuffler(make_reader(3), seed=1), 2)
    it = iter(repeater)
    for _ in range(3):
        next(it)
    assert repeater.state_dict() == {
        "kind": "Repeater",
        "length": 3,
        "times": 2,
        "epoch": 1,
        "source": {"kind": "Shuffler", "length": 3, "seed": 1, "epoch": 1, "position": 0},
    }


@pytest.mark.parametrize("n", [1, 4])
def test_repeater_save_restore(n):
    run_save_restore(
        lambda: Repeater(make_reader(n), 3),
        total=6 * n,
        epoch_length=3 * n,
        reference=as_samples(list(range(n)) * 6),
    )


@pytest.mark.parametrize("n", [1, 4])
def test_cycler_save_restore(n):
    points = [p for e in range(4) for p in (e * n - 1, e * n, e * n + 1)]
    run_save_restore(
        lambda: Cycler(make_reader(n)),
        total=4 * n,
        midpoints=points,
        reference=as_samples(list(range(n)) * 4),
    )


def test_cycler_of_shuffler_save_restore():
    n = 6
    oracle = DatadingsCycler(DatadingsShuffler(datadings_reader(n)))
    reference = list(itertools.islice(oracle, 4 * n))
    points = [p for e in range(5) for p in (e * n - 1, e * n, e * n + 1)]
    run_save_restore(
        lambda: Cycler(Shuffler(make_reader(n))), total=4 * n, midpoints=points, reference=reference
    )


def test_repeater_of_quasi_shuffler_save_restore():
    n = 11
    # datadings' own Repeater passes chunk_size=16 to QuasiShuffler.iter, which then cuts chunks
    # of 16 into a buffer of 4 and fails; its QuasiShuffler epochs are the reference
    oracle = DatadingsQuasiShuffler(datadings_reader(n), 4, 2)
    reference = [sample for _ in range(4) for sample in oracle]
    run_save_restore(
        lambda: Repeater(QuasiShuffler(make_reader(n), 4, 2), 2),
        total=4 * n,
        epoch_length=2 * n,
        midpoints=[0, 1, n - 1, n, n + 1, 2 * n - 1, 2 * n, 2 * n + 1, 3 * n, 4 * n],
        reference=reference,
    )


def test_nested_and_range_compositions_save_restore():
    run_save_restore(
        lambda: Cycler(Range(make_reader(9), 2, 6)),
        total=13,
        midpoints=range(14),
        reference=as_samples([2, 3, 4, 5] * 4),
    )
    run_save_restore(
        lambda: Repeater(Repeater(make_reader(2), 2), 3),
        total=12,
        midpoints=range(13),
        reference=as_samples([0, 1] * 6),
    )


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), times=st.integers(1, 4), seed=st.integers(0, 99), data=st.data())
def test_repeater_of_shuffler_resumes_anywhere(n, times, seed, data):
    oracle = DatadingsShuffler(datadings_reader(n), seed=seed)
    reference = [sample for _ in range(times) for sample in oracle]
    k = data.draw(st.integers(0, n * times), label="k")
    check_resume_at(lambda: Repeater(Shuffler(make_reader(n), seed=seed), times), k, reference)


def test_state_mismatches():
    state = Repeater(make_reader(4), 2).state_dict()
    with pytest.raises(StateMismatchError, match="times=2 but this Repeater has times=3"):
        Repeater(make_reader(4), 3).load_state_dict(state)
    with pytest.raises(StateMismatchError, match="length=4 but this Repeater has length=5"):
        Repeater(make_reader(5), 2).load_state_dict(state)
    with pytest.raises(StateMismatchError, match="epoch=3, outside"):
        Repeater(make_reader(4), 2).load_state_dict({**state, "epoch": 3})
    bad_source = {**state, "source": {"kind": "Reader", "length": 4, "position": 4}}
    with pytest.raises(StateMismatchError, match="position=4, outside"):
        Repeater(make_reader(4), 2).load_state_dict(bad_source)
    with pytest.raises(StateMismatchError, match="'Reader' cannot be loaded into a Shuffler"):
        Repeater(Shuffler(make_reader(4)), 2).load_state_dict(state)
    with pytest.raises(StateMismatchError, match="'Repeater' cannot be loaded into a Cycler"):
        Cycler(make_reader(4)).load_state_dict(state)


def test_failed_load_changes_nothing():
    cycler = Cycler(Shuffler(make_reader(4), seed=1))
    take(cycler, 5)
    before = cycler.state_dict()
    other = Cycler(Shuffler(make_reader(4), seed=2))
    with pytest.raises(StateMismatchError, match="seed"):
        cycler.load_state_dict(other.state_dict())
    assert cycler.state_dict() == before


def test_context_manager_closes_the_innermost_reader():
    reader = LoggingReader(numbered_samples(3))
    with Cycler(Shuffler(reader)) as cycler:
        assert len(cycler) == 3
        assert isinstance(cycler, Cycler)
    assert reader.closed == 1


def test_bad_arguments():
    with pytest.raises(ConfigError, match="times"):
        Repeater(make_reader(3), -1)
    with pytest.raises(ConfigError, match="times"):
        Repeater(make_reader(3), 2.5)
    with pytest.raises(ConfigError, match="wraps a Reader or an augment"):
        Cycler([1, 2])
    with pytest.raises(ConfigError, match="chunk_size"):
        Cycler(make_reader(3)).iter(chunk_size=0)
