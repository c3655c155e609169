"""shardstream's helios API is helios 2.0's throughout (issue 13, item 5).

It used to mix releases: ``get_default_numpy_rng()`` returned helios 1.x's wrapper,
``pin_memory`` defaulted to 1.x's ``True``, ``debug_mode`` (1.x) sat next to the training phases
(2.0), and ``DataModule._create_dataset`` (1.x) was still there. The expected values below are
helios 2.0.0's, written out by hand from its source (``helios/core/rng.py``,
``helios/data/datamodule.py``).
"""

from __future__ import annotations

import dataclasses
import inspect
import random

import numpy as np
import pytest
import torch

from shardstream.compat.helios import (
    DataLoaderParams,
    DataModule,
    ResumableSequentialSampler,
    create_dataloader,
    rng,
    seed_rngs,
)

from .data import IndexDataset

#: helios 2.0.0's DataLoaderParams fields and defaults, in order (create_dataloader's arguments
#: after ``dataset`` are the same, with ``is_distributed=False``).
HELIOS_2_PARAMS = [
    ("random_seed", 6691),
    ("batch_size", 1),
    ("shuffle", False),
    ("num_workers", 0),
    ("pin_memory", False),
    ("drop_last", False),
    ("is_distributed", None),
    ("sampler", None),
    ("collate_fn", None),
    ("prefetch_factor", None),
    ("persistent_workers", False),
    ("pin_memory_device", ""),
    ("timeout", 0),
    ("multiprocessing_context", None),
]


@pytest.fixture
def global_generators():
    """Put torch's, Python's and helios' default generators back after the test."""
    saved = torch.get_rng_state(), random.getstate(), rng._DEFAULT_RNG
    yield
    torch.set_rng_state(saved[0])
    random.setstate(saved[1])
    rng._DEFAULT_RNG = saved[2]


def test_get_default_numpy_rng_returns_the_numpy_generator(global_generators):
    seed_rngs(17)
    generator = rng.get_default_numpy_rng()
    assert type(generator) is np.random.Generator
    assert isinstance(generator.bit_generator, np.random.PCG64)
    assert generator.random() == np.random.default_rng(17).random()
    assert rng.get_default_numpy_rng() is generator  # the same one until re-created
    state = rng.get_rng_state_dict()
    first = generator.integers(1 << 40, size=3).tolist()
    rng.load_rng_state_dict(state)
    assert rng.get_default_numpy_rng().integers(1 << 40, size=3).tolist() == first


def test_params_and_create_dataloader_have_helios_2_fields_and_defaults():
    fields = [(f.name, f.default) for f in dataclasses.fields(DataLoaderParams)]
    assert fields == HELIOS_2_PARAMS
    parameters = inspect.signature(create_dataloader).parameters
    assert [(name, p.default) for name, p in parameters.items() if name != "dataset"] == [
        (name, False if name == "is_distributed" else default) for name, default in HELIOS_2_PARAMS
    ]


def test_pin_memory_is_off_by_default():
    loader, _ = create_dataloader(IndexDataset(5), batch_size=2)
    assert loader.pin_memory is False
    assert [batch.tolist() for batch in loader] == [[0, 1], [2, 3], [4]]
    assert DataLoaderParams().pin_memory is False


def test_debug_mode_is_gone():
    with pytest.raises(TypeError, match="debug_mode"):
        create_dataloader(IndexDataset(3), debug_mode=True)
    with pytest.raises(TypeError, match="debug_mode"):
        DataLoaderParams(debug_mode=True)
    # a config table that still has it: ignored, like any key that is not a field
    params = DataLoaderParams.from_dict({"debug_mode": True, "num_workers": 2})
    assert params == DataLoaderParams(num_workers=2)


def test_datamodule_registers_with_the_helios_2_helpers_only():
    assert not hasattr(DataModule, "_create_dataset")
    data = IndexDataset(6)

    class Own(DataModule):
        """A helios 2.0 module may use the name ``_create_dataset`` for its own purpose."""

        def _create_dataset(self):
            raise AssertionError("the base class must not call a subclass's _create_dataset")

        def setup(self) -> None:
            self._add_train_phase(data, {"batch_size": 4})
            self._add_valid_dataset(data, DataLoaderParams(batch_size=6))
            self._add_test_dataset(data, {"batch_size": 5})

    module = Own()
    module.setup()
    loader, sampler = module.train_dataloader()
    assert type(sampler) is ResumableSequentialSampler
    assert [b.tolist() for b in loader] == [[0, 1, 2, 3], [4, 5]]
    assert [b.tolist() for b in module.valid_dataloader()[0]] == [[0, 1, 2, 3, 4, 5]]
    assert [b.tolist() for b in module.test_dataloader()[0]] == [[0, 1, 2, 3, 4], [5]]
