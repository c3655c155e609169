"""The Loader's error policy: ``on_error="raise" | "skip"``, and Deep Lake's ``ignore_errors`` alias."""

from __future__ import annotations

import pytest

from shardstream import FileWriter, Loader, MsgpackReader
from shardstream.errors import ConfigError, SampleError

COUNT = 12


def fail_on_five(sample):
    if int(sample["label"]) == 5:
        raise ValueError("five is bad")
    return sample


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    path = tmp_path_factory.mktemp("on_error") / "set.msgpack"
    with FileWriter(path, overwrite=True, disable=True) as writer:
        for i in range(COUNT):
            writer.write({"key": f"k{i:02d}", "label": i})
    with MsgpackReader(path) as opened:
        yield opened


def labels(loader) -> list[int]:
    return [int(value) for batch in loader for value in batch["label"]]


def skipping(loader) -> tuple[list[int], int]:
    loader = loader.transform(fail_on_five).batch(4).numpy(tensors=["label"])
    return labels(loader), loader.stats()["skipped"]


@pytest.mark.parametrize(
    "make",
    [
        lambda r: Loader(r, on_error="skip", seed=0),
        lambda r: Loader(r, ignore_errors=True, seed=0),
        lambda r: r.dataloader(on_error="skip", seed=0),
        lambda r: r.dataloader(True, seed=0),
    ],
    ids=["on_error", "ignore_errors", "dataloader_on_error", "dataloader_ignore_errors"],
)
def test_skip_and_its_alias_leave_the_bad_sample_out(reader, make):
    assert skipping(make(reader)) == ([i for i in range(COUNT) if i != 5], 1)


@pytest.mark.parametrize(
    "make",
    [
        lambda r: Loader(r, seed=0),
        lambda r: Loader(r, on_error="raise", seed=0),
        lambda r: Loader(r, ignore_errors=False, seed=0),
        lambda r: r.dataloader(seed=0),
        lambda r: r.dataloader(on_error="raise", seed=0),
    ],
    ids=["default", "on_error", "ignore_errors", "dataloader", "dataloader_on_error"],
)
def test_raise_and_its_alias_stop_at_the_bad_sample(reader, make):
    with pytest.raises(SampleError, match="key 'k05'") as caught:
        skipping(make(reader))
    assert "five is bad" in str(caught.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"on_error": "skip", "ignore_errors": True},
            "Loader: give on_error or its alias ignore_errors, not both "
            "(on_error='skip', ignore_errors=True)",
        ),
        (
            {"on_error": "raise", "ignore_errors": False},
            "Loader: give on_error or its alias ignore_errors, not both "
            "(on_error='raise', ignore_errors=False)",
        ),
        ({"on_error": "ignore"}, "on_error must be 'raise' or 'skip', got 'ignore'"),
        ({"on_error": True}, "on_error must be 'raise' or 'skip', got True"),
        ({"ignore_errors": "skip"}, "Loader: ignore_errors must be True or False, got 'skip'"),
        ({"ignore_errors": 1}, "Loader: ignore_errors must be True or False, got 1"),
    ],
)
def test_refused_policies(reader, kwargs, message):
    with pytest.raises(ConfigError) as caught:
        Loader(reader, seed=0, **kwargs)
    assert str(caught.value) == message
    with pytest.raises(ConfigError) as caught:
        reader.dataloader(seed=0, **kwargs)
    assert str(caught.value) == message
