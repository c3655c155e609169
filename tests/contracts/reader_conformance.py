"""Reader conformance suite: the behaviour every :class:`~shardstream.read.reader.Reader` shares.

Use it from a test with a factory that opens a fresh reader and the ``(key, sample)`` pairs
that ``reader.get(i, yield_key=True)`` must return, in order::

    def test_conformance(tmp_path):
        expected = [...]
        run_reader_conformance(lambda: MyReader(path), expected)

Each check group runs on its own fresh reader, which is closed afterwards. Empty readers are
accepted. Samples are compared with :func:`assert_samples_equal`, which understands numpy
arrays and treats ``bytes``/``memoryview`` and ``list``/``tuple`` as equal.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from shardstream.format.codec import unpackb
from shardstream.read.reader import Reader

__all__ = ["assert_samples_equal", "run_reader_conformance"]

Expected = Sequence[tuple[Any, dict]]

_BYTES_LIKE = (bytes, bytearray, memoryview)
_SCALARS = (bool, int, float, complex, str, type(None))


def assert_samples_equal(actual: Any, expected: Any, where: str = "sample") -> None:
    """Assert two samples (or any nested values) are equal, naming the first difference.

    Dicts must have the same keys; lists and tuples compare element-wise; ``bytes``,
    ``bytearray`` and ``memoryview`` compare by content; numpy arrays and scalars must match in
    dtype, shape and values (NaN equals NaN); Python scalars must match in type (``1`` is not
    ``True`` or ``1.0``).

    Raises:
        AssertionError: the values differ; the message gives the path to the difference.
    """
    if isinstance(expected, np.ndarray) or isinstance(actual, np.ndarray):
        assert isinstance(actual, np.ndarray) and isinstance(expected, np.ndarray), (
            f"{where}: {type(actual).__name__} != {type(expected).__name__}"
        )
        assert actual.dtype == expected.dtype, f"{where}: dtype {actual.dtype} != {expected.dtype}"
        assert actual.shape == expected.shape, f"{where}: shape {actual.shape} != {expected.shape}"
        nan_ok = actual.dtype.kind in "fc"
        assert np.array_equal(actual, expected, equal_nan=nan_ok), f"{where}: array values differ"
    elif isinstance(expected, np.generic) or isinstance(actual, np.generic):
        assert isinstance(actual, np.generic) and isinstance(expected, np.generic), (
            f"{where}: {actual!r} != {expected!r}"
        )
        assert actual.dtype == expected.dtype, f"{where}: dtype {actual.dtype} != {expected.dtype}"
        assert actual == expected or (actual != actual and expected != expected), (
            f"{where}: {actual!r} != {expected!r}"
        )
    elif isinstance(expected, _BYTES_LIKE):
        assert isinstance(actual, _BYTES_LIKE), f"{where}: {type(actual).__name__} is not bytes"
        assert bytes(actual) == bytes(expected), f"{where}: bytes differ ({len(actual)} bytes)"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {type(actual).__name__} is not a dict"
        assert actual.keys() == expected.keys(), (
            f"{where}: keys {sorted(map(repr, actual))} != {sorted(map(repr, expected))}"
        )
        for name, value in expected.items():
            assert_samples_equal(actual[name], value, f"{where}[{name!r}]")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)), f"{where}: {type(actual).__name__} is no list"
        assert len(actual) == len(expected), f"{where}: length {len(actual)} != {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_samples_equal(a, e, f"{where}[{i}]")
    elif type(expected) in _SCALARS or type(actual) in _SCALARS:
        assert type(actual) is type(expected), (
            f"{where}: {actual!r:.100} ({type(actual).__name__}) != "
            f"{expected!r:.100} ({type(expected).__name__})"
        )
        both_nan = isinstance(actual, float) and math.isnan(actual) and math.isnan(expected)
        assert actual == expected or both_nan, f"{where}: {actual!r:.100} != {expected!r:.100}"
    else:
        assert actual == expected, f"{where}: {actual!r:.100} != {expected!r:.100}"


def run_reader_conformance(make_reader: Callable[[], Reader], expected: Expected) -> None:
    """Check a reader against the shared Reader contract.

    Args:
        make_reader: returns a fresh, open reader each call.
        expected: the ``(key, sample)`` pairs ``get(i, yield_key=True)`` must return, in order.

    Raises:
        AssertionError: the reader breaks the contract (the failing check is in the traceback).
    """
    expected = list(expected)
    for check in _CHECKS:
        reader = make_reader()
        try:
            check(reader, expected)
        finally:
            reader.close()


# --- helpers ------------------------------------------------------------------------------------


def _samples(expected: Expected) -> list[dict]:
    return [sample for _, sample in expected]


def _assert_all(actual: Any, expected: Sequence[Any], where: str) -> None:
    actual = list(actual)
    assert len(actual) == len(expected), f"{where}: {len(actual)} items, expected {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert_samples_equal(a, e, f"{where}[{i}]")


def _assert_pairs(actual: Any, expected: Expected, where: str) -> None:
    actual = list(actual)
    for item in actual:
        assert isinstance(item, tuple) and len(item) == 2, f"{where}: {item!r:.80} is no pair"
    _assert_all(actual, [tuple(pair) for pair in expected], where)


def _assert_raw(raw: Any, sample: dict, where: str, *, exact_bytes: bool) -> None:
    if exact_bytes:
        assert type(raw) is bytes, f"{where}: raw sample is {type(raw).__name__}, not bytes"
    else:
        assert isinstance(raw, _BYTES_LIKE), f"{where}: raw sample is {type(raw).__name__}"
    assert_samples_equal(unpackb(raw), sample, where)


def _out_of_range(call: Callable[[], Any], index: int, length: int) -> None:
    with pytest.raises(IndexError) as info:
        call()
    assert str(info.value) == f"index {index} out of range for length {length} reader"


def _probe_indices(n: int) -> list[int]:
    """All indices of a small reader; the ends and a random spread of a large one."""
    if n <= 64:
        return list(range(n))
    rng = random.Random(n)
    return sorted({*range(8), *range(n - 8, n), *rng.sample(range(n), 32)})


def _missing_key(expected: Expected) -> str:
    keys = {key for key, _ in expected}
    missing = "\x00shardstream-missing-key"
    while missing in keys:
        missing += "+"
    return missing


def _expect_next(reader: Reader, samples: list[dict], position: int, where: str) -> None:
    if position < len(samples):
        assert_samples_equal(reader.next(), samples[position], where)
    else:
        with pytest.raises(StopIteration):
            reader.next()


# --- checks -------------------------------------------------------------------------------------


def _check_membership(reader: Reader, expected: Expected) -> None:
    n = len(expected)
    assert len(reader) == n
    missing = _missing_key(expected)
    assert missing not in reader
    with pytest.raises(KeyError):
        reader.find_index(missing)
    for i, (key, _) in enumerate(expected):
        assert key in reader, f"key {key!r} not in reader"
        assert_samples_equal(reader.find_key(i), key, f"find_key({i})")
        assert_samples_equal(reader.find_key(i - n), key, f"find_key({i - n})")
        assert reader.find_index(key) == i, f"find_index({key!r})"
    with pytest.raises(IndexError):
        reader.find_key(n)


def _check_get(reader: Reader, expected: Expected) -> None:
    n = len(expected)
    for i in _probe_indices(n):
        key, sample = expected[i]
        assert_samples_equal(reader.get(i), sample, f"get({i})")
        assert_samples_equal(reader.get(i - n), sample, f"get({i - n})")
        assert_samples_equal(reader.get(i, copy=False), sample, f"get({i}, copy=False)")
        pair = reader.get(i, yield_key=True)
        assert isinstance(pair, tuple) and len(pair) == 2, f"get({i}, yield_key=True)"
        assert_samples_equal(pair, (key, sample), f"get({i}, yield_key=True)")
    for index in (n, n + 3, -n - 1):
        _out_of_range(lambda index=index: reader.get(index), index, n)


def _check_raw(reader: Reader, expected: Expected) -> None:
    n = len(expected)
    for i in _probe_indices(n):
        key, sample = expected[i]
        _assert_raw(reader.get(i, raw=True), sample, f"get({i}, raw=True)", exact_bytes=True)
        view = reader.get(i, raw=True, copy=False)
        _assert_raw(view, sample, f"get({i}, raw=True, copy=False)", exact_bytes=False)
        got_key, raw = reader.get(i, yield_key=True, raw=True)
        assert_samples_equal(got_key, key, f"get({i}, yield_key=True, raw=True) key")
        _assert_raw(raw, sample, f"get({i}, yield_key=True, raw=True)", exact_bytes=True)
    raws = list(reader.rawiter())
    assert len(raws) == n
    for i, raw in enumerate(raws):
        _assert_raw(raw, expected[i][1], f"rawiter()[{i}]", exact_bytes=True)
    pairs = list(reader.rawiter(yield_key=True))
    assert [key for key, _ in pairs] == [key for key, _ in expected]
    for i, (_, raw) in enumerate(pairs):
        _assert_raw(raw, expected[i][1], f"rawiter(yield_key=True)[{i}]", exact_bytes=True)
    for i, raw in enumerate(reader.iter(raw=True, copy=False)):
        _assert_raw(raw, expected[i][1], f"iter(raw=True, copy=False)[{i}]", exact_bytes=False)


def _range_cases(n: int) -> list[tuple[int | None, int | None]]:
    return [
        (0, None),
        (0, n),
        (1, n - 1),
        (n // 2, None),
        (-2, None),
        (-n - 5, 2),
        (0, n + 5),
        (n - 1, 1),
        (n, n + 1),
        (1, -1),
    ]


def _check_slice(reader: Reader, expected: Expected) -> None:
    n = len(expected)
    samples = _samples(expected)
    for start, stop in _range_cases(n):
        where = f"slice({start}, {stop})"
        _assert_all(reader.slice(start, stop), samples[start:stop], where)
    _assert_all(reader.slice(0), samples, "slice(0)")
    _assert_pairs(reader.slice(1, 4, yield_key=True), expected[1:4], "slice(1, 4, yield_key)")
    for i, raw in enumerate(reader.slice(0, 4, raw=True)):
        _assert_raw(raw, samples[i], f"slice(0, 4, raw=True)[{i}]", exact_bytes=True)
    _assert_all(reader.slice(0, 4, copy=False), samples[:4], "slice(0, 4, copy=False)")


def _check_iter(reader: Reader, expected: Expected) -> None:
    n = len(expected)
    samples = _samples(expected)
    _assert_all(reader.iter(), samples, "iter()")
    assert reader.position == n
    _assert_all(reader, samples, "second iteration")  # restarts at the end
    _assert_all(iter(reader), samples, "iter(reader)")
    _assert_pairs(reader.iter(yield_key=True), expected, "iter(yield_key=True)")
    for chunk_size in (1, 3, 1000):
        _assert_all(reader.iter(0, chunk_size=chunk_size), samples, f"chunk_size={chunk_size}")
    starts = sorted({0, 1, n // 2, n - 1, -1, -n} & set(range(-n, n)))
    for start in starts:
        first = start + n if start < 0 else start
        for stop in (None, first + 1, n, n + 10, -1, 0):
            where = f"iter({start}, {stop})"
            want = samples[first:stop]
            _assert_all(reader.iter(start, stop), want, where)
            if want:
                assert reader.position == first + len(want), f"position after {where}"
                _expect_next(reader, samples, first + len(want), f"next() after {where}")
    for start in (n, n + 1, -n - 1):
        if n == 0 and start == 0:
            continue
        with pytest.raises(IndexError):
            list(reader.iter(start))
    if n == 0:
        assert list(reader.iter(0)) == []
    if n >= 3:
        reader.seek(1)
        _assert_all(reader.iter(), samples[1:], "iter() from position 1")
        reader.seek(1)
        _assert_all(reader.iter(stop=2), samples[1:2], "iter(stop=2) from position 1")
        iterator = reader.iter(0)
        _assert_all([next(iterator), next(iterator)], samples[:2], "partial iter")
        assert reader.position == 2, "position after taking two samples from iter()"


def _check_next_and_seek(reader: Reader, expected: Expected) -> None:
    n = len(expected)
    samples = _samples(expected)
    _assert_all([reader.next() for _ in range(n)], samples, "next() from the start")
    with pytest.raises(StopIteration):
        reader.next()
    with pytest.raises(StopIteration):
        reader.rawnext()
    with pytest.raises(StopIteration):
        next(reader)
    for i in _probe_indices(n):
        key, sample = expected[i]
        reader.seek_index(i)
        assert reader.position == i
        assert_samples_equal(reader.next(), sample, f"next() after seek_index({i})")
        assert reader.position == i + 1
        reader.seek(i - n)
        assert reader.position == i
        assert_samples_equal(next(reader), sample, f"next() after seek({i - n})")
        reader.seek_key(key)
        assert reader.position == i
        _assert_raw(
            reader.rawnext(), sample, f"rawnext() after seek_key({key!r})", exact_bytes=True
        )
    for index in (n, -n - 1):
        _out_of_range(lambda index=index: reader.seek_index(index), index, n)
        _out_of_range(lambda index=index: reader.seek(index), index, n)
    with pytest.raises(KeyError):
        reader.seek_key(_missing_key(expected))


def _check_getitem(reader: Reader, expected: Expected) -> None:
    n = len(expected)
    samples = _samples(expected)
    for i in _probe_indices(n):
        assert_samples_equal(reader[i], samples[i], f"reader[{i}]")
        assert_samples_equal(reader[i - n], samples[i], f"reader[{i - n}]")
    _out_of_range(lambda: reader[n], n, n)
    for start, stop in _range_cases(n):
        _assert_all(reader[start:stop], samples[start:stop], f"reader[{start}:{stop}]")
    _assert_all(reader[:], samples, "reader[:]")
    _assert_all(reader[0:3:1], samples[0:3], "reader[0:3:1]")
    for step in (2, -1):
        with pytest.raises(ValueError, match="step"):
            reader[::step]
    limit = reader.getitem_max_slice_length
    if n > limit:  # long slices go through iter() in chunks
        _assert_all(reader[1 : limit + 1], samples[1 : limit + 1], f"reader[1:{limit + 1}]")
        _assert_all(reader[0 : limit - 1], samples[: limit - 1], f"reader[0:{limit - 1}]")
        _assert_all(reader[-limit - 1 :], samples[-limit - 1 :], f"reader[{-limit - 1}:]")


def _check_getitems(reader: Reader, expected: Expected) -> None:
    n = len(expected)
    samples = _samples(expected)
    assert list(reader.getitems([])) == []
    if n == 0:
        return
    rng = random.Random(0)
    indices = [*_probe_indices(n), *rng.choices(range(n), k=min(n, 20)), 0, 0, n - 1]
    rng.shuffle(indices)
    want = [samples[i] for i in indices]
    _assert_all(reader.getitems(indices), want, "getitems(list)")
    _assert_all(reader.getitems(np.asarray(indices)), want, "getitems(ndarray)")
    _assert_pairs(
        reader.getitems(indices, yield_key=True), [expected[i] for i in indices], "getitems keys"
    )
    for i, raw in zip(indices, reader.getitems(indices, raw=True)):
        _assert_raw(raw, samples[i], f"getitems raw [{i}]", exact_bytes=True)
    for i, raw in zip(indices, reader.getitems(indices, raw=True, copy=False)):
        _assert_raw(raw, samples[i], f"getitems raw copy=False [{i}]", exact_bytes=False)
    with pytest.raises(IndexError):
        reader.getitems([0, n])


def _check_context_manager(reader: Reader, expected: Expected) -> None:
    samples = _samples(expected)
    with reader as entered:
        assert entered is reader
        _assert_all(entered.slice(0, 2), samples[:2], "slice inside with")
    # closed readers reopen lazily, and closing twice is harmless
    _assert_all(reader.iter(0), samples, "iter() after the with block")
    reader.close()
    reader.close()
    _assert_all(reader.slice(0, 2), samples[:2], "slice after close()")


def _check_copy(reader: Reader, expected: Expected) -> None:
    n = len(expected)
    samples = _samples(expected)
    start = min(1, n - 1)
    if n:
        reader.seek(start)
        reader.get(0)  # open handles before copying
    for duplicate in (copy.copy(reader), reader.copy()):
        assert duplicate is not reader
        assert type(duplicate) is type(reader)
        assert len(duplicate) == n
        _assert_all(duplicate.iter(0), samples, "iteration of a copy")
        assert duplicate.position == n
        assert reader.position == max(start, 0), "copy moved the original's position"
        duplicate.close()
        _assert_all(reader.slice(0, 3), samples[:3], "original after closing a copy")
    if n:
        duplicate = copy.copy(reader)
        reader.close()
        _assert_all(duplicate.iter(0), samples, "copy after closing the original")
        duplicate.close()
        _expect_next(reader, samples, start, "original next() after copies")


_CHECKS = (
    _check_membership,
    _check_get,
    _check_raw,
    _check_slice,
    _check_iter,
    _check_next_and_seek,
    _check_getitem,
    _check_getitems,
    _check_context_manager,
    _check_copy,
)
