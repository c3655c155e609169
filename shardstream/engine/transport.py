"""Moving a collated batch between processes: array leaves through shared memory, a small header
through the pipe.

:func:`plan_tree` walks a pytree (``dict``, ``list``, ``tuple`` and namedtuple nests) and lays its
array leaves (numpy arrays, dense CPU torch tensors) out at aligned offsets of one flat buffer.
The worker writes them there with :func:`write_leaves`; only the returned *spec* (tree
structure, dtypes, shapes, offsets and the non-array leaves) is pickled. The consumer rebuilds
the tree with :func:`read_tree`: either as views into the buffer (``copy=False``; the engine then
lends the buffer and reuses it only once every view is gone) or copying every array out (torch
tensors optionally into pinned memory).

A list of ``bytes`` objects (a batch of encoded images) is laid out as one region plus the
items' lengths, and comes back as a list of ``bytes``.

Leaves that cannot live in a flat buffer (object or zero-itemsize arrays, GPU or sparse tensors,
containers of other types) travel pickled inside the spec: correct, only slower.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["TreePlan", "pin_tree", "plan_tree", "read_tree", "tree_nbytes", "write_leaves"]

#: every array leaf starts at a multiple of this many bytes
ALIGN = 64

# spec node tags
_NUMPY, _TORCH, _VALUE, _DICT, _LIST, _TUPLE, _NAMEDTUPLE = "n", "t", "v", "D", "L", "T", "N"
_BYTES_LIST = "B"  # a list of bytes objects (raw image batches): one region plus lengths
_BYTES_LIKE = (bytes, memoryview)  # memoryviews (zero-copy slices of a mapped file) become bytes


class TreePlan:
    """Where the array leaves of one pytree go in a flat buffer.

    Attributes:
        spec: the picklable description of the tree (send it to the consumer).
        size: bytes of buffer the leaves need.
        nbytes: sum of the array leaves' ``nbytes``.
        sources: ``(array, offset)`` pairs still to be written by :func:`write_leaves`.
    """

    __slots__ = ("_region", "nbytes", "size", "sources", "spec")

    def __init__(self) -> None:
        self.spec: Any = None
        self.size = 0
        self.nbytes = 0
        self.sources: list[tuple[np.ndarray, int]] = []
        self._region: tuple[int, int] | None = None  # (address, length) of leaves in place

    def in_place(self, address: int, nbytes: int) -> int | None:
        """The buffer offset of a leaf already in the buffer's in-place region, else ``None``."""
        region = self._region
        if region is None or nbytes == 0:
            return None
        offset = address - region[0]
        return offset if offset >= 0 and offset + nbytes <= region[1] else None

    def place(self, nbytes: int) -> int:
        """Reserve ``nbytes`` at the next aligned offset and return that offset."""
        offset = -(-self.size // ALIGN) * ALIGN
        self.size = offset + nbytes
        self.nbytes += nbytes
        return offset


def plan_tree(tree: Any, *, in_place: tuple[np.ndarray, int] | None = None) -> TreePlan:
    """Lay out the array leaves of ``tree`` in one flat buffer.

    Args:
        tree: a pytree whose leaves are numpy arrays, torch tensors, scalars, str/bytes or None.
        in_place: ``(buffer, used)`` when some leaves were built inside the first ``used`` bytes
            of the very buffer the tree will be written to (a worker's arena,
            :mod:`~shardstream.engine.scratch`): contiguous leaves found there keep their
            offset and are not copied; the others are laid out after ``used``.

    Returns:
        The plan: ``spec`` for :func:`read_tree`, the buffer ``size`` needed, the leaves'
        total ``nbytes`` and the sources for :func:`write_leaves`.
    """
    plan = TreePlan()
    if in_place is not None:
        buffer, used = in_place
        plan._region = (buffer.__array_interface__["data"][0], used)
        plan.size = used
    torch = sys.modules.get("torch")
    plan.spec = _plan(tree, plan, torch.Tensor if torch is not None else None)
    return plan


def write_leaves(plan: TreePlan, buffer: memoryview) -> None:
    """Copy the array leaves of a planned tree into ``buffer`` (at least ``plan.size`` bytes).

    Args:
        plan: the plan from :func:`plan_tree`.
        buffer: a writable buffer, e.g. a shared-memory segment's ``buf``.
    """
    for source, offset in plan.sources:
        if source.dtype == np.uint8 and source.ndim == 1:
            target = np.frombuffer(buffer, np.uint8, source.size, offset)
        else:
            target = np.ndarray(source.shape, source.dtype, buffer=buffer, offset=offset)
        np.copyto(target, source, casting="no")
        del target


def read_tree(spec: Any, buffer: Any, *, pin_memory: bool = False, copy: bool = True) -> Any:
    """Rebuild a tree from its spec.

    Args:
        spec: ``TreePlan.spec`` of the tree.
        buffer: the buffer :func:`write_leaves` filled (``None`` when the tree has no bytes):
            any bytes-like object; with ``copy=False``, a uint8 numpy array, which every leaf
            then views (so it stays alive exactly as long as some leaf does).
        pin_memory: allocate torch leaves in pinned (page-locked) memory; needs CUDA. Pinned
            leaves are always copies.
        copy: copy every array leaf out of ``buffer`` (``True``), or return views into it.

    Returns:
        The tree. Lists of bytes always come back as new ``bytes`` objects.
    """
    if not copy:
        if buffer is not None and not isinstance(buffer, np.ndarray):
            buffer = np.frombuffer(buffer, np.uint8)
        return _read(spec, buffer, pin_memory, not pin_memory)
    return _read(spec, buffer, pin_memory, False)


def tree_nbytes(tree: Any) -> int:
    """Return the sum of ``nbytes`` of the array leaves of ``tree`` (as :func:`plan_tree` counts).

    Object arrays and tensors that are not dense CPU tensors are not counted.

    Args:
        tree: a pytree as :func:`plan_tree` takes.

    Returns:
        The total number of array bytes.
    """
    torch = sys.modules.get("torch")
    tensor = torch.Tensor if torch is not None else None
    total = 0
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, np.ndarray):
            if not node.dtype.hasobject:
                total += node.nbytes
        elif tensor is not None and isinstance(node, tensor):
            if node.device.type == "cpu" and node.layout is sys.modules["torch"].strided:
                total += node.element_size() * node.numel()
        elif type(node) is list and node and all(type(value) in _BYTES_LIKE for value in node):
            total += sum(
                value.nbytes if type(value) is memoryview else len(value) for value in node
            )
        elif type(node) is dict:
            stack.extend(node.values())
        elif type(node) in (list, tuple) or (isinstance(node, tuple) and hasattr(node, "_fields")):
            stack.extend(node)
    return total


def pin_tree(tree: Any) -> Any:
    """Return ``tree`` with every CPU torch leaf copied into pinned memory (needs CUDA).

    Args:
        tree: a pytree as :func:`plan_tree` takes.

    Returns:
        The same structure; other leaves are passed through unchanged.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return tree
    if isinstance(tree, torch.Tensor):
        return tree.pin_memory() if tree.device.type == "cpu" else tree
    if type(tree) is dict:
        return {key: pin_tree(value) for key, value in tree.items()}
    if type(tree) is list:
        return [pin_tree(value) for value in tree]
    if type(tree) is tuple:
        return tuple(pin_tree(value) for value in tree)
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(pin_tree(value) for value in tree))
    return tree


def _plan(node: Any, plan: TreePlan, tensor: type | None) -> Any:
    if isinstance(node, np.ndarray):
        if node.dtype.hasobject or node.dtype.itemsize == 0:
            return (_VALUE, node)
        if node.flags.c_contiguous and plan._region is not None:
            offset = plan.in_place(node.__array_interface__["data"][0], node.nbytes)
            if offset is not None:
                plan.nbytes += node.nbytes
                return (_NUMPY, node.dtype, node.shape, offset, node.nbytes)
        offset = plan.place(node.nbytes)
        if node.nbytes:
            if node.flags.c_contiguous:
                plan.sources.append((node.reshape(-1).view(np.uint8), offset))
            else:
                plan.sources.append((node, offset))
        return (_NUMPY, node.dtype, node.shape, offset, node.nbytes)
    if tensor is not None and isinstance(node, tensor):
        if node.device.type != "cpu" or node.layout is not sys.modules["torch"].strided:
            return (_VALUE, node)
        flat = node.detach().resolve_conj().resolve_neg().contiguous().reshape(-1)
        nbytes = flat.element_size() * flat.numel()
        if plan._region is not None:
            offset = plan.in_place(flat.data_ptr(), nbytes)
            if offset is not None:
                plan.nbytes += nbytes
                return (_TORCH, node.dtype, tuple(node.shape), offset, nbytes)
        offset = plan.place(nbytes)
        if nbytes:
            plan.sources.append((flat.view(sys.modules["torch"].uint8).numpy(), offset))
        return (_TORCH, node.dtype, tuple(node.shape), offset, nbytes)
    kind = type(node)
    if kind is list and node and all(type(value) in _BYTES_LIKE for value in node):
        lengths = np.fromiter(
            (v.nbytes if type(v) is memoryview else len(v) for v in node), np.int64, len(node)
        )
        offset = plan.place(int(lengths.sum()))
        position = offset
        for value, length in zip(node, lengths.tolist()):
            if length:
                plan.sources.append((np.frombuffer(value, np.uint8, length), position))
            position += length
        return (_BYTES_LIST, offset, lengths)
    if kind is dict:
        return (_DICT, list(node), [_plan(value, plan, tensor) for value in node.values()])
    if kind is list:
        return (_LIST, [_plan(value, plan, tensor) for value in node])
    if kind is tuple:
        return (_TUPLE, [_plan(value, plan, tensor) for value in node])
    if isinstance(node, tuple) and hasattr(node, "_fields"):
        return (_NAMEDTUPLE, kind, [_plan(value, plan, tensor) for value in node])
    return (_VALUE, node)


def _read(spec: Any, buffer: Any, pin_memory: bool, view: bool) -> Any:
    tag = spec[0]
    if tag == _NUMPY:
        _, dtype, shape, offset, nbytes = spec
        if view and nbytes:
            return buffer[offset : offset + nbytes].view(dtype).reshape(shape)
        out = np.empty(shape, dtype)
        if nbytes:
            source = np.frombuffer(buffer, np.uint8, nbytes, offset)
            np.copyto(out.reshape(-1).view(np.uint8), source)
            del source
        return out
    if tag == _TORCH:
        import torch

        _, dtype, shape, offset, nbytes = spec
        if view and nbytes:
            return torch.from_numpy(buffer[offset : offset + nbytes]).view(dtype).reshape(shape)
        out = torch.empty(shape, dtype=dtype, pin_memory=pin_memory)
        if nbytes:
            source = np.frombuffer(buffer, np.uint8, nbytes, offset)
            np.copyto(out.reshape(-1).view(torch.uint8).numpy(), source)
            del source
        return out
    if tag == _VALUE:
        return spec[1]
    if tag == _BYTES_LIST:
        _, offset, lengths = spec
        ends = (offset + np.cumsum(lengths)).tolist()
        starts = [offset, *ends[:-1]]
        data = memoryview(buffer)
        return [bytes(data[start:end]) for start, end in zip(starts, ends)]
    if tag == _DICT:
        return {key: _read(child, buffer, pin_memory, view) for key, child in zip(spec[1], spec[2])}
    if tag == _LIST:
        return [_read(child, buffer, pin_memory, view) for child in spec[1]]
    if tag == _TUPLE:
        return tuple(_read(child, buffer, pin_memory, view) for child in spec[1])
    return spec[1](*(_read(child, buffer, pin_memory, view) for child in spec[2]))
