"""create_dataloader, DataLoaderParams, Dataset and DatasetSplit, with real loaders and files."""

from __future__ import annotations

import contextlib
import inspect
import random

import numpy as np
import pytest
import torch
from torch.utils.data import RandomSampler, default_collate

from shardstream.compat.helios import (
    DataLoaderParams,
    Dataset,
    DatasetSplit,
    ResumableDistributedSampler,
    ResumableRandomSampler,
    ResumableSequentialSampler,
    create_dataloader,
    rng,
    seed_worker,
)
from shardstream.errors import ConfigError, ConfigTypeError, NoProcessGroupError

from ...contracts.dist_harness import process_group_of_one
from .data import (
    IndexDataset,
    PackedDataset,
    SeedProbe,
    Unsized,
    collate_list,
    image_of,
    indices,
    write_packed,
)

N = 20
BATCH = 3
BATCHES = 7  # ceil(20 / 3)


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """A real packed file of 20 samples, as a torch data set."""
    return PackedDataset(write_packed(tmp_path_factory.mktemp("helios") / "set.msgpack", N))


@pytest.fixture
def global_generators():
    """Put torch's and Python's global generators back after the test."""
    torch_state, random_state, numpy_rng = (
        torch.get_rng_state(),
        random.getstate(),
        rng._DEFAULT_RNG,
    )
    yield
    torch.set_rng_state(torch_state)
    random.setstate(random_state)
    rng._DEFAULT_RNG = numpy_rng


def loader_of(dataset, **kwargs):
    kwargs.setdefault("pin_memory", False)
    if kwargs.get("num_workers"):
        kwargs.setdefault("multiprocessing_context", "fork")
    return create_dataloader(dataset, **kwargs)


# --- DatasetSplit -------------------------------------------------------------------------


def test_dataset_split_values_and_from_str():
    assert [(s.name, s.value) for s in DatasetSplit] == [("TRAIN", 0), ("VALID", 1), ("TEST", 2)]
    assert DatasetSplit.from_str("train") is DatasetSplit.TRAIN
    assert DatasetSplit.from_str("valid") is DatasetSplit.VALID
    assert DatasetSplit.from_str("test") is DatasetSplit.TEST


@pytest.mark.parametrize("label", ["val", "Train", "TEST", " train", "validation", "", None, 0])
def test_dataset_split_from_str_refuses_anything_else(label):
    with pytest.raises(ConfigError) as info:
        DatasetSplit.from_str(label)
    assert str(info.value) == (
        "invalid dataset split. Expected one of 'train', 'test', or 'valid', "
        f"but received '{label}'"
    )
    assert isinstance(info.value, ValueError)


# --- DataLoaderParams and Dataset ----------------------------------------------------------

DEFAULTS = {
    "random_seed": 6691,
    "batch_size": 1,
    "shuffle": False,
    "num_workers": 0,
    "pin_memory": False,
    "drop_last": False,
    "is_distributed": None,
    "sampler": None,
    "collate_fn": None,
    "prefetch_factor": None,
    "persistent_workers": False,
    "pin_memory_device": "",
    "timeout": 0,
    "multiprocessing_context": None,
}


def test_params_defaults_and_field_order():
    assert DataLoaderParams().to_dict() == DEFAULTS
    assert list(DataLoaderParams().to_dict()) == list(DEFAULTS)


def test_create_dataloader_has_the_same_arguments_and_defaults():
    parameters = inspect.signature(create_dataloader).parameters
    assert list(parameters) == ["dataset", *DEFAULTS]
    defaults = {name: p.default for name, p in parameters.items() if name != "dataset"}
    assert defaults == {**DEFAULTS, "is_distributed": False}


def test_to_dict_is_shallow():
    sampler = ResumableSequentialSampler(IndexDataset(3))
    params = DataLoaderParams(batch_size=4, sampler=sampler, collate_fn=collate_list)
    table = params.to_dict()
    assert table["sampler"] is sampler and table["collate_fn"] is collate_list
    assert table == {**DEFAULTS, "batch_size": 4, "sampler": sampler, "collate_fn": collate_list}
    table["batch_size"] = 9
    assert params.batch_size == 4  # a new dict each time


def test_from_dict_copies_fields_but_not_sampler_or_unknown_keys():
    sampler = ResumableSequentialSampler(IndexDataset(3))
    params = DataLoaderParams.from_dict(
        {
            "batch_size": 8,
            "shuffle": True,
            "num_workers": 2,
            "is_distributed": False,
            "collate_fn": collate_list,
            "timeout": 5,
            "sampler": sampler,
            "unknown": 1,
            "lr": 0.1,
        }
    )
    assert params.to_dict() == {
        **DEFAULTS,
        "batch_size": 8,
        "shuffle": True,
        "num_workers": 2,
        "is_distributed": False,
        "collate_fn": collate_list,
        "timeout": 5,
    }
    assert params.sampler is None
    assert DataLoaderParams.from_dict({}) == DataLoaderParams()


def test_from_dict_of_to_dict_round_trips_without_the_sampler():
    params = DataLoaderParams(7, 2, True, 1, False, True, True, None, collate_list, 3)
    assert DataLoaderParams.from_dict(params.to_dict()) == params
    assert params.prefetch_factor == 3 and params.random_seed == 7


def test_dataset_dict_is_the_create_dataloader_arguments():
    data = IndexDataset(4)
    entry = Dataset(data, DataLoaderParams(batch_size=2))
    table = entry.dict()
    assert table == {**DEFAULTS, "batch_size": 2, "dataset": data}
    assert set(table) == set(inspect.signature(create_dataloader).parameters)
    loader, sampler = create_dataloader(**{**table, "pin_memory": False})
    assert [b.tolist() for b in loader] == [[0, 1], [2, 3]]


# --- create_dataloader: sampler choice and loader arguments --------------------------------


def test_sequential_sampler_by_default_and_loader_arguments(packed):
    loader, sampler = loader_of(packed, batch_size=BATCH)
    assert type(sampler) is ResumableSequentialSampler
    assert loader.sampler is sampler
    assert sampler.state_dict()["batch_size"] == BATCH
    assert (loader.batch_size, loader.num_workers, loader.drop_last) == (BATCH, 0, False)
    assert loader.worker_init_fn is seed_worker
    assert loader.collate_fn is default_collate
    assert (loader.prefetch_factor, loader.persistent_workers, loader.timeout) == (None, False, 0)
    assert loader.multiprocessing_context is None
    batches = list(loader)
    assert indices(batches) == [list(range(i, min(i + BATCH, N))) for i in range(0, N, BATCH)]
    assert torch.equal(batches[2]["image"][1], torch.from_numpy(image_of(7)))  # real samples
    assert batches[2]["label"].tolist() == [0, 1, 2]


def test_shuffle_gives_the_random_sampler_seeded_with_random_seed(packed):
    loader, sampler = loader_of(packed, batch_size=BATCH, shuffle=True, random_seed=42)
    assert type(sampler) is ResumableRandomSampler
    assert sampler.state_dict()["seed"] == 42 and sampler.state_dict()["batch_size"] == BATCH
    sampler.set_epoch(2)
    got = sum(indices(loader), [])
    assert got == torch.randperm(N, generator=torch.Generator().manual_seed(44)).tolist()
    assert loader_of(packed, shuffle=True)[1].state_dict()["seed"] == 6691


def test_pin_memory_is_off_by_default_and_can_be_asked_for(packed):
    loader, _ = create_dataloader(packed)
    assert loader.pin_memory is False
    assert next(iter(loader))["image"].is_pinned() is False
    cuda = torch.cuda.is_available()
    # without an accelerator torch ignores pin_memory and says so
    with contextlib.nullcontext() if cuda else pytest.warns(UserWarning, match="pin_memory"):
        loader, _ = create_dataloader(packed, pin_memory=True)
        batch = next(iter(loader))
    assert loader.pin_memory is True
    assert batch["image"].is_pinned() is cuda


def test_distributed_sampler_in_a_group_of_one_and_its_batch_size_quirk(packed):
    with pytest.raises(NoProcessGroupError):  # helios' torch-derived sampler needs a group
        loader_of(packed, is_distributed=True)
    with process_group_of_one():
        loader, sampler = loader_of(
            packed, batch_size=4, is_distributed=True, shuffle=True, random_seed=5, drop_last=True
        )
    assert type(sampler) is ResumableDistributedSampler
    assert (sampler.num_replicas, sampler.rank, sampler.shuffle, sampler.seed) == (1, 0, True, 5)
    assert sampler.drop_last is True and loader.drop_last is True
    order = torch.randperm(N, generator=torch.Generator().manual_seed(5)).tolist()
    assert sum(indices(loader), []) == order
    # helios does not pass batch_size to the distributed sampler: start_iter counts samples
    assert sampler.state_dict()["batch_size"] == 1
    sampler.start_iter = 2
    assert indices(loader)[0] == order[2:6]  # 2 samples skipped, not 2 batches (8 samples)
    assert sum(indices(loader), []) == order[2:18]  # the last 2 make no full batch of 4


def test_a_given_resumable_sampler_is_used_as_is(packed):
    mine = ResumableRandomSampler(packed, seed=1, batch_size=5)
    loader, sampler = loader_of(packed, sampler=mine, batch_size=5, shuffle=False)
    assert sampler is mine and loader.sampler is mine
    assert (
        sum(indices(loader), [])
        == torch.randperm(N, generator=torch.Generator().manual_seed(1)).tolist()
    )
    dist = ResumableDistributedSampler(packed, num_replicas=2, rank=1, shuffle=False)
    loader, sampler = loader_of(packed, sampler=dist, batch_size=4)
    assert sampler is dist and sum(indices(loader), []) == list(range(1, N, 2))


def test_a_sampler_that_is_not_resumable_is_a_type_error(packed):
    torch_sampler = RandomSampler(packed)
    with pytest.raises(ConfigTypeError) as info:
        create_dataloader(packed, sampler=torch_sampler)
    assert str(info.value) == (
        "error: expected sampler to derive from one of ResumableSampler or "
        "ResumableDistributedSampler, but received "
        "<class 'torch.utils.data.sampler.RandomSampler'>"
    )
    assert isinstance(info.value, TypeError)
    with pytest.raises(TypeError, match="but received <class 'list'>"):
        create_dataloader(packed, sampler=[0, 1, 2])


def test_an_empty_or_unsized_dataset_is_refused():
    with pytest.raises(ConfigError) as info:
        create_dataloader(IndexDataset(0))
    assert str(info.value) == (
        "create_dataloader: dataset IndexDataset is empty; a loader needs at least one sample"
    )
    assert not isinstance(info.value, TypeError)
    with pytest.raises(ConfigTypeError) as info:
        create_dataloader(Unsized())
    assert str(info.value) == (
        "create_dataloader: dataset must be a map-style data set with a length, got Unsized"
    )


def test_worker_options_reach_the_loader(packed):
    loader, _ = loader_of(
        packed,
        num_workers=2,
        prefetch_factor=4,
        persistent_workers=True,
        multiprocessing_context="spawn",
        timeout=30,
    )
    assert (loader.num_workers, loader.prefetch_factor, loader.persistent_workers) == (2, 4, True)
    assert loader.multiprocessing_context is not None and loader.timeout == 30
    with pytest.raises(ValueError, match="prefetch_factor"):  # torch's own check, as in helios
        loader_of(packed, num_workers=0, prefetch_factor=4)


def test_worker_and_multiprocessing_arguments_reach_the_loader(packed):
    loader, _ = loader_of(
        packed, num_workers=2, prefetch_factor=3, persistent_workers=True, timeout=30
    )
    assert (loader.num_workers, loader.prefetch_factor, loader.persistent_workers) == (2, 3, True)
    assert loader.timeout == 30
    assert loader.multiprocessing_context.get_start_method() == "fork"
    for _ in range(2):  # two epochs through the same persistent workers
        assert sum(indices(loader), []) == list(range(N))


# --- worker seeding ------------------------------------------------------------------------


def probe(seed: int, num_workers: int = 2, n: int = 8) -> list[dict]:
    torch.manual_seed(seed)
    loader, _ = loader_of(SeedProbe(n), num_workers=num_workers, collate_fn=collate_list)
    return [item for batch in loader for item in batch]


def expected_probe(seed: int, num_workers: int = 2, n: int = 8) -> list[dict]:
    """What helios' seeding gives: worker w seeds random/NumPy with (base + w) % 2**32."""
    torch.manual_seed(seed)
    base = torch.empty((), dtype=torch.int64).random_().item()  # the loader's base seed
    streams = {}
    out = []
    for index in range(n):  # batch i (of one sample) goes to worker i % num_workers
        worker = index % num_workers
        if worker not in streams:
            worker_seed = (base + worker) % 2**32
            streams[worker] = (random.Random(worker_seed), np.random.default_rng(worker_seed))
        py, npy = streams[worker]
        out.append(
            {
                "index": index,
                "worker": worker,
                "torch_seed": base + worker,
                "random": py.random(),
                "numpy": float(npy.random()),
            }
        )
    return out


def test_workers_seed_random_and_numpy_from_torch_base_seed(global_generators):
    got = probe(123)
    assert got == expected_probe(123)
    assert probe(123) == got  # reproducible for the same torch seed
    other = probe(124)
    assert [r["random"] for r in other] != [r["random"] for r in got]
    assert other == expected_probe(124)


def test_seed_worker_in_this_process(global_generators):
    torch.manual_seed(2**40 + 5)
    seed_worker(0)
    assert random.random() == random.Random((2**40 + 5) % 2**32).random()
    generator = rng.get_default_numpy_rng()
    assert generator.random() == np.random.default_rng(5).random()
    torch_next = torch.rand(1).item()
    torch.manual_seed(2**40 + 5)
    assert torch.rand(1).item() == torch_next  # torch itself is not re-seeded


# --- resumption through start_iter -----------------------------------------------------------


def full_epoch(dataset, epoch: int, **kwargs) -> list[list[int]]:
    loader, sampler = loader_of(dataset, **kwargs)
    sampler.set_epoch(epoch)
    return indices(loader)


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize(
    ("shuffle", "drop_last"), [(False, False), (True, False), (True, True)], ids=str
)
def test_resume_with_start_iter_continues_the_epoch(packed, num_workers, shuffle, drop_last):
    kwargs = dict(batch_size=BATCH, shuffle=shuffle, drop_last=drop_last, num_workers=num_workers)
    full = full_epoch(packed, 1, **kwargs)
    order = torch.randperm(N, generator=torch.Generator().manual_seed(6692)).tolist()
    if not shuffle:
        order = list(range(N))
    batches = N // BATCH if drop_last else BATCHES
    assert full == [order[i : i + BATCH] for i in range(0, batches * BATCH, BATCH)]
    for consumed in (1, 4, batches - 1, batches):
        # the interrupted run: consume some batches of epoch 1, then stop
        loader, sampler = loader_of(packed, **kwargs)
        sampler.set_epoch(1)
        iterator = iter(loader)
        first = [next(iterator)["index"].tolist() for _ in range(consumed)]
        del iterator
        # the restarted run: a new loader told how many batches were consumed
        loader, sampler = loader_of(packed, **kwargs)
        sampler.set_epoch(1)
        sampler.start_iter = consumed
        rest = indices(loader)
        assert first + rest == full, consumed
        assert len(loader) == batches  # len keeps counting the whole epoch, as in helios


def test_start_iter_stays_set_for_later_epochs_as_in_helios(packed):
    loader, sampler = loader_of(packed, batch_size=BATCH, shuffle=True)
    sampler.start_iter = 2
    sampler.set_epoch(3)
    order = torch.randperm(N, generator=torch.Generator().manual_seed(6691 + 3)).tolist()
    assert sum(indices(loader), []) == order[2 * BATCH :]
    sampler.start_iter = 0
    assert sum(indices(loader), []) == order


def test_resume_from_a_sampler_state_dict_in_process(packed):
    kwargs = dict(batch_size=BATCH, shuffle=True)
    full = full_epoch(packed, 0, **kwargs)
    loader, sampler = loader_of(packed, **kwargs)
    iterator = iter(loader)
    first = [next(iterator)["index"].tolist() for _ in range(3)]
    state = sampler.state_dict()
    assert state["position"] == 3 * BATCH
    loader, sampler = loader_of(packed, **kwargs)
    sampler.load_state_dict(state)
    assert first + indices(loader) == full
