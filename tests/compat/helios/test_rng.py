"""helios' seeding helpers: default seed, seed_rngs, the default NumPy generator, state dicts."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from shardstream.compat.helios import rng
from shardstream.errors import NotReadyError


@pytest.fixture(autouse=True)
def global_generators(monkeypatch):
    """Each test starts without a default NumPy generator; global states are put back after."""
    torch_state, random_state = torch.get_rng_state(), random.getstate()
    monkeypatch.setattr(rng, "_DEFAULT_RNG", None)
    yield
    torch.set_rng_state(torch_state)
    random.setstate(random_state)


def test_default_seed_is_6691():
    assert rng.get_default_seed() == 6691


def test_default_numpy_rng_must_be_created_first():
    with pytest.raises(NotReadyError) as info:
        rng.get_default_numpy_rng()
    assert str(info.value) == (
        "error: default RNG has not been created. Did you forget to call create_default_rng?"
    )
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(NotReadyError):
        rng.get_rng_state_dict()


def test_create_default_numpy_rng_is_pcg64_with_the_seed():
    rng.create_default_numpy_rng(5)
    generator = rng.get_default_numpy_rng()
    assert isinstance(generator.bit_generator, np.random.PCG64)
    assert generator.random() == np.random.default_rng(5).random()
    rng.create_default_numpy_rng([1, 2])
    assert rng.get_default_numpy_rng().integers(1000) == np.random.default_rng([1, 2]).integers(
        1000
    )


def test_seed_rngs_seeds_torch_random_and_numpy():
    rng.seed_rngs(11)
    got = (torch.rand(2).tolist(), random.random(), rng.get_default_numpy_rng().random())
    torch.manual_seed(11)
    expected_torch = torch.rand(2).tolist()
    assert got == (
        expected_torch,
        random.Random(11).random(),
        np.random.default_rng(11).random(),
    )


def test_seed_rngs_defaults_to_6691_and_can_skip_torch():
    rng.seed_rngs()
    assert random.random() == random.Random(6691).random()
    assert rng.get_default_numpy_rng().random() == np.random.default_rng(6691).random()
    torch.manual_seed(3)
    rng.seed_rngs(4, skip_torch=True)
    torch_after = torch.rand(1).item()
    torch.manual_seed(3)
    assert torch_after == torch.rand(1).item()  # torch untouched
    assert random.random() == random.Random(4).random()


def test_state_dict_round_trip_restores_every_generator():
    rng.seed_rngs(21)
    state = rng.get_rng_state_dict()
    assert set(state) == (
        {"torch", "rand", "numpy", "cuda"}
        if torch.cuda.is_available()
        else {
            "torch",
            "rand",
            "numpy",
        }
    )
    first = (
        torch.rand(3).tolist(),
        random.random(),
        rng.get_default_numpy_rng().random(),
    )
    rng.seed_rngs(99)  # scramble
    rng.load_rng_state_dict(state)
    again = (
        torch.rand(3).tolist(),
        random.random(),
        rng.get_default_numpy_rng().random(),
    )
    assert again == first


def test_default_numpy_rng_state_dict_round_trip():
    wrapper = rng.DefaultNumpyRNG(seed=8)
    state = wrapper.state_dict()
    assert state["bit_generator"] == "PCG64"
    first = wrapper.generator.integers(1 << 30, size=4).tolist()
    wrapper.load_state_dict(state)
    assert wrapper.generator.integers(1 << 30, size=4).tolist() == first


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_generators_are_seeded_saved_and_restored():
    rng.seed_rngs(5)
    seeded = torch.rand(3, device="cuda").tolist()
    torch.cuda.manual_seed_all(5)
    assert torch.rand(3, device="cuda").tolist() == seeded
    state = rng.get_rng_state_dict()
    following = torch.rand(2, device="cuda").tolist()
    rng.seed_rngs(7)
    rng.load_rng_state_dict(state)
    assert torch.rand(2, device="cuda").tolist() == following
