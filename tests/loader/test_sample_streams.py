"""The loader's quick per-sample generators are sample_rng's: the same PCG64 state (its seeding
words from C, checked against numpy's SeedSequence), the same draws, spawns and seed sequence."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from shardstream.errors import ConfigError
from shardstream.loader.sample_streams import SampleSeed, sample_generator
from shardstream.order.samplers.seeds import sample_rng
from shardstream.vision import _masking

EDGES = [
    (0, 0, 0),
    (0, 0, 1),
    (2**32 - 1, 2**32 - 1, 2**32 - 1),
    (1, 2, 2**32),  # two position words
    (7, 3, 2**64 - 1),
    (123, 0, 10**12),
]


def _cases(count: int = 300) -> list[tuple[int, int, int]]:
    rng = np.random.default_rng(2026)
    seeds = rng.integers(0, 2**32, count).tolist()
    epochs = rng.integers(0, 2**32, count).tolist()
    positions = [
        int(p) >> int(s) for p, s in zip(rng.integers(0, 2**63, count), rng.integers(0, 63, count))
    ]
    return EDGES + list(zip(seeds, epochs, positions))


def test_seed_words_are_numpys_seed_sequence_state():
    for seed, epoch, position in _cases():
        want = np.random.SeedSequence([seed, epoch], spawn_key=(position,)).generate_state(
            4, np.uint64
        )
        assert _masking.seed_words(seed, epoch, position) == tuple(want.tolist())


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((2**32, 0, 0), ValueError),
        ((0, -1, 0), OverflowError),
        ((0, 0, 2**64), OverflowError),
        ((0, 0, 1.0), TypeError),
    ],
)
def test_seed_words_refuses_values_outside_its_ranges(args, error):
    with pytest.raises(error):
        _masking.seed_words(*args)


def test_sample_generator_is_sample_rng():
    for args in _cases(100) + [(5, 1, 2**64), (5, 1, 2**70)]:  # the last two: numpy's own path
        got, want = sample_generator(*args), sample_rng(*args)
        assert got.bit_generator.state == want.bit_generator.state
        np.testing.assert_array_equal(got.random(7), want.random(7))
        assert got.integers(2**62) == want.integers(2**62)


def test_sample_generator_seed_sequence_spawns_and_pickles_as_numpys():
    got, want = sample_generator(9, 4, 77), sample_rng(9, 4, 77)
    sequence = got.bit_generator.seed_seq
    assert isinstance(sequence, SampleSeed)
    assert sequence.entropy == [9, 4] and sequence.spawn_key == (77,) and sequence.pool_size == 4
    for count in (2, 1):  # repeated spawns continue where the last stopped, as numpy's
        for child, twin in zip(got.spawn(count), want.spawn(count)):
            np.testing.assert_array_equal(child.random(3), twin.random(3))
    np.testing.assert_array_equal(
        sequence.generate_state(3), want.bit_generator.seed_seq.generate_state(3)
    )
    copy = pickle.loads(pickle.dumps(sample_generator(9, 4, 77)))
    assert copy.bit_generator.state == sample_rng(9, 4, 77).bit_generator.state


@pytest.mark.parametrize("args", [(-1, 0, 0), (0, 2**32, 0), (0, 0, -3), (0.5, 0, 0)])
def test_sample_generator_refuses_what_sample_rng_refuses(args):
    with pytest.raises(ConfigError):
        sample_rng(*args)
    with pytest.raises(ConfigError):
        sample_generator(*args)
