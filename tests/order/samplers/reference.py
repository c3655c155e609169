"""Straightforward re-implementations of the upstream samplers, written from their descriptions.

These are the oracles of the parity tests: plain per-element loops (one ``torch.randint`` call
per element, exactly as dinov2 draws), no shortcuts, and none of shardstream's code. Sources:
``/work/shared/reference/dinov2-data.md`` section A and ``helios-datamodule.md`` section B.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Iterator

import numpy as np
import torch


def dinov2_epoch(*, size, sample_count, shuffle, seed, start, step, epoch) -> list[int]:
    """dinov2 EpochSampler: tile, choose without replacement with seed*epoch, stride."""
    count = (size + sample_count - 1) // sample_count
    tiled = np.tile(np.arange(sample_count), count)
    if shuffle:
        numpy_seed = seed * epoch if seed != 0 else epoch
        sequence = np.random.default_rng(numpy_seed).choice(tiled, size, replace=False)
    else:
        sequence = tiled[:size]
    return [int(x) for x in sequence[start::step]]


def forward_fisher_yates(n: int, generator: torch.Generator) -> Iterator[int]:
    """dinov2's lazy randperm: for i, draw j in [i, n), swap (always), yield position i."""
    perm = torch.arange(n, dtype=torch.int32 if n <= 2**31 else torch.int64)
    for i in range(n):
        j = torch.randint(i, n, size=(1,), generator=generator).item()
        value = perm[j].item()
        perm[j] = perm[i].item()
        perm[i] = value
        yield value


def dinov2_infinite(*, sample_count, shuffle, seed, start, step, advance=0) -> Iterator[int]:
    """dinov2 InfiniteSampler's stream."""

    def stream():
        if not shuffle:
            while True:
                yield from range(sample_count)[start::step]
        generator = torch.Generator().manual_seed(seed)
        while True:
            yield from itertools.islice(
                forward_fisher_yates(sample_count, generator), start, None, step
            )

    return itertools.islice(stream(), advance, None)


class Dinov2Sharded:
    """dinov2 ShardedInfiniteSampler, with its mutable advance and pass counter."""

    def __init__(self, *, sample_count, shuffle, seed, start, step, advance=0, new=False):
        self.sample_count, self.shuffle, self.seed = sample_count, shuffle, seed
        self.start, self.step, self.advance, self.new = start, step, advance, new
        self.iter_count = 0

    def __iter__(self) -> Iterator[int]:
        whole = self.advance // self.sample_count
        if whole > 0:
            self.advance -= whole * self.sample_count
            self.iter_count += whole
        yield from itertools.islice(self._stream(), self.advance, None)

    def _stream(self) -> Iterator[int]:
        n, start, step = self.sample_count, self.start, self.step
        if not self.shuffle:
            while True:
                yield from range(n)[start::step]
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        perm = torch.randperm(
            n, dtype=torch.int32 if n <= 2**31 else torch.int64, generator=generator
        )
        while True:
            generator.manual_seed(self.seed + start + (self.iter_count << 24))
            count = n // step
            dropped = n - step * count
            if dropped:
                warnings.warn(f"# of dropped samples: {dropped}")
            if self.new:
                picks = torch.randperm(count, dtype=torch.int64, generator=generator)
                values = perm[start::step][picks].tolist()
            else:
                values = [None] * count
                for i in range(count):
                    j = (
                        torch.randint(0, i + 1, size=(1,), generator=generator).item()
                        if i > 0
                        else 0
                    )
                    values[i] = values[j]
                    values[j] = perm[start + i * step].item()
            yield from values
            self.iter_count += 1


def helios_random(*, n, seed, epoch, batch_size, start_iter) -> list[int]:
    """helios ResumableRandomSampler's epoch."""
    generator = torch.Generator()
    generator.manual_seed(epoch + seed)
    indices = torch.randperm(n, generator=generator).tolist()
    return indices[start_iter * batch_size :]


def helios_distributed(
    *, n, num_replicas, rank, shuffle, seed, epoch, drop_last, batch_size, start_iter
):
    """helios ResumableDistributedSampler's epoch (torch's algorithm, then trimmed)."""
    if drop_last and n % num_replicas != 0:
        num_samples = math.ceil((n - num_replicas) / num_replicas)
    else:
        num_samples = math.ceil(n / num_replicas)
    total = num_samples * num_replicas
    if shuffle:
        generator = torch.Generator()
        generator.manual_seed(seed + epoch)
        indices = torch.randperm(n, generator=generator).tolist()
    else:
        indices = list(range(n))
    if not drop_last:
        padding = total - len(indices)
        if padding <= len(indices):
            indices += indices[:padding]
        else:
            indices += (indices * math.ceil(padding / len(indices)))[:padding]
    else:
        indices = indices[:total]
    return indices[rank:total:num_replicas][start_iter * batch_size :]


def take(iterator, count: int) -> list[int]:
    """The first ``count`` items of ``iterator`` as Python ints."""
    return [int(x) for x in itertools.islice(iterator, count)]
