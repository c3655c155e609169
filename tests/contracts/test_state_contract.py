"""Every stateful thing through the one state contract harness (``state_contract.py``).

The augments, shardstream's and torch's samplers, dinov2's and helios' samplers, datadings'
``IterableDataset`` and the native ``Loader``: resume at the start, mid-epoch, at the epoch's
end and in the next epoch, reload the initial state, and refuse broken states and states of
another config or kind (at fixed points, and at hypothesis-drawn points).
"""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import TensorDataset

from shardstream import (
    Cycler,
    DistributedSampler,
    EpochSampler,
    FileWriter,
    GlobalOrderSampler,
    InfiniteSampler,
    ListReader,
    QuasiShuffler,
    Range,
    Repeater,
    ResumableDistributedSampler,
    ResumableRandomSampler,
    ResumableSequentialSampler,
    ShardedInfiniteSampler,
    Shuffler,
)
from shardstream.compat.datadings.torch_data import IterableDataset
from shardstream.compat.helios import DataModule
from shardstream.errors import StateMismatchError
from shardstream.loader.loader import Loader
from shardstream.order.state import StateCounter, Stateful, StatefulMixin, StateSpec

from .state_contract import (
    StateCase,
    check_refusals,
    check_state_contract,
    next_epoch_when_done,
)
from .stateful import check_resume_at

pytestmark = pytest.mark.filterwarnings("ignore:# of dropped samples")

LOADER_SIZE = 10


def reader(n: int) -> ListReader:
    """A ListReader over ``{"key": "s<i>", "i": i}``."""
    return ListReader([{"key": f"s{i}", "i": i} for i in range(n)])


def index(sample: dict) -> int:
    return sample["i"]


def with_start_iter(sampler: Any, start_iter: int) -> Any:
    sampler.start_iter = start_iter
    return sampler


@functools.cache
def loader_file(n: int) -> Path:
    """A msgpack data set of ``n`` samples ``{"key", "value": [i, i, i]}`` (written once)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="state_contract_")) / f"n{n}.msgpack"
    with FileWriter(path, overwrite=True, disable=True) as writer:
        for i in range(n):
            writer.write({"key": f"s{i:02d}", "value": np.full(3, i, dtype=np.int32)})
    return path


def loader(n: int = LOADER_SIZE, seed: int = 3) -> Loader:
    return Loader(loader_file(n), seed=seed).shuffle().batch(3).numpy()


def batch_values(batch: dict) -> list[int]:
    return np.asarray(batch["value"])[:, 0].tolist()


def _sampler(cls: Any, **kwargs: Any) -> Any:
    return functools.partial(cls, **kwargs)


CASES = [
    # augments: one iterator is one pass (Repeater: all its passes); Cycler never ends
    StateCase("Shuffler", lambda: Shuffler(reader(7), seed=3), 7, normalize=index,
              make_other=lambda: Shuffler(reader(7), seed=4)),
    StateCase("QuasiShuffler", lambda: QuasiShuffler(reader(10), 4, 2, seed=5), 10,
              normalize=index, make_other=lambda: QuasiShuffler(reader(10), 4, 2, seed=6)),
    StateCase("Range", lambda: Range(reader(10), 2, 7), 5, normalize=index,
              make_other=lambda: Range(reader(10), 3, 7)),
    StateCase("Repeater", lambda: Repeater(Shuffler(reader(4), seed=1), 2), 8,
              normalize=index, make_other=lambda: Repeater(Shuffler(reader(4), seed=1), 3)),
    StateCase("Cycler(Shuffler)", lambda: Cycler(Shuffler(reader(5), seed=2)), 5,
              normalize=index, ends_with_epoch=False,
              make_other=lambda: Cycler(Shuffler(reader(6), seed=2))),
    StateCase("Cycler(Reader)", lambda: Cycler(reader(4)), 4, normalize=index,
              ends_with_epoch=False, make_other=lambda: Cycler(reader(5))),
    # shardstream's and torch's samplers
    StateCase("GlobalOrderSampler",
              _sampler(GlobalOrderSampler, sample_count=10, seed=7, rank=1, world_size=3,
                       drop_last=True), 3,
              make_other=_sampler(GlobalOrderSampler, sample_count=10, seed=8, rank=1,
                                  world_size=3, drop_last=True)),
    StateCase("DistributedSampler",
              _sampler(DistributedSampler, dataset=range(10), num_replicas=3, rank=2, seed=6),
              4, iterate=next_epoch_when_done,
              make_other=_sampler(DistributedSampler, dataset=range(10), num_replicas=2,
                                  rank=1, seed=6)),
    # dinov2's samplers
    StateCase("EpochSampler",
              _sampler(EpochSampler, size=17, sample_count=6, shuffle=True, seed=2, start=1,
                       step=3), 6, iterate=next_epoch_when_done,
              make_other=_sampler(EpochSampler, size=16, sample_count=6, shuffle=True, seed=2,
                                  start=1, step=3)),
    StateCase("InfiniteSampler",
              _sampler(InfiniteSampler, sample_count=11, shuffle=True, seed=5, start=2, step=3,
                       advance=4), 3, ends_with_epoch=False,
              make_other=_sampler(InfiniteSampler, sample_count=11, shuffle=True, seed=6,
                                  start=2, step=3)),
    StateCase("ShardedInfiniteSampler",
              _sampler(ShardedInfiniteSampler, sample_count=10, shuffle=True, seed=2, start=1,
                       step=3), 3, ends_with_epoch=False,
              make_other=_sampler(ShardedInfiniteSampler, sample_count=10, shuffle=True,
                                  seed=2, start=1, step=3, use_new_shuffle_tensor_slice=True)),
    # helios' resumable samplers (start_iter shortens every pass, so a pass is not an epoch)
    StateCase("ResumableRandomSampler",
              lambda: with_start_iter(ResumableRandomSampler(range(9), seed=2, batch_size=2), 1),
              7, iterate=next_epoch_when_done, ends_with_epoch=False,
              make_other=lambda: ResumableRandomSampler(range(9), seed=3, batch_size=2)),
    StateCase("ResumableSequentialSampler",
              lambda: ResumableSequentialSampler(range(7), batch_size=3), 7,
              iterate=next_epoch_when_done,
              make_other=lambda: ResumableSequentialSampler(range(8), batch_size=3)),
    StateCase("ResumableDistributedSampler",
              lambda: with_start_iter(
                  ResumableDistributedSampler(range(11), 2, 1, seed=3, batch_size=2), 1),
              4, iterate=next_epoch_when_done, ends_with_epoch=False,
              make_other=lambda: ResumableDistributedSampler(range(11), 2, 1, seed=3,
                                                             batch_size=3)),
    # datadings' torch adapter, iterated directly (one pass per epoch, rank 0 of 1)
    StateCase("IterableDataset", lambda: IterableDataset(reader(9)), 9, normalize=index,
              make_other=lambda: IterableDataset(reader(8))),
    # the native Loader: 10 samples in batches of 3
    StateCase("Loader", loader, 4, normalize=batch_values,
              make_other=lambda: loader(LOADER_SIZE + 1)),
]  # fmt: skip

BY_NAME = {case.name: case for case in CASES}


@functools.cache
def fresh_states() -> tuple[dict[str, Any], ...]:
    """The fresh state of every case: each kind's state is foreign to every other kind."""
    return tuple(case.make().state_dict() for case in CASES)


@functools.cache
def reference(name: str) -> tuple[Any, ...]:
    return tuple(BY_NAME[name].reference())


@pytest.mark.parametrize("name", list(BY_NAME))
def test_state_contract(name):
    check_state_contract(BY_NAME[name], fresh_states())


@pytest.mark.parametrize("name", list(BY_NAME))
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_resume_at_any_point(name, data):
    case = BY_NAME[name]
    expected = list(reference(name))
    k = data.draw(st.integers(0, len(expected)), label="k")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="# of dropped samples")
        check_resume_at(case.make, k, expected, iterate=case.iterate, normalize=case.normalize)


def test_every_kind_is_covered_once():
    kinds = [state["kind"] for state in fresh_states()]
    assert set(kinds) == {
        "Shuffler", "QuasiShuffler", "Range", "Repeater", "Cycler", "GlobalOrderSampler",
        "DistributedSampler", "EpochSampler", "InfiniteSampler", "ShardedInfiniteSampler",
        "ResumableRandomSampler", "ResumableSequentialSampler", "ResumableDistributedSampler",
        "IterableDataset", "Loader",
    }  # fmt: skip


def test_every_owner_of_state_uses_the_one_spec():
    """Each class that validates its own state does so through StateSpec (StatefulMixin); the
    Loader delegates to its run, and helios' DataModule is a Stateful too."""
    for case in CASES:
        stage = case.make()
        owner = stage._run if isinstance(stage, Loader) else stage
        assert isinstance(owner, StatefulMixin), case.name
        assert isinstance(owner._state_spec(), StateSpec), case.name
    assert issubclass(Loader, Stateful) and issubclass(DataModule, Stateful)


# --- the spec itself ----------------------------------------------------------------------------


def test_spec_builds_states_in_order_and_loads_exact_values():
    spec = StateSpec(
        kind="Thing",
        config={"length": 5, "seed": 2},
        counters=(
            StateCounter("epoch"),
            StateCounter("position", high=4),
            StateCounter("offset", nullable=True),
        ),
        fields=("source",),
        optional=("digest",),
    )
    state = spec.state({"epoch": 1, "position": 4, "offset": None, "source": {"a": 1}})
    assert list(state) == ["kind", "length", "seed", "epoch", "position", "offset", "source"]
    assert spec.load(json.loads(json.dumps(state))) == {
        "epoch": 1,
        "position": 4,
        "offset": None,
        "source": {"a": 1},
    }
    assert spec.load({**state, "digest": "md5:x", "position": np.int64(3)}) == {
        "epoch": 1,
        "position": 3,
        "offset": None,
        "source": {"a": 1},
        "digest": "md5:x",
    }
    extended = spec.extend(config={"batch_size": 2}, counters=(StateCounter("start_iter"),))
    assert extended.config == {"length": 5, "seed": 2, "batch_size": 2}
    assert [c.name for c in extended.counters] == ["epoch", "position", "offset", "start_iter"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "Other"}, "state of a 'Other' cannot be loaded into a Thing"),
        ({"seed": 3}, "Thing state was saved with seed=3 but this Thing has seed=2"),
        ({"position": 5}, r"Thing state has position=5, outside \[0, 4\] for this Thing"),
        ({"epoch": True}, "Thing state has epoch=True; it must be an integer"),
        ({"extra": 1}, "Thing state has unknown keys extra"),
        ({"offset": None, "epoch": None}, "Thing state has epoch=None; it must be an integer"),
    ],
)
def test_spec_refuses_with_the_known_messages(change, message):
    spec = StateSpec(
        kind="Thing",
        config={"seed": 2},
        counters=(
            StateCounter("epoch"),
            StateCounter("position", high=4),
            StateCounter("offset", nullable=True),
        ),
    )
    state = spec.state({"epoch": 0, "position": 1, "offset": 2})
    with pytest.raises(StateMismatchError, match=message):
        spec.load({**state, **change})
    with pytest.raises(StateMismatchError, match="Thing state lacks position; pass a dict"):
        spec.load({k: v for k, v in state.items() if k != "position"})
    with pytest.raises(StateMismatchError, match="must be a mapping"):
        spec.load([1, 2])


# --- helios' DataModule: its phase index is checked like any counter ---------------------------


class _Phases(DataModule):
    def setup(self) -> None:
        self._add_train_phase(TensorDataset(torch.arange(4)), {"batch_size": 2})
        self._add_train_phase(TensorDataset(torch.arange(6)), {"batch_size": 3})


@pytest.mark.parametrize("phase", [2, -1, "1", 1.0, None])
def test_datamodule_refuses_a_phase_it_does_not_have(phase):
    module = _Phases()
    module.setup()
    module.load_state_dict({"phase": 1})
    with pytest.raises(StateMismatchError, match="_Phases state has phase="):
        module.load_state_dict({"phase": phase})
    assert module.state_dict() == {"phase": 1}


def test_refusals_leave_a_sampler_mid_epoch_untouched():
    """The harness's refusal check on its own, with the state of another kind of sampler."""
    case = BY_NAME["GlobalOrderSampler"]
    foreign = EpochSampler(size=4, sample_count=4).state_dict()
    check_refusals(case, [foreign])
