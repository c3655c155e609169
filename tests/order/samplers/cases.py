"""Sampler configurations shared by the resume tests and the fresh-process child.

A case is ``(name, kwargs)`` with JSON-friendly kwargs: ``dataset_len`` stands for a data set of
that length (passed positionally), ``start_iter`` is set on the built sampler.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import shardstream as samplers

CASES: list[tuple[str, dict[str, Any]]] = [
    ("EpochSampler", dict(size=9, sample_count=9, shuffle=True, seed=4, start=0, step=1)),
    ("EpochSampler", dict(size=17, sample_count=6, shuffle=True, seed=0, start=1, step=3)),
    ("EpochSampler", dict(size=7, sample_count=7, shuffle=False, seed=0, start=1, step=2)),
    ("InfiniteSampler", dict(sample_count=7, shuffle=True, seed=3, start=0, step=1)),
    ("InfiniteSampler", dict(sample_count=11, shuffle=True, seed=5, start=2, step=3, advance=4)),
    ("InfiniteSampler", dict(sample_count=11, shuffle=False, seed=5, start=1, step=3, advance=2)),
    ("ShardedInfiniteSampler", dict(sample_count=10, shuffle=True, seed=2, start=1, step=3)),
    (
        "ShardedInfiniteSampler",
        dict(sample_count=10, shuffle=True, seed=2, start=0, step=2, advance=13),
    ),
    (
        "ShardedInfiniteSampler",
        dict(
            sample_count=10,
            shuffle=True,
            seed=2,
            start=1,
            step=3,
            advance=4,
            use_new_shuffle_tensor_slice=True,
        ),
    ),
    ("ShardedInfiniteSampler", dict(sample_count=10, shuffle=False, start=1, step=3, advance=11)),
    ("DistributedSampler", dict(dataset_len=10, num_replicas=3, rank=2, seed=6)),
    ("DistributedSampler", dict(dataset_len=10, num_replicas=3, rank=0, drop_last=True)),
    ("DistributedSampler", dict(dataset_len=8, num_replicas=2, rank=1, shuffle=False)),
    ("ResumableRandomSampler", dict(dataset_len=9, seed=2, batch_size=2)),
    ("ResumableRandomSampler", dict(dataset_len=9, seed=2, batch_size=2, start_iter=1)),
    ("ResumableSequentialSampler", dict(dataset_len=7, batch_size=3, start_iter=1)),
    (
        "ResumableDistributedSampler",
        dict(dataset_len=11, num_replicas=2, rank=1, seed=3, batch_size=2, start_iter=1),
    ),
    ("GlobalOrderSampler", dict(sample_count=10, seed=7, rank=0, world_size=1)),
    ("GlobalOrderSampler", dict(sample_count=10, seed=7, rank=2, world_size=3)),
    ("GlobalOrderSampler", dict(sample_count=10, seed=7, rank=1, world_size=3, drop_last=True)),
    ("GlobalOrderSampler", dict(sample_count=9, shuffle=False, rank=1, world_size=2)),
]


def case_id(case: tuple[str, dict[str, Any]]) -> str:
    """A readable test id for a case."""
    name, kwargs = case
    return name + "(" + ",".join(f"{k}={v}" for k, v in kwargs.items()) + ")"


def build(name: str, kwargs: dict[str, Any]) -> Any:
    """Build the sampler of a case."""
    kwargs = dict(kwargs)
    start_iter = kwargs.pop("start_iter", 0)
    cls = getattr(samplers, name)
    if "dataset_len" in kwargs:
        sampler = cls(range(kwargs.pop("dataset_len")), **kwargs)
    else:
        sampler = cls(**kwargs)
    if start_iter:
        sampler.start_iter = start_iter
    return sampler


def iterate(sampler: Any) -> Iterator[int]:
    """One pass, as a training loop drives it: a finished finite epoch moves to the next epoch.

    torch-style samplers (dinov2's epoch sampler, the distributed and helios samplers) repeat
    an epoch unless ``set_epoch`` is called; the loop calls it once the epoch is done.
    ``GlobalOrderSampler`` moves on by itself; infinite samplers never end.
    """
    if hasattr(sampler, "set_epoch") and not isinstance(sampler, samplers.GlobalOrderSampler):
        state = sampler.state_dict()
        if state["position"] >= len(sampler):
            sampler.set_epoch(state["epoch"] + 1)
    return iter(sampler)


def epoch_length(sampler: Any) -> int | None:
    """Items per ``iterate`` call from the start of an epoch (``None`` for endless samplers)."""
    try:
        length = len(sampler)
    except TypeError:
        return None
    start_iter = getattr(sampler, "start_iter", 0)
    batch_size = getattr(sampler, "_batch_size", 1)
    return max(0, length - start_iter * batch_size)
