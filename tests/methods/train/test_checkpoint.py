import os
import random

import numpy as np
import pytest
import torch

from shardstream.errors import CheckpointError
from shardstream.methods.train.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def test_round_trip_is_exact(tmp_path):
    state = {"step": 7, "weights": {"w": torch.arange(6.0).reshape(2, 3)}, "name": "x", "t": (1, 2)}
    path = save_checkpoint(tmp_path / "sub" / "ckpt.pt", state)
    loaded = load_checkpoint(path)
    assert loaded["step"] == 7 and loaded["name"] == "x" and loaded["t"] == (1, 2)
    assert torch.equal(loaded["weights"]["w"], state["weights"]["w"])
    # no temp file is left behind
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt.pt"]


def test_overwrite_replaces_previous(tmp_path):
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, {"step": 1})
    save_checkpoint(path, {"step": 2})
    assert load_checkpoint(path)["step"] == 2


def test_rng_state_round_trip():
    random.seed(3)
    np.random.seed(4)
    torch.manual_seed(5)
    state = rng_state()
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    random.random(), np.random.rand(), torch.rand(1)
    set_rng_state(state)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


def test_rng_state_survives_checkpoint(tmp_path):
    torch.manual_seed(9)
    path = save_checkpoint(tmp_path / "c.pt", {"rng": rng_state()})
    expected = torch.rand(3)
    torch.manual_seed(0)
    set_rng_state(load_checkpoint(path)["rng"])
    assert torch.equal(torch.rand(3), expected)


def test_bad_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "missing.pt")
    truncated = tmp_path / "truncated.pt"
    save_checkpoint(truncated, {"w": torch.zeros(1000)})
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.pt: cannot be read"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"w": torch.zeros(1)}, foreign)
    with pytest.raises(CheckpointError, match="not a shardstream checkpoint"):
        load_checkpoint(foreign)


class Hostile:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "hostile.pt"
    torch.save({"format": "shardstream.checkpoint/1", "x": Hostile()}, path)
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="must be a dict"):
        save_checkpoint(tmp_path / "x.pt", [1, 2])
