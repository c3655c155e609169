"""Range: datadings' bounds handling, plus a position that seek and state move."""

from __future__ import annotations

import pytest
from datadings.reader import Range as DatadingsRange
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream.errors import ConfigError, StateMismatchError
from shardstream.order.range import Range
from tests.contracts.stateful import run_save_restore
from tests.order.readers import LoggingReader, datadings_reader, ids, make_reader, numbered_samples


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 30),
    start=st.integers(-35, 35),
    stop=st.one_of(st.none(), st.integers(-40, 40)),
)
def test_bounds_match_datadings(n, start, stop):
    try:
        theirs = DatadingsRange(datadings_reader(n), start, stop)
    except IndexError:
        with pytest.raises(IndexError, match=f"index {start} out of range for length {n} reader"):
            Range(make_reader(n), start, stop)
        return
    ours = Range(make_reader(n), start, stop)
    assert (ours.start, ours.stop) == (theirs.start, theirs.stop)
    assert ids(ours) == ids(theirs)
    assert ours.num_samples == len(ids(theirs))
    assert len(ours) == n


def test_seek_moves_the_position_within_the_range():
    rng = Range(make_reader(10), 2, 7)
    rng.seek(3)
    assert rng.position == 3
    assert ids(rng) == [5, 6]
    assert ids(rng) == [2, 3, 4, 5, 6]  # a finished pass restarts at start
    with pytest.raises(IndexError, match="index 5 out of range for Range"):
        rng.seek(5)
    with pytest.raises(IndexError, match="index -1 out of range"):
        rng.seek(-1)


def test_break_then_iterate_continues():
    rng = Range(make_reader(10), -4)
    it = iter(rng)
    assert next(it)["i"] == 6
    assert rng.position == 1
    assert ids(rng) == [7, 8, 9]


def test_reads_through_the_reader_in_chunks():
    reader = LoggingReader(numbered_samples(20))
    assert ids(Range(reader, 3, 11).iter(chunk_size=3)) == list(range(3, 11))
    assert reader.slices == [(3, 6), (6, 9), (9, 11)]


@pytest.mark.parametrize(("start", "stop"), [(2, 7), (0, None), (4, 5)])
def test_save_restore(start, stop):
    rng = Range(make_reader(9), start, stop)
    span = list(range(rng.start, rng.stop))
    run_save_restore(
        lambda: Range(make_reader(9), start, stop),
        total=3 * len(span),
        epoch_length=len(span),
        reference=[{"key": f"s{i}", "i": i} for i in span * 3],
    )


def test_state_dict_values_and_mismatches():
    rng = Range(make_reader(10), 2, 7)
    rng.seek(4)
    state = rng.state_dict()
    assert state == {"kind": "Range", "length": 10, "start": 2, "stop": 7, "position": 4}
    with pytest.raises(StateMismatchError, match="stop=7 but this Range has stop=8"):
        Range(make_reader(10), 2, 8).load_state_dict(state)
    with pytest.raises(StateMismatchError, match="position=5, outside"):
        Range(make_reader(10), 2, 7).load_state_dict({**state, "position": 5})


def test_empty_ranges():
    assert list(Range(make_reader(0))) == []
    empty = Range(make_reader(10), 6, 3)
    assert (empty.start, empty.stop, empty.num_samples) == (6, 3, 0)
    assert list(empty) == []
    with pytest.raises(IndexError):
        empty.seek(0)


def test_bad_arguments():
    with pytest.raises(IndexError, match="index 10 out of range for length 10 reader"):
        Range(make_reader(10), 10)
    with pytest.raises(ConfigError, match="start and stop must be integers"):
        Range(make_reader(10), 1.5)
    with pytest.raises(ConfigError, match="needs a Reader"):
        Range(Range(make_reader(10)))
