"""Resuming on another data set of the same length at the same path is refused, naming both
content digests (from the loader's state and from a training checkpoint)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from shardstream import FileWriter, MsgpackReader, ShardedReader
from shardstream.errors import StateMismatchError
from shardstream.format.integrity import md5_file
from shardstream.format.manifest import ShardEntry, write_manifest
from shardstream.loader.loader import Loader

N = 24


def write_set(path: Path, offset: int) -> Path:
    """``N`` samples whose values start at ``offset`` (another offset: other content)."""
    with FileWriter(path, overwrite=True, disable=True) as writer:
        for i in range(N):
            writer.write({"key": f"s{i:02d}", "value": np.full(3, i + offset, dtype=np.int32)})
    return path


def write_shards(folder: Path, offset: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for part in range(2):
        shard = folder / f"part-{part}.msgpack"
        with FileWriter(shard, overwrite=True, disable=True) as writer:
            for i in range(N // 2):
                value = np.full(3, part * 100 + i + offset, dtype=np.int32)
                writer.write({"key": f"p{part}-{i:02d}", "value": value})
        entries.append(ShardEntry(shard.name, N // 2, shard.stat().st_size, md5_file(shard)))
    return write_manifest(folder / "set.manifest", entries)


def consume(loader: Loader, batches: int) -> list[list[int]]:
    out = []
    for batch in loader:
        out.append(batch["value"][:, 0].tolist())
        if len(out) == batches:
            break
    return out


def test_the_digest_is_the_recorded_md5_of_the_data_file(tmp_path):
    from shardstream.loader.digest import content_digest

    path = write_set(tmp_path / "a.msgpack", 0)
    assert content_digest(MsgpackReader(path)) == f"md5:{md5_file(path)}"
    state = Loader(path, seed=3).batch(4).numpy().state_dict()
    assert state["digest"] == f"md5:{md5_file(path)}"
    assert state["sample_count"] == N


def test_resume_on_another_set_at_the_same_path_is_refused(tmp_path):
    path = tmp_path / "set.msgpack"
    write_set(path, 0)
    old_digest = f"md5:{md5_file(path)}"
    loader = Loader(path, seed=3).shuffle().batch(4).numpy()
    consume(loader, 2)
    state = loader.state_dict()
    loader.close()
    write_set(path, 1000)  # same length, same keys, other values
    new_digest = f"md5:{md5_file(path)}"
    assert new_digest != old_digest
    resumed = Loader(path, seed=3).shuffle().batch(4).numpy()
    with pytest.raises(StateMismatchError) as caught:
        resumed.load_state_dict(state)
    message = str(caught.value)
    assert old_digest in message and new_digest in message
    assert resumed.state_dict()["cursor"] == 0  # left unchanged


def test_resume_on_the_same_set_continues(tmp_path):
    path = write_set(tmp_path / "set.msgpack", 0)
    whole = consume(Loader(path, seed=3).shuffle().batch(4).numpy(), N)
    loader = Loader(path, seed=3).shuffle().batch(4).numpy()
    first = consume(loader, 2)
    state = loader.state_dict()
    copy = tmp_path / "copy"
    copy.mkdir()
    for file in tmp_path.glob("set.msgpack*"):  # the same content elsewhere resumes too
        shutil.copy(file, copy / file.name)
    resumed = Loader(copy / "set.msgpack", seed=3).shuffle().batch(4).numpy()
    resumed.load_state_dict(state)
    assert first + consume(resumed, N) == whole


def test_a_state_without_digest_is_still_accepted(tmp_path):
    path = write_set(tmp_path / "set.msgpack", 0)
    loader = Loader(path, seed=3).batch(4).numpy()
    state = loader.state_dict()
    del state["digest"]
    loader.load_state_dict({**state, "cursor": 8})
    assert consume(loader, 1) == [[8, 9, 10, 11]]


def test_a_bad_digest_value_is_refused(tmp_path):
    path = write_set(tmp_path / "set.msgpack", 0)
    loader = Loader(path, seed=3).batch(4).numpy()
    with pytest.raises(StateMismatchError, match="digest=17"):
        loader.load_state_dict({**loader.state_dict(), "digest": 17})


def test_sharded_sets_are_told_apart_by_their_shards(tmp_path):
    from shardstream.loader.digest import content_digest

    manifest = write_shards(tmp_path / "sharded", 0)
    digest = content_digest(ShardedReader(manifest))
    assert digest is not None and digest.startswith("shards:") and len(digest) == 7 + 32
    loader = Loader(manifest, seed=1).batch(4).numpy()
    consume(loader, 1)
    state = loader.state_dict()
    assert state["digest"] == digest
    loader.close()
    write_shards(tmp_path / "sharded", 7)  # the second shard's content changed, same lengths
    other = content_digest(ShardedReader(manifest))
    assert other != digest
    with pytest.raises(StateMismatchError) as caught:
        Loader(manifest, seed=1).batch(4).numpy().load_state_dict(state)
    assert digest in str(caught.value) and other in str(caught.value)


def test_training_resume_on_another_set_is_refused(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("timm")
    from shardstream.methods.train.config import DinoTrainConfig
    from shardstream.methods.train.loop import train_dino
    from shardstream.sets.demo import iter_demo_samples

    def pack(path: Path, num_classes: int) -> None:
        with FileWriter(path, overwrite=True, disable=True) as writer:
            for sample in iter_demo_samples(num_images=16, num_classes=num_classes, workers=1):
                writer.write(sample)

    data = tmp_path / "demo.msgpack"
    pack(data, 4)
    saved_digest = f"md5:{md5_file(data)}"
    config = DinoTrainConfig(
        data=str(data),
        out=tmp_path / "run",
        steps=4,
        batch_size=8,
        warmup_steps=1,
        num_workers=0,
        torch_threads=1,
        checkpoint_every=0,
        progress=False,
        device="cpu",
    )
    first = train_dino(config, stop_after=2)
    assert first.checkpoint is not None
    pack(data, 3)  # other labels: another data set of the same length at the same path
    other_digest = f"md5:{md5_file(data)}"
    assert other_digest != saved_digest
    with pytest.raises(StateMismatchError) as caught:
        train_dino(config.replace(resume=True))
    message = str(caught.value)
    assert str(first.checkpoint) in message
    assert saved_digest in message and other_digest in message
