"""Exclusive writers: two writers of one path never both succeed; dead writers' leftovers go.

Races use real processes (forked), synchronised so that both try to start while the other could
be writing: the second writer must be refused at once (``DatasetLockedError``, a
``DatasetExistsError``) or, with ``wait=``, start after the first has finished.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest
from datadings.reader import MsgpackReader as DatadingsReader

from shardstream import FileWriter, MsgpackReader, ShardedReader, ShardedWriter
from shardstream.cli import main as cli_main
from shardstream.errors import DatasetExistsError

CTX = multiprocessing.get_context("fork")
SET_FILES = ("", ".offsets", ".keys", ".key_hashes", ".filter", ".xxh3", ".md5")


def racer(path, who, sharded, started, go, results) -> None:
    """Start a writer, report, wait for the other racer to have tried too, then write."""
    try:
        if sharded:
            writer = ShardedWriter(path, shard_size=2000, disable=True)
        else:
            writer = FileWriter(path, disable=True)
    except DatasetExistsError as e:
        started.put((who, type(e).__name__))
        return
    started.put((who, "started"))
    go.wait(10)
    try:
        with writer:
            for i in range(200):
                writer.write({"key": f"{who}-{i}", "payload": bytes(100)})
        results.put((who, "ok"))
    except Exception as e:  # reported to the parent, which fails the test
        results.put((who, repr(e)))


def race(path, sharded: bool) -> tuple[list, list]:
    started, results, go = CTX.Queue(), CTX.Queue(), CTX.Event()
    procs = [
        CTX.Process(target=racer, args=(path, who, sharded, started, go, results))
        for who in ("a", "b")
    ]
    for proc in procs:
        proc.start()
    starts = sorted(started.get(timeout=30) for _ in procs)
    go.set()  # both have tried to start: now whoever started writes
    outcomes = [results.get(timeout=30) for s in starts if s[1] == "started"]
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    return starts, outcomes


@pytest.mark.parametrize("sharded", [False, True])
def test_concurrent_writers_exactly_one_wins(tmp_path, sharded):
    for trial in range(20 if not sharded else 8):
        path = tmp_path / f"r{trial}.msgpack"
        starts, outcomes = race(path, sharded)
        assert [s[1] for s in starts].count("started") == 1, starts
        assert [s[1] for s in starts].count("DatasetLockedError") == 1, starts
        assert len(outcomes) == 1 and outcomes[0][1] == "ok", outcomes
        winner = outcomes[0][0]
        if sharded:
            manifest = tmp_path / f"r{trial}.manifest"
            with ShardedReader(manifest) as reader:
                assert [reader.find_key(i) for i in range(len(reader))] == [
                    f"{winner}-{i}" for i in range(200)
                ]
            assert cli_main(["verify", "-q", str(manifest)]) == 0
        else:
            with MsgpackReader(path) as reader:
                assert reader.keys == [f"{winner}-{i}" for i in range(200)]
                assert reader.get(199)["key"] == f"{winner}-199"
            assert cli_main(["verify", "-q", str(path)]) == 0
            assert DatadingsReader(path).get(5)["key"] == f"{winner}-5"
    names = sorted(os.listdir(tmp_path))
    assert not [n for n in names if n.startswith(".")], names


def test_second_writer_in_the_same_process_is_refused_then_allowed(tmp_path):
    path = tmp_path / "d.msgpack"
    first = FileWriter(path, disable=True)
    with pytest.raises(DatasetExistsError, match=r"d\.msgpack: another writer \(pid \d+\)") as info:
        FileWriter(path, overwrite=True, disable=True)
    assert type(info.value).__name__ == "DatasetLockedError"
    first.write({"key": "a"})
    first.close()
    with FileWriter(path, overwrite=True, disable=True) as second:
        second.write({"key": "b"})
    with MsgpackReader(path) as reader:
        assert reader.keys == ["b"]
    assert sorted(os.listdir(tmp_path)) == sorted(f"d.msgpack{s}" for s in SET_FILES)


def holder(path, hold: float, ready) -> None:
    with FileWriter(path, overwrite=True, disable=True) as writer:
        writer.write({"key": "first"})
        ready.set()
        time.sleep(hold)


def test_wait_blocks_until_the_first_writer_is_done(tmp_path):
    path = tmp_path / "d.msgpack"
    ready = CTX.Event()
    proc = CTX.Process(target=holder, args=(path, 0.5, ready))
    proc.start()
    assert ready.wait(30)
    started = time.monotonic()
    with pytest.raises(DatasetExistsError) as info:
        FileWriter(path, overwrite=True, disable=True, wait=0.05)
    assert type(info.value).__name__ == "DatasetLockedError"
    with FileWriter(path, overwrite=True, disable=True, wait=30) as writer:
        waited = time.monotonic() - started
        writer.write({"key": "second"})
    proc.join(30)
    assert proc.exitcode == 0
    assert 0.3 < waited < 20
    with MsgpackReader(path) as reader:
        assert reader.keys == ["second"]


def killed_writer(path, sharded: bool, ready) -> None:
    if sharded:
        writer = ShardedWriter(path, shard_size=100, overwrite=True, disable=True)
    else:
        writer = FileWriter(path, overwrite=True, disable=True, buffering=1)
    for i in range(50):
        writer.write({"key": f"k{i}", "payload": bytes(50)})
    ready.set()
    time.sleep(60)


@pytest.mark.parametrize("sharded", [False, True])
def test_a_killed_writer_releases_its_lock_and_its_leftovers_are_removed(tmp_path, sharded):
    path = tmp_path / ("s.manifest" if sharded else "d.msgpack")
    ready = CTX.Event()
    proc = CTX.Process(target=killed_writer, args=(path, sharded, ready))
    proc.start()
    assert ready.wait(30)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(30)
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(".")]
    assert any(n.endswith(".tmp") for n in leftovers), leftovers
    unrelated = tmp_path / ".other.msgpack.abcd1234.tmp"  # not this output's: must stay
    unrelated.write_bytes(b"x")
    if sharded:
        writer = ShardedWriter(path, shard_size=100, overwrite=True, disable=True)
    else:
        writer = FileWriter(path, overwrite=True, disable=True)  # no wait: the lock is free
    with writer:
        writer.write({"key": "new"})
    assert sorted(n for n in os.listdir(tmp_path) if n.startswith(".")) == [unrelated.name]
    reader = ShardedReader(path) if sharded else MsgpackReader(path)
    with reader:
        assert reader.find_key(0) == "new" and len(reader) == 1


def killed_checkpoint_save(path) -> None:
    from shardstream.format import atomic
    from shardstream.methods.train.checkpoint import save_checkpoint

    def hook(action, where):
        if action == "fsync":  # the temp file is written, not yet renamed
            os.kill(os.getpid(), signal.SIGKILL)

    atomic.fault_hook = hook
    save_checkpoint(path, {"step": 2})


def test_a_killed_checkpoint_save_leaves_temporaries_the_next_save_removes(tmp_path):
    from shardstream.methods.train.checkpoint import load_checkpoint, save_checkpoint

    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, {"step": 1})
    proc = CTX.Process(target=killed_checkpoint_save, args=(path,))
    proc.start()
    proc.join(60)
    assert proc.exitcode == -signal.SIGKILL
    assert load_checkpoint(path)["step"] == 1  # the kill left the previous checkpoint
    stale = tmp_path / ".ckpt.pt.k1ll3d00.tmp"  # as a save killed by older code left it
    stale.write_bytes(b"partial")
    leftovers = sorted(n for n in os.listdir(tmp_path) if n.startswith(".ckpt.pt."))
    assert len(leftovers) >= 3 and stale.name in leftovers, leftovers
    save_checkpoint(path, {"step": 3})
    assert os.listdir(tmp_path) == ["ckpt.pt"]
    assert load_checkpoint(path)["step"] == 3
