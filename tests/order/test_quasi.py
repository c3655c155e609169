"""QuasiShuffler: datadings 3.4.7's exact orders and buffer quirk, exact resume, chunked reads."""

from __future__ import annotations

import numpy as np
import pytest
from datadings.reader import QuasiShuffler as DatadingsQuasiShuffler
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream.errors import ConfigError, StateMismatchError
from shardstream.format.codec import unpackb
from shardstream.order.quasi import QuasiShuffler, quasi_shuffle_order, resolve_buffer_size
from shardstream.read.msgpack import MsgpackReader
from tests.conftest import write_samples
from tests.contracts.stateful import check_resume_at, run_save_restore, take
from tests.order.readers import LoggingReader, datadings_reader, ids, make_reader, numbered_samples

buf_sizes = st.one_of(
    st.sampled_from([0, 0.01, 0.5, 0.999]),
    st.integers(1, 90),
    st.floats(1, 60, allow_nan=False),
)
chunk_sizes = st.integers(1, 24)
seeds = st.one_of(st.none(), st.integers(-(2**40), 2**40))


def datadings_run(n, buf_size, chunk_size, seed, epochs):
    quasi = DatadingsQuasiShuffler(datadings_reader(n), buf_size, chunk_size, seed)
    return [i for _ in range(epochs) for i in ids(quasi)]


def as_samples(indices):
    return [{"key": f"s{i}", "i": i} for i in indices]


def test_reference_vector():
    quasi = QuasiShuffler(make_reader(5), buf_size=0.5, chunk_size=2)
    assert (quasi.buf_size, quasi.chunk_size, quasi.num_chunks, quasi.seed) == (2, 2, 3, 20)
    assert ids(quasi) == [3, 2, 0, 1, 4]


@settings(max_examples=80, deadline=None)
@given(n=st.integers(0, 250), buf_size=buf_sizes, chunk_size=chunk_sizes, seed=seeds)
def test_orders_match_datadings(n, buf_size, chunk_size, seed):
    expected = datadings_run(n, buf_size, chunk_size, seed, 3)
    quasi = QuasiShuffler(make_reader(n), buf_size, chunk_size, seed)
    assert ids(take(quasi, 3 * n)) == expected
    for epoch in range(3):
        assert quasi.epoch_order(epoch).tolist() == expected[epoch * n : (epoch + 1) * n]


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 80), buf_size=buf_sizes, chunk_size=chunk_sizes, seed=seeds, data=st.data())
def test_seek_resumes_the_uninterrupted_order(n, buf_size, chunk_size, seed, data):
    full = datadings_run(n, buf_size, chunk_size, seed, 2)
    k = data.draw(st.integers(0, 2 * n - 1), label="k")
    quasi = QuasiShuffler(make_reader(n), buf_size, chunk_size, seed)
    quasi.seek(k)
    assert ids(take(quasi, 2 * n - k)) == full[k:]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 50), buf_size=buf_sizes, chunk_size=chunk_sizes, data=st.data())
def test_state_resumes_anywhere(n, buf_size, chunk_size, data):
    reference = as_samples(datadings_run(n, buf_size, chunk_size, None, 2))
    k = data.draw(st.integers(0, 2 * n), label="k")
    check_resume_at(lambda: QuasiShuffler(make_reader(n), buf_size, chunk_size), k, reference)


def test_resume_at_a_chunk_boundary_where_datadings_goes_wrong():
    full = datadings_run(20, 4, 3, None, 1)
    assert full == [16, 13, 12, 10, 11, 17, 1, 14, 15, 0, 9, 8, 3, 6, 18, 7, 19, 5, 4, 2]
    theirs = DatadingsQuasiShuffler(datadings_reader(20), 4, 3)
    theirs.seek(3)
    assert ids(theirs)[:4] == [10, 11, 17, 0]  # datadings: 0 where 1 belongs
    ours = QuasiShuffler(make_reader(20), 4, 3)
    ours.seek(3)
    assert ids(ours) == full[3:]


@pytest.mark.parametrize(
    ("n", "buf_size", "chunk_size"), [(23, 4, 3), (40, 0.5, 4), (9, 100, 2), (16, 1, 1)]
)
def test_save_restore_harness(n, buf_size, chunk_size):
    reference = as_samples(datadings_run(n, buf_size, chunk_size, None, 3))
    run_save_restore(
        lambda: QuasiShuffler(make_reader(n), buf_size, chunk_size),
        total=3 * n,
        epoch_length=n,
        reference=reference,
    )


def test_small_buf_size_is_always_one_percent():
    # the datadings quirk: every value below 1 means ceil(1% of len), then a chunk multiple
    orders = {
        tuple(ids(QuasiShuffler(make_reader(1000), buf_size, chunk_size=4)))
        for buf_size in (0, 0.01, 0.3, 0.5, 0.99)
    }
    assert len(orders) == 1
    assert QuasiShuffler(make_reader(1000), 0.5, chunk_size=4).buf_size == 12
    assert QuasiShuffler(make_reader(1000), 10, chunk_size=4).buf_size == 12
    assert QuasiShuffler(make_reader(1000), 0.5).buf_size == 16


@pytest.mark.parametrize(
    ("length", "buf_size", "chunk_size", "expected"),
    [
        (1000, 0.5, 16, 16),
        (1000, 40, 16, 48),
        (5, 0.5, 2, 2),
        (0, 0.01, 16, 0),
        (100, 2.9, 1, 2),
        (30000, 0.2, 7, 301),
    ],
)
def test_resolve_buffer_size(length, buf_size, chunk_size, expected):
    assert resolve_buffer_size(length, buf_size, chunk_size) == expected


def test_quasi_shuffle_order_is_a_read_only_permutation():
    order = quasi_shuffle_order(50, 8, 4, 123)
    assert sorted(order.tolist()) == list(range(50))
    assert order.dtype == np.int64
    with pytest.raises(ValueError):
        order[0] = 0
    with pytest.raises(ConfigError, match="buf_size must be >= 1"):
        quasi_shuffle_order(10, 0, 4, 1)


def test_every_chunk_is_read_once_per_pass_as_one_slice():
    n, chunk = 50, 4
    reader = LoggingReader(numbered_samples(n))
    quasi = QuasiShuffler(reader, buf_size=8, chunk_size=chunk)
    assert sorted(ids(quasi)) == list(range(n))
    assert sorted(reader.slices) == [(a, min(n, a + chunk)) for a in range(0, n, chunk)]


def test_resumed_pass_reads_only_chunks_still_due():
    n, chunk, k = 50, 4, 30
    order = QuasiShuffler(make_reader(n), 8, chunk).epoch_order(0).tolist()
    reader = LoggingReader(numbered_samples(n))
    quasi = QuasiShuffler(reader, 8, chunk)
    quasi.seek(k)
    assert ids(quasi) == order[k:]
    due = sorted({i - i % chunk for i in order[k:]})
    assert sorted(reader.slices) == [(a, min(n, a + chunk)) for a in due]


def test_iter_chunk_size_does_not_change_the_order():
    expected = ids(QuasiShuffler(make_reader(100), 0.5, 16))
    assert ids(QuasiShuffler(make_reader(100), 0.5, 16).iter(chunk_size=4)) == expected
    with pytest.raises(ConfigError, match="chunk_size"):
        QuasiShuffler(make_reader(100)).iter(chunk_size=0)


def test_break_then_iterate_continues_without_repeating():
    quasi = QuasiShuffler(make_reader(5), buf_size=0.5, chunk_size=2)
    it = iter(quasi)
    assert [next(it)["i"], next(it)["i"]] == [3, 2]
    assert quasi.position == 2
    assert ids(quasi) == [0, 1, 4]
    assert quasi.epoch == 1


def test_state_dict_values_and_mismatches():
    quasi = QuasiShuffler(make_reader(5), buf_size=0.5, chunk_size=2)
    it = iter(quasi)
    next(it)
    state = quasi.state_dict()
    assert state == {
        "kind": "QuasiShuffler",
        "length": 5,
        "seed": 20,
        "buf_size": 2,
        "chunk_size": 2,
        "epoch": 0,
        "position": 1,
    }
    with pytest.raises(
        StateMismatchError, match="buf_size=2 but this QuasiShuffler has buf_size=4"
    ):
        QuasiShuffler(make_reader(5), buf_size=3, chunk_size=2, seed=20).load_state_dict(state)
    with pytest.raises(StateMismatchError, match="chunk_size=2 but this QuasiShuffler has"):
        QuasiShuffler(make_reader(5), buf_size=2, chunk_size=1, seed=20).load_state_dict(state)
    with pytest.raises(StateMismatchError, match="seed=20 but this QuasiShuffler has seed=21"):
        QuasiShuffler(make_reader(5), buf_size=0.5, chunk_size=2, seed=21).load_state_dict(state)


def test_msgpack_reader_zero_copy(tmp_path):
    path = tmp_path / "d.msgpack"
    write_samples(path, numbered_samples(40))
    expected = ids(QuasiShuffler(make_reader(40), 8, 4))
    with QuasiShuffler(MsgpackReader(path), 8, 4) as quasi:
        raw = list(quasi.iter(raw=True, copy=False))
    assert all(isinstance(data, memoryview) for data in raw)
    assert [unpackb(bytes(data))["i"] for data in raw] == expected


def test_empty_reader():
    quasi = QuasiShuffler(make_reader(0))
    assert (quasi.buf_size, quasi.num_chunks, quasi.seed) == (0, 0, 0)
    assert list(quasi) == []
    with pytest.raises(IndexError):
        quasi.seek(0)


@pytest.mark.parametrize("buf_size", [-1, float("nan"), float("inf"), "10", None, True])
def test_bad_buf_size(buf_size):
    with pytest.raises(ConfigError, match="buf_size"):
        QuasiShuffler(make_reader(10), buf_size=buf_size)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="chunk_size"):
        QuasiShuffler(make_reader(10), chunk_size=0)
    with pytest.raises(ConfigError, match="seed"):
        QuasiShuffler(make_reader(10), seed=1.5)
    with pytest.raises(IndexError, match="index -3 out of range"):
        QuasiShuffler(make_reader(10)).seek(-3)
