"""IterableDataset resumption: a state taken after k items (or k batches) continues exactly.

Direct iteration goes through the shared save/restore harness (``tests/order/stateful.py``).
Real DataLoaders (0 and 2 workers) are checked at hypothesis-drawn k: the state the consumer
reached is computed with ``state_after(k)``, loaded into a new dataset and a new loader (new
worker processes), and the continued stream must equal the uninterrupted one; once more in a
fresh Python process.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream import ListReader
from shardstream.compat.datadings.torch_data import Compose, IterableDataset
from shardstream.errors import ConfigError, StateMismatchError

from ....contracts.stateful import run_save_restore
from .common import first_error, make_loader, numbered_dataset, run_epochs, write_numbered

ROOT = Path(__file__).resolve().parents[4]
SIZES = (11, 16, 23, 30)
EPOCHS = 3


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("resume")
    return {n: write_numbered(root / f"n{n}.msgpack", n) for n in SIZES}


def list_dataset(n: int, rank: int, world_size: int) -> IterableDataset:
    samples = [{"key": f"s{i}", "i": i} for i in range(n)]
    dataset = IterableDataset(
        ListReader(samples),
        transforms={"i": Compose(lambda v, offset: v + offset)},
        rng=lambda sample: {"offset": 1000},
    )
    dataset.rank, dataset.world_size = rank, world_size
    return dataset


@pytest.mark.parametrize(("n", "rank", "world_size"), [(13, 0, 1), (13, 1, 3), (10, 2, 4)])
def test_direct_iteration_save_restore_harness(n, rank, world_size):
    make = functools.partial(list_dataset, n, rank, world_size)
    reference = run_save_restore(make, total=3 * n // world_size + 1, normalize=lambda s: s["i"])
    assert all(sample["i"] >= 1000 for sample in reference)  # transforms apply after a resume
    state = make().state_dict()
    assert state == {
        "kind": "IterableDataset",
        "length": n,
        "rank": rank,
        "world_size": world_size,
        "epoch": 0,
        "num_workers": None,
        "next_worker": 0,
        "consumed": [],
    }


def test_direct_iteration_state_counts_yielded_samples():
    dataset = list_dataset(10, 1, 2)  # epoch 0: shard 1 = [5, 10); epoch 1: shard 0
    iterator = iter(dataset)
    assert [next(iterator)["i"] for _ in range(3)] == [1005, 1006, 1007]
    state = dataset.state_dict()
    assert (state["epoch"], state["num_workers"], state["consumed"]) == (0, 1, [3])
    assert [s["i"] for s in iterator] == [1008, 1009]
    assert dataset.state_dict()["epoch"] == 1 and dataset.state_dict()["consumed"] == []
    restored = list_dataset(10, 1, 2)
    restored.load_state_dict(state)
    assert restored.epoch == 0
    assert [s["i"] for s in restored] == [1008, 1009]
    assert [s["i"] for s in restored] == [1000, 1001, 1002, 1003, 1004]


@functools.cache
def reference_batches(path, n, rank, world_size, workers, batch_size, drop_last):
    dataset = numbered_dataset(path, rank=rank, world_size=world_size)
    loader = make_loader(dataset, num_workers=workers, batch_size=batch_size, drop_last=drop_last)
    return sum(run_epochs(loader, EPOCHS), [])


def resumed_batches(path, rank, world_size, workers, batch_size, drop_last, state):
    dataset = numbered_dataset(path, rank=rank, world_size=world_size)
    dataset.load_state_dict(json.loads(json.dumps(state)))
    loader = make_loader(dataset, num_workers=workers, batch_size=batch_size, drop_last=drop_last)
    return sum(run_epochs(loader, EPOCHS), [])


configs = st.tuples(
    st.sampled_from(SIZES),
    st.sampled_from([(0, 1), (0, 2), (1, 2), (2, 3)]),  # (rank, world_size)
    st.sampled_from([0, 2]),
    st.integers(1, 4),
    st.booleans(),
)


@settings(max_examples=30, deadline=None)
@given(config=configs, data=st.data())
def test_loader_resumes_after_any_k_batches(paths, config, data):
    n, (rank, world_size), workers, batch_size, drop_last = config
    path = paths[n]
    reference = reference_batches(path, n, rank, world_size, workers, batch_size, drop_last)
    k = data.draw(st.integers(0, len(reference)), label="k")
    dataset = numbered_dataset(path, rank=rank, world_size=world_size)
    state = dataset.state_after(k, num_workers=workers, batch_size=batch_size, drop_last=drop_last)
    got = resumed_batches(path, rank, world_size, workers, batch_size, drop_last, state)
    assert got[: len(reference) - k] == reference[k:]
    if workers == 0 and not drop_last:  # the dataset iterated in-process knows its own state
        live = numbered_dataset(path, rank=rank, world_size=world_size)
        batches = iter(make_loader(live, num_workers=0, batch_size=batch_size))
        for _ in range(k):
            try:
                next(batches)
            except StopIteration:  # epoch end: the next pass starts the next epoch
                batches = iter(make_loader(live, num_workers=0, batch_size=batch_size))
                next(batches)
        assert live.state_dict() == state


def test_state_after_rotates_the_worker_due_next(paths):
    # 23 samples, 2 workers, batch 2: shards [0, 12) and [12, 23), 6 batches each
    dataset = numbered_dataset(paths[23], batch_size=2)
    state = dataset.state_after(3, num_workers=2)
    assert (state["epoch"], state["consumed"], state["next_worker"]) == (0, [4, 2], 1)
    assert dataset.state_after(12, num_workers=2)["epoch"] == 1
    assert dataset.state_after(12, num_workers=2)["consumed"] == []
    assert dataset.state_after(13, num_workers=2)["consumed"] == [2, 0]
    resumed = resumed_batches(paths[23], 0, 1, 2, 2, False, state)
    assert resumed[:3] == [[14, 15], [4, 5], [16, 17]]  # worker 0 now plays worker 1's part


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 40),
    world=st.sampled_from([(0, 1), (1, 2), (2, 3), (3, 4)]),
    workers=st.integers(0, 3),
    batch_size=st.integers(1, 5),
    drop_last=st.booleans(),
    first=st.integers(0, 60),
    second=st.integers(0, 60),
)
def test_state_after_composes(n, world, workers, batch_size, drop_last, first, second):
    dataset = list_dataset(n, *world)
    options = dict(num_workers=workers, batch_size=batch_size, drop_last=drop_last)
    try:
        whole = dataset.state_after(first + second, **options)
    except ConfigError:  # drop_last with shards shorter than a batch: no batch at all
        assert drop_last and n // (world[1] * max(1, workers)) < batch_size + 1
        return
    middle = dataset.state_after(first, **options)
    assert dataset.state_after(second, start=middle, **options) == whole


def test_state_after_jumps_over_many_epochs():
    dataset = list_dataset(23, 1, 3)
    per_period = sum(  # batches of epochs 0, 1, 2 (the rotation repeats every 3 epochs)
        -(-(stop - start) // 2) for start, stop in [(8, 15), (15, 23), (0, 8)]
    )
    assert per_period == 4 + 4 + 4
    state = dataset.state_after(10**6 * per_period + 5, num_workers=0, batch_size=2)
    assert state["epoch"] == 3 * 10**6 + 1 and state["consumed"] == [2]


def test_fresh_process_resumes(paths, tmp_path):
    jobs, expected = [], []
    for workers, k in [(0, 7), (2, 5), (2, 14)]:
        args = (paths[23], 23, 1, 2, workers, 3, False)
        reference = reference_batches(*args)
        dataset = numbered_dataset(paths[23], rank=1, world_size=2)
        state = dataset.state_after(k, num_workers=workers, batch_size=3)
        jobs.append(
            dict(
                path=str(paths[23]),
                rank=1,
                world_size=2,
                num_workers=workers,
                batch_size=3,
                drop_last=False,
                state=state,
                epochs=EPOCHS,
            )
        )
        expected.append(reference[k:])
    job_file = tmp_path / "jobs.json"
    job_file.write_text(json.dumps(jobs))
    out = subprocess.run(
        [sys.executable, "-m", "tests.compat.datadings.torch_data.child", str(job_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    results = json.loads(out.stdout)
    for got, want in zip(results, expected):
        assert got[: len(want)] == want


def test_load_state_dict_rejects_foreign_states():
    dataset = list_dataset(10, 0, 2)
    good = dataset.state_after(1, num_workers=2, batch_size=2)
    assert good["consumed"] == [2, 0] and good["num_workers"] == 2
    for change, message in [
        ({"kind": "GlobalOrderSampler"}, "cannot be loaded into a IterableDataset"),
        ({"length": 11}, "saved with length=11"),
        ({"rank": 1}, "saved with rank=1"),
        ({"consumed": [2, 9]}, "consumed=9, outside"),
        ({"consumed": [2]}, "1 consumed counts for num_workers=2"),
        ({"next_worker": 2}, "next_worker=2, outside"),
        ({"consumed": [], "num_workers": 2}, "num_workers must be None"),
        ({"consumed": 3}, "must be a list of counts"),
        ({"epoch": -1}, "epoch=-1, outside"),
    ]:
        with pytest.raises(StateMismatchError, match=message):
            dataset.load_state_dict({**good, **change})
    with pytest.raises(StateMismatchError, match="lacks epoch"):
        dataset.load_state_dict({k: v for k, v in good.items() if k != "epoch"})
    assert dataset.state_dict()["consumed"] == []  # unchanged by the failed loads
    dataset.load_state_dict(good)
    with pytest.raises(StateMismatchError, match="saved with num_workers=2"):
        next(iter(dataset))  # in the main process: one worker
    with pytest.raises(StateMismatchError, match="saved with num_workers=2, not 3"):
        dataset.state_after(1, num_workers=3, batch_size=2)
    with pytest.raises(ConfigError, match="pass the loader's batch_size"):
        dataset.state_after(1, num_workers=2)
    with pytest.raises(ConfigError, match="reader is empty"):
        IterableDataset(ListReader([])).state_after(1, num_workers=0, batch_size=1)


def test_worker_count_mismatch_surfaces_from_loader_workers(paths):
    dataset = numbered_dataset(paths[16])
    dataset.load_state_dict(dataset.state_after(1, num_workers=2, batch_size=2))
    error = first_error(make_loader(dataset, num_workers=3, batch_size=2))
    assert isinstance(error, StateMismatchError)
    assert "saved with num_workers=2 (counting 0 as 1) but is iterated with 3" in str(error)


def test_set_epoch_keeps_a_loaded_state_of_the_same_epoch():
    dataset = list_dataset(12, 0, 1)
    state = dataset.state_after(5, num_workers=0, batch_size=1)
    dataset.load_state_dict(state)
    dataset.set_epoch(0)  # the usual "for epoch in range(start, ...): set_epoch(epoch)"
    assert [s["i"] - 1000 for s in dataset][:2] == [5, 6]
    dataset.load_state_dict(state)
    dataset.set_epoch(2)  # another epoch: start it from the beginning
    assert dataset.state_dict()["epoch"] == 2 and dataset.state_dict()["consumed"] == []
    assert [s["i"] - 1000 for s in dataset] == list(range(12))
    assert dataset.state_after(3, num_workers=0, batch_size=1)["consumed"] == [3]
