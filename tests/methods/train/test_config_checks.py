"""DinoTrainConfig checks its counts with shardstream.checks and keeps them as plain ints."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shardstream.errors import ConfigError
from shardstream.methods.train.config import DinoTrainConfig


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"steps": 0}, "steps must be a positive integer, got 0"),
        ({"batch_size": True}, "batch_size must be a positive integer, got True"),
        ({"log_every": 1.5}, "log_every must be a positive integer, got 1.5"),
        ({"num_workers": -1}, "num_workers must be a non-negative integer, got -1"),
        ({"steps_per_epoch": 0}, "steps_per_epoch must be a positive integer, got 0"),
        ({"torch_threads": "2"}, "torch_threads must be a positive integer, got '2'"),
    ],
)
def test_bad_counts_are_refused_naming_them(tmp_path, kwargs, message):
    with pytest.raises(ConfigError) as caught:
        DinoTrainConfig(data="train.msgpack", out=tmp_path, **kwargs)
    assert str(caught.value) == message


def test_numpy_counts_are_kept_as_plain_ints(tmp_path):
    config = DinoTrainConfig(
        data="train.msgpack", out=tmp_path, steps=np.int64(7), num_workers=np.int32(0)
    )
    assert type(config.steps) is int and config.steps == 7
    assert type(config.num_workers) is int and config.num_workers == 0
    assert json.loads(json.dumps(config.to_dict()))["steps"] == 7
