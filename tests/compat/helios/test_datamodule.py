"""DataModule: lifecycle, data set registration, loaders, phases and the seed's example."""

from __future__ import annotations

import copy

import pytest
import torch

from shardstream.compat.helios import (
    DataLoaderParams,
    DataModule,
    Dataset,
    ResumableDistributedSampler,
    ResumableRandomSampler,
    ResumableSequentialSampler,
)
from shardstream.errors import NotReadyError

from ...contracts.dist_harness import process_group_of_one
from .data import CIFAR10, CIFAR10_ROOT_ENV, PackedDataset, image_of, indices, write_packed
from .seed_datamodule_example import MyDataModule


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """Three real packed data sets of 12, 6 and 5 samples."""
    root = tmp_path_factory.mktemp("module")
    return {
        name: PackedDataset(write_packed(root / f"{name}.msgpack", n))
        for name, n in (("train", 12), ("valid", 6), ("test", 5))
    }


class Recording(DataModule):
    """Registers the three sets with the current helpers and records every hook call."""

    def __init__(self, sets, events):
        super().__init__()
        self.sets, self.events = sets, events

    def prepare_data(self) -> None:
        self.events.append(("prepare_data", self.is_distributed, self._trainer))

    def setup(self) -> None:
        self.events.append(("setup", self.is_distributed, self.trainer))
        self._add_train_phase(self.sets["train"], DataLoaderParams(batch_size=4, pin_memory=False))
        self._add_valid_dataset(self.sets["valid"], {"batch_size": 2, "pin_memory": False})
        self._add_test_dataset(self.sets["test"], {"batch_size": 5, "pin_memory": False})

    def teardown(self) -> None:
        self.events.append(("teardown",))


def drive(module: DataModule, trainer) -> list:
    """helios' trainer order: prepare, configure, setup, the loaders, teardown."""
    module.prepare_data()
    module.is_distributed = False
    module.trainer = trainer
    module.setup()
    out = []
    for make in (module.train_dataloader, module.valid_dataloader, module.test_dataloader):
        loader, sampler = make()
        out.append((type(sampler).__name__, indices(loader)))
    module.teardown()
    return out


def test_lifecycle_order_and_loaders(sets):
    events, trainer = [], object()
    module = Recording(sets, events)
    loaders = drive(module, trainer)
    assert events == [("prepare_data", False, None), ("setup", False, trainer), ("teardown",)]
    assert loaders == [
        ("ResumableSequentialSampler", [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]),
        ("ResumableSequentialSampler", [[0, 1], [2, 3], [4, 5]]),
        ("ResumableSequentialSampler", [[0, 1, 2, 3, 4]]),
    ]
    assert module.train_dataset is sets["train"]
    assert module.valid_dataset is sets["valid"]
    assert module.test_dataset is sets["test"]
    assert module.get_train_steps_per_epoch() == 3


def test_initial_state_and_unconfigured_module(sets):
    module = Recording(sets, [])
    assert module.is_distributed is False
    assert (module.train_dataset, module.valid_dataset, module.test_dataset) == (None, None, None)
    assert (module.train_dataloader(), module.valid_dataloader(), module.test_dataloader()) == (
        None,
        None,
        None,
    )
    assert module.state_dict() == {}
    with pytest.raises(NotReadyError) as info:
        module.trainer  # noqa: B018
    assert str(info.value) == (
        "Recording.trainer was read before a trainer was assigned (set datamodule.trainer first)"
    )
    with pytest.raises(NotReadyError) as info:
        module.get_train_steps_per_epoch()
    assert str(info.value) == (
        "get_train_steps_per_epoch() called but no training dataset has been configured."
    )
    assert isinstance(info.value, RuntimeError)


def test_default_hooks_do_nothing_and_setup_is_abstract():
    class Minimal(DataModule):
        def setup(self) -> None:
            pass

    module = Minimal()
    before = copy.copy(vars(module))
    assert module.prepare_data() is None and module.teardown() is None
    assert vars(module) == before
    with pytest.raises(TypeError, match="abstract"):
        DataModule()  # type: ignore[abstract]

    class NoSetup(DataModule):
        pass

    with pytest.raises(TypeError, match="setup"):
        NoSetup()  # type: ignore[abstract]


def test_each_call_builds_a_new_loader_and_sampler(sets):
    module = Recording(sets, [])
    module.trainer = "t"
    module.setup()
    (a, sa), (b, sb) = module.train_dataloader(), module.train_dataloader()
    assert a is not b and sa is not sb
    sa.start_iter = 2  # a new loader does not inherit a previous sampler's position
    assert module.train_dataloader()[1].start_iter == 0


def test_is_distributed_fills_params_left_as_none_and_is_stored(sets):
    module = Recording(sets, [])
    module.trainer = "t"
    module.setup()
    module.is_distributed = True
    with process_group_of_one():  # helios' distributed sampler needs one (torch's does)
        _, sampler = module.train_dataloader()
        assert type(sampler) is ResumableDistributedSampler
        assert module._train_dataset.params.is_distributed is True  # written back
        module.is_distributed = False
        _, sampler = module.train_dataloader()
        assert type(sampler) is ResumableDistributedSampler  # the stored flag wins from now on
    assert module._valid_dataset.params.is_distributed is None  # not built yet
    _, sampler = module.valid_dataloader()
    assert type(sampler) is ResumableSequentialSampler
    assert module._valid_dataset.params.is_distributed is False


def test_explicit_is_distributed_in_params_is_kept(sets):
    class Explicit(DataModule):
        def setup(self) -> None:
            self._add_train_phase(
                sets["train"], {"is_distributed": False, "shuffle": True, "pin_memory": False}
            )

    module = Explicit()
    module.is_distributed = True
    module.setup()
    _, sampler = module.train_dataloader()
    assert type(sampler) is ResumableRandomSampler


def test_params_objects_are_deep_copied_and_dicts_converted(sets):
    params = DataLoaderParams(batch_size=3, pin_memory=False)

    class Copies(DataModule):
        def setup(self) -> None:
            self._add_train_phase(sets["train"], params)
            self._add_valid_dataset(sets["valid"], {"batch_size": 6, "sampler": "ignored"})

    module = Copies()
    module.setup()
    params.batch_size = 99
    assert module._train_dataset == Dataset(
        sets["train"], DataLoaderParams(batch_size=3, pin_memory=False)
    )
    assert module._train_dataset.params is not params
    assert module._valid_dataset.params == DataLoaderParams(batch_size=6)


def test_replacing_valid_and_test_sets(sets):
    module = Recording(sets, [])
    module.trainer = "t"
    module.setup()
    module._add_valid_dataset(sets["test"], {"batch_size": 1})
    module._add_test_dataset(sets["valid"], {"batch_size": 1})
    assert module.valid_dataset is sets["test"] and module.test_dataset is sets["valid"]


def test_training_phases_advance_and_survive_a_checkpoint(sets):
    class Phases(DataModule):
        def setup(self) -> None:
            self._add_train_phase(sets["train"], {"batch_size": 4, "pin_memory": False})
            self._add_train_phase(sets["valid"], {"batch_size": 3, "pin_memory": False})
            self._add_train_phase(sets["test"], {"batch_size": 5, "pin_memory": False})

    module = Phases()
    module.setup()
    assert module.state_dict() == {"phase": 0}
    assert module.train_dataset is sets["train"] and module.get_train_steps_per_epoch() == 3
    module.advance_train_phase()
    assert module.state_dict() == {"phase": 1}
    assert module.train_dataset is sets["valid"] and module.get_train_steps_per_epoch() == 2
    module.advance_train_phase()
    module.advance_train_phase()  # already at the last phase: stays
    assert module.state_dict() == {"phase": 2} and module.train_dataset is sets["test"]

    restored = Phases()
    restored.setup()
    restored.load_state_dict({"phase": 1})
    assert restored.train_dataset is sets["valid"] and restored.state_dict() == {"phase": 1}
    restored.load_state_dict({})  # no "phase": ignored
    assert restored.state_dict() == {"phase": 1}

    without_phases = Recording(sets, [])
    without_phases.load_state_dict({"phase": 1})  # no phases: ignored
    without_phases.advance_train_phase()
    assert without_phases.state_dict() == {} and without_phases.train_dataset is None


def test_seed_example_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.setenv(CIFAR10_ROOT_ENV, str(tmp_path / "cifar"))
    module = MyDataModule()
    module.prepare_data()
    assert sorted(p.name for p in (tmp_path / "cifar").iterdir() if p.suffix == ".msgpack") == [
        "test.msgpack",
        "train.msgpack",
    ]
    assert vars(module) == vars(MyDataModule())  # prepare_data stored no state
    module.setup()
    assert isinstance(module.train_dataset, CIFAR10) and len(module.train_dataset) == 20
    loader, sampler = module.train_dataloader()
    assert type(sampler) is ResumableRandomSampler
    batches = list(loader)
    order = torch.randperm(20, generator=torch.Generator().manual_seed(6691)).tolist()
    assert indices(batches) == [order[i : i + 4] for i in range(0, 20, 4)]
    assert batches[0]["image"].shape == (4, 32, 32, 3)
    assert torch.equal(batches[0]["image"][0], torch.from_numpy(image_of(order[0], (32, 32, 3))))
    for make in (module.valid_dataloader, module.test_dataloader):
        loader, sampler = make()
        assert type(sampler) is ResumableSequentialSampler
        assert indices(loader) == [[i] for i in range(6)]
    assert module.get_train_steps_per_epoch() == 5
    assert module.teardown() is None
