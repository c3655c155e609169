"""Pytrees through a flat buffer: structure, dtypes, shapes and ownership survive exactly."""

from __future__ import annotations

import collections
import pickle

import numpy as np
import pytest
import torch

from shardstream.engine import WorkerPool
from shardstream.engine.transport import (
    ALIGN,
    pin_tree,
    plan_tree,
    read_tree,
    tree_nbytes,
    write_leaves,
)

from .works import TreeWork, make_tasks

Pair = collections.namedtuple("Pair", ["left", "right"])


def rich_tree(sequence: int = 0):
    base = np.arange(24, dtype=np.float64).reshape(4, 6) + sequence
    return {
        "u8": np.arange(7, dtype=np.uint8),
        "bool": np.array([[True, False, True]]),
        "f16": np.linspace(-1, 1, 5, dtype=np.float16),
        "f64be": np.arange(3, dtype=">f8"),
        "c64": np.array([1 + 2j, -3j], dtype=np.complex64),
        "strings": np.array(["a", "bcd"]),
        "record": np.zeros(2, dtype=[("x", "<i4"), ("y", "<f2")]),
        "empty": np.zeros((0, 3), dtype=np.int32),
        "scalar0d": np.array(5, dtype=np.int16),
        "transposed": base.T,
        "strided": base[::2, ::3],
        "objects": np.array([{"a": 1}, None], dtype=object),
        "nested": [
            {"t_f32": torch.arange(6, dtype=torch.float32).reshape(2, 3)},
            (torch.tensor([True, False]), torch.zeros(0, 2, dtype=torch.int64)),
            [torch.tensor(3.5, dtype=torch.bfloat16), torch.arange(4).reshape(2, 2).t()],
        ],
        "grad": torch.ones(2, requires_grad=True),
        "t_c64": torch.tensor([1 + 1j, 2 - 1j], dtype=torch.complex64).conj(),
        "pair": Pair(np.int64(3), torch.tensor([1, 2], dtype=torch.uint8)),
        "values": (1, 2.5, "text", b"\x00bytes", None, True, np.float32(0.5)),
        "sequence": sequence,
        7: "non-string key",
    }


def assert_equal_trees(a, b, copied=True):
    """Compare exactly; ``copied``: ``b`` went through a buffer (dense, detached tensors)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a.detach().resolve_conj(), b.detach().resolve_conj())
        if copied:
            assert b.is_contiguous() and not b.requires_grad and not b.is_conj()
        return
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        if a.dtype.hasobject:
            assert a.tolist() == b.tolist()
        else:
            assert np.ascontiguousarray(a).tobytes() == b.tobytes()
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            assert_equal_trees(a[key], b[key], copied)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_equal_trees(x, y, copied)
    else:
        assert a == b


def round_trip(tree):
    plan = plan_tree(tree)
    buffer = bytearray(plan.size)
    write_leaves(plan, memoryview(buffer))
    spec = pickle.loads(pickle.dumps(plan.spec))
    return read_tree(spec, memoryview(buffer)), plan, buffer


def test_round_trip_keeps_structure_dtypes_and_values():
    tree = rich_tree()
    out, _, _ = round_trip(tree)
    assert_equal_trees(tree, out)
    assert isinstance(out["pair"], Pair)
    assert isinstance(out["nested"][1], tuple)


def test_leaves_are_copies_the_caller_owns():
    tree = {"a": np.arange(5, dtype=np.int64), "t": torch.arange(3)}
    out, _, buffer = round_trip(tree)
    buffer[:] = b"\xff" * len(buffer)
    assert out["a"].tolist() == [0, 1, 2, 3, 4]
    assert out["t"].tolist() == [0, 1, 2]
    assert out["a"].flags.owndata and out["a"].flags.writeable


def test_layout_is_aligned_and_counts_bytes():
    tree = {"a": np.zeros(3, np.uint8), "b": np.zeros(5, np.float64), "c": torch.zeros(2)}
    plan = plan_tree(tree)
    offsets = [node[3] for node in plan.spec[2]]
    assert offsets == [0, ALIGN, 2 * ALIGN]
    assert all(offset % ALIGN == 0 for offset in offsets)
    assert plan.nbytes == 3 + 40 + 8 == tree_nbytes(tree)
    assert plan.size == 2 * ALIGN + 8


def test_lists_of_bytes_travel_as_one_region():
    images = [b"\xff\xd8" + bytes(range(i, i + 50)) for i in range(7)] + [b""]
    tree = {"image": images, "label": np.arange(8), "mixed": [b"a", "b"]}
    plan = plan_tree(tree)
    assert plan.spec[2][0][0] == "B"  # one region, not pickled values
    assert plan.spec[2][2][0] == "L"  # a list mixing bytes and str stays a plain list
    assert plan.nbytes == tree_nbytes(tree) == 7 * 52 + 64
    buffer = memoryview(bytearray(plan.size))
    write_leaves(plan, buffer)
    out = read_tree(plan.spec, buffer)
    assert out["image"] == images and all(type(value) is bytes for value in out["image"])
    assert out["mixed"] == [b"a", "b"]
    assert out["label"].tolist() == list(range(8))


def test_a_tree_without_arrays_needs_no_buffer():
    tree = {"keys": ["a", "b"], "n": 2, "none": None}
    plan = plan_tree(tree)
    assert plan.size == 0 and plan.nbytes == 0
    assert read_tree(plan.spec, None) == tree


def test_tree_nbytes_counts_every_array_leaf():
    tree = rich_tree()
    expected = sum(
        leaf.nbytes
        for leaf in tree.values()
        if isinstance(leaf, np.ndarray) and leaf.dtype != object
    )
    expected += 24 + 2 + 0 + 2 + 32 + 8 + 16 + 2  # the torch leaves
    assert tree_nbytes(tree) == expected


def test_pin_tree_without_cuda_needs_cuda():
    if torch.cuda.is_available():
        pinned = pin_tree({"t": torch.zeros(3), "a": np.zeros(2)})
        assert pinned["t"].is_pinned()
        assert isinstance(pinned["a"], np.ndarray)
    else:
        assert pin_tree({"a": np.zeros(2), "n": None})["n"] is None


@pytest.mark.parametrize("num_workers", [0, 2])
def test_rich_trees_through_the_pool(num_workers):
    with WorkerPool(work=TreeWork(rich_tree), num_workers=num_workers, num_threads=2) as pool:
        got = [batch for _, batch in pool.run(make_tasks([1, 1, 1]))]
        stats = pool.stats()
    for sequence, batch in enumerate(got):
        # in-process batches are the work's own objects; from workers they are dense copies
        assert_equal_trees(rich_tree(sequence), batch, copied=num_workers > 0)
    assert stats["bytes"] == 3 * tree_nbytes(rich_tree())
