"""Shuffler: datadings 3.4.7's exact orders, exact resume, and the reads it makes."""

from __future__ import annotations

import random

import numpy as np
import pytest
from datadings.reader import Shuffler as DatadingsShuffler
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream.errors import ConfigError
from shardstream.format.codec import unpackb
from shardstream.order.shuffle import Shuffler, shuffle_order
from shardstream.read.msgpack import MsgpackReader
from tests.conftest import write_samples
from tests.contracts.stateful import check_resume_at, run_save_restore, take
from tests.order.readers import (
    LoggingReader,
    datadings_reader,
    ids,
    index_of,
    make_reader,
    numbered_samples,
)

seeds = st.one_of(st.none(), st.integers(-(2**40), 2**40))


def datadings_run(n: int, seed: int | None, epochs: int) -> list[int]:
    shuffler = DatadingsShuffler(datadings_reader(n), seed=seed)
    return [i for _ in range(epochs) for i in ids(shuffler)]


def test_reference_vectors_default_seed():
    shuffler = Shuffler(make_reader(5))
    assert shuffler.seed == 5
    assert ids(shuffler) == [0, 1, 3, 2, 4]
    assert ids(shuffler) == [3, 2, 1, 0, 4]
    assert shuffler.epoch == 2
    assert shuffler.position == 0


def test_shuffle_order_is_python_shuffle():
    expected = list(range(12))
    random.Random(7).shuffle(expected)
    order = shuffle_order(12, 7)
    assert order.tolist() == expected
    assert order.dtype == np.int64
    with pytest.raises(ValueError):
        order[0] = 1  # read-only: epoch orders are cached and shared


def test_epoch_order_uses_seed_plus_epoch_times_length():
    shuffler = Shuffler(make_reader(6), seed=11)
    assert shuffler.epoch_order(0).tolist() == shuffle_order(6, 11).tolist()
    assert shuffler.epoch_order(3).tolist() == shuffle_order(6, 11 + 18).tolist()


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 150), seed=seeds)
def test_orders_match_datadings(n, seed):
    assert take(Shuffler(make_reader(n), seed=seed), 3 * n, iter) == [
        {"key": f"s{i}", "i": i} for i in datadings_run(n, seed, 3)
    ]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 60), seed=seeds, data=st.data())
def test_seek_resumes_the_uninterrupted_order(n, seed, data):
    full = datadings_run(n, seed, 3)
    k = data.draw(st.integers(0, 3 * n - 1), label="k")
    shuffler = Shuffler(make_reader(n), seed=seed)
    shuffler.seek(k)
    assert (shuffler.epoch, shuffler.position) == divmod(k, n)
    assert ids(take(shuffler, 3 * n - k)) == full[k:]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), seed=seeds, data=st.data())
def test_state_resumes_anywhere(n, seed, data):
    reference = [{"key": f"s{i}", "i": i} for i in datadings_run(n, seed, 3)]
    k = data.draw(st.integers(0, 3 * n), label="k")
    check_resume_at(lambda: Shuffler(make_reader(n), seed=seed), k, reference)


@pytest.mark.parametrize(("n", "seed"), [(7, None), (1, 3), (10, -5)])
def test_save_restore_harness(n, seed):
    reference = [{"key": f"s{i}", "i": i} for i in datadings_run(n, seed, 3)]
    run_save_restore(
        lambda: Shuffler(make_reader(n), seed=seed),
        total=3 * n,
        epoch_length=n,
        reference=reference,
    )


def test_seek_past_first_epoch_lands_in_a_later_epoch():
    # datadings 3.4.7 yields nothing after seek(7) and then skips to epoch 2
    shuffler = Shuffler(make_reader(5))
    shuffler.seek(7)
    assert (shuffler.epoch, shuffler.position) == (1, 2)
    assert ids(shuffler) == [1, 0, 4]
    assert ids(shuffler) == [4, 3, 2, 0, 1]


def test_break_then_iterate_continues_without_repeating():
    shuffler = Shuffler(make_reader(5))
    seen = []
    for sample in shuffler:
        seen.append(index_of(sample))
        if len(seen) == 2:
            break
    assert seen == [0, 1]
    assert shuffler.position == 2
    assert ids(shuffler) == [3, 2, 4]


def test_state_dict_values():
    shuffler = Shuffler(make_reader(5), seed=9)
    it = iter(shuffler)
    next(it)
    next(it)
    assert shuffler.state_dict() == {
        "kind": "Shuffler",
        "length": 5,
        "seed": 9,
        "epoch": 0,
        "position": 2,
    }
    for _ in range(3):
        next(it)
    # the last sample of the epoch was yielded: the state points at the next epoch
    assert shuffler.state_dict()["epoch"] == 1
    assert shuffler.state_dict()["position"] == 0


def test_reads_in_chunks_with_getitems():
    reader = LoggingReader(numbered_samples(8))
    order = shuffle_order(8, 8).tolist()
    assert ids(Shuffler(reader).iter(chunk_size=3)) == order
    assert reader.getitems_calls == [order[0:3], order[3:6], order[6:8]]


def test_yield_key_raw_and_rawiter():
    order = shuffle_order(4, 4).tolist()
    pairs = list(Shuffler(make_reader(4)).iter(yield_key=True))
    assert pairs == [(f"s{i}", {"key": f"s{i}", "i": i}) for i in order]
    raw = list(Shuffler(make_reader(4)).rawiter())
    assert [unpackb(data) for data in raw] == [{"key": f"s{i}", "i": i} for i in order]
    keyed = list(Shuffler(make_reader(4)).rawiter(yield_key=True))
    assert [(key, unpackb(data)["i"]) for key, data in keyed] == [(f"s{i}", i) for i in order]


def test_msgpack_reader_zero_copy(tmp_path):
    samples = [{"key": f"k{i:02d}", "x": np.arange(i, dtype=np.int16)} for i in range(30)]
    path = tmp_path / "d.msgpack"
    write_samples(path, samples)
    order = shuffle_order(30, 1).tolist()
    with Shuffler(MsgpackReader(path), seed=1) as shuffler:
        raw = list(shuffler.iter(raw=True, copy=False, chunk_size=7))
    assert all(isinstance(data, memoryview) for data in raw)
    decoded = [unpackb(bytes(data)) for data in raw]
    assert [d["key"] for d in decoded] == [f"k{i:02d}" for i in order]
    assert all(np.array_equal(d["x"], np.arange(i, dtype=np.int16)) for d, i in zip(decoded, order))


def test_empty_reader():
    shuffler = Shuffler(make_reader(0))
    assert shuffler.seed == 0
    assert list(shuffler) == []
    assert shuffler.state_dict()["position"] == 0
    with pytest.raises(IndexError, match="out of range"):
        shuffler.seek(0)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="seed"):
        Shuffler(make_reader(3), seed="abc")
    with pytest.raises(ConfigError, match="needs a Reader"):
        Shuffler([1, 2, 3])
    with pytest.raises(ConfigError, match="chunk_size"):
        Shuffler(make_reader(3)).iter(chunk_size=0)
    with pytest.raises(IndexError, match="index -1 out of range"):
        Shuffler(make_reader(3)).seek(-1)
    assert Shuffler(make_reader(3), seed=np.int64(4)).seed == 4
