"""Commit atomicity: a kill at any step of a commit leaves the old set or the new one, never a mix.

Each trial forks a child (from the small zygote process of :mod:`._forked`) that replaces a
dataset and is killed (SIGKILL, a real kill) at one chosen step: by the fault hook of
``shardstream.format.atomic`` at every write, fsync, rename and unlink, or by a wrapped
``os.replace`` at the k-th rename (what the issue did with strace). The parent then opens the
path: it must hold the old or the new samples, pass ``verify`` and read the
same through datadings.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile

import pytest
from datadings.reader import MsgpackReader as DatadingsReader

from shardstream import FileWriter, MsgpackReader, ShardedReader, ShardedWriter
from shardstream.cli import main as cli_main
from shardstream.errors import CorruptIndexError
from shardstream.format import atomic

from ._forked import run_isolated


def make(prefix: str, n: int) -> list[dict]:
    return [{"key": f"{prefix}{i:03d}", "x": prefix * (i % 7 + 1), "i": i} for i in range(n)]


OLD, NEW = make("old", 12), make("new", 9)


def write(path, samples, **kwargs) -> None:
    with FileWriter(path, overwrite=True, disable=True, **kwargs) as writer:
        for sample in samples:
            writer.write(sample)


def write_sharded(path, samples) -> None:
    with ShardedWriter(path, shard_size=600, overwrite=True, disable=True) as writer:
        for sample in samples:
            writer.write(sample)


def _run_with_hook(steps_file: str, kill_at: int, function, *args) -> None:
    """In the forked child: note every commit step in ``steps_file``; SIGKILL at step
    ``kill_at`` (0: never)."""
    steps = 0

    def hook(action, path):
        nonlocal steps
        steps += 1
        with open(steps_file, "a") as f:
            f.write(f"{action}\t{path}\n")
        if steps == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    atomic.fault_hook = hook
    function(*args)


def run_killed(kill_at: int, function, *args) -> tuple[list[str], int]:
    """Run ``function(*args)`` in a forked child (:func:`._forked.run_isolated`) that is
    SIGKILLed at its ``kill_at``-th commit step (0: never).

    Returns the steps the child reached (``"action\tpath"``) and its wait status (killed by a
    signal, exit 0, or exit 1 when it raised).
    """
    with tempfile.TemporaryDirectory() as scratch:
        steps_file = os.path.join(scratch, "steps")
        open(steps_file, "w").close()
        outcome = run_isolated(_run_with_hook, steps_file, kill_at, function, *args, timeout=120)
        with open(steps_file) as f:
            steps = f.read().splitlines()
    if outcome.status == "crashed" and outcome.detail in signal.Signals.__members__:
        return steps, signal.Signals[outcome.detail].value  # the wait status of that signal
    assert outcome.status in ("returned", "raised"), f"{outcome.status} {outcome.detail}"
    print(outcome.detail)  # the child's traceback, if it raised
    return steps, 0 if outcome.status == "returned" else 1 << 8


def list_steps(function, *args) -> list[str]:
    steps, status = run_killed(0, function, *args)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    return steps


def _write_killed_at_rename(path, k: int) -> None:
    """``write(path, NEW)``, SIGKILLed inside its ``k``-th ``os.replace`` (in a forked child)."""
    real = os.replace
    calls = 0

    def replace(src, dst):
        nonlocal calls
        calls += 1
        if calls == k:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(src, dst)

    os.replace = replace
    write(path, NEW)


def assert_one_version(path):
    """The set at ``path`` is OLD or NEW as a whole; verify and datadings agree. Returns which."""
    with MsgpackReader(path) as reader:  # opening rolls an interrupted commit forward
        keys = reader.keys
        got = [reader.get(i) for i in range(len(reader))]
        assert [s["key"] for s in got] == keys
        assert keys in ([s["key"] for s in OLD], [s["key"] for s in NEW])
        want = OLD if keys[0].startswith("old") else NEW
        assert got == want
        assert reader.find_index(keys[-1]) == len(keys) - 1
        assert reader.verify_data() and reader.verify_index()
        # the per-sample checksum file is committed with the set: it belongs to the same version
        assert reader.has_checksums and reader.damaged_samples() == []
    assert cli_main(["verify", "-q", str(path)]) == 0
    dd = DatadingsReader(path)
    assert len(dd) == len(want)
    assert [dd.get(i)["key"] for i in range(len(dd))] == keys
    assert dd.find_index(keys[1]) == 1
    names = sorted(os.listdir(path.parent))
    assert not any(name.endswith(".commit") for name in names)
    return want is NEW


def test_kill_at_every_step_of_a_commit_leaves_old_or_new(tmp_path):
    path = tmp_path / "d.msgpack"
    write(path, OLD)
    total = len(list_steps(write, path, NEW))
    assert total >= 20  # data fsync, 5 files x (write, fsync), record, 6 renames, unlink, ...
    outcomes = []
    for k in range(1, total + 1):
        write(path, OLD)
        _, status = run_killed(k, write, path, NEW)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        outcomes.append(assert_one_version(path))
    # before the commit point the old set stays, after it the new one is completed
    assert outcomes == sorted(outcomes) and outcomes[0] is False and outcomes[-1] is True
    write(path, OLD)  # the next writer removes what the killed ones left
    assert sorted(os.listdir(tmp_path)) == sorted(
        f"d.msgpack{s}"
        for s in ("", ".offsets", ".keys", ".key_hashes", ".filter", ".xxh3", ".md5")
    )


def test_kill_at_every_step_of_adding_checksums_leaves_none_or_all(tmp_path):
    from datadings.writer import FileWriter as DatadingsWriter

    from shardstream.write import add_checksums

    path = tmp_path / "d.msgpack"
    sidecar = tmp_path / "d.msgpack.xxh3"

    def datadings_set():
        sidecar.unlink(missing_ok=True)
        with DatadingsWriter(path, overwrite=True, disable=True) as writer:
            for sample in OLD:
                writer.write(sample)

    datadings_set()
    total = len(list_steps(add_checksums, path))
    assert total >= 3  # write, fsync, rename (then the folder's fsync)
    outcomes = []
    for k in range(1, total + 1):
        datadings_set()
        _, status = run_killed(k, add_checksums, path)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        with MsgpackReader(path) as reader:
            if reader.has_checksums:
                assert reader.damaged_samples() == []
            outcomes.append(reader.has_checksums)
        assert cli_main(["verify", "-q", str(path)]) == 0
    assert outcomes == sorted(outcomes) and outcomes[0] is False and outcomes[-1] is True
    add_checksums(path)  # removes what the killed ones left
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]


@pytest.mark.parametrize("k", [2, 4])
def test_the_next_writer_finishes_a_killed_commit_under_its_own_lock(tmp_path, k):
    """A writer that finds a killed writer's commit record (nothing opened the set since) rolls
    it forward holding its own lock, instead of waiting for that lock (itself) and failing."""
    path = tmp_path / "d.msgpack"
    write(path, OLD)
    _, status = run_killed(0, _write_killed_at_rename, path, k)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert atomic.commit_record_path(path).exists()
    write(path, OLD)  # no reader first
    assert not atomic.commit_record_path(path).exists()
    assert assert_one_version(path) is False  # OLD, written again


@pytest.mark.parametrize("k", range(1, 8))
def test_kill_at_kth_rename_never_gives_new_data_under_old_keys(tmp_path, k):
    """The issue's strace scenario, with the kill inside ``os.replace`` (any code path)."""
    path = tmp_path / "d.msgpack"
    write(path, OLD)

    _, status = run_killed(0, _write_killed_at_rename, path, k)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    with MsgpackReader(path) as reader:
        assert reader[0]["key"] == reader.keys[0]
        assert reader.find_key(len(reader) - 1) == reader[len(reader) - 1]["key"]
    assert_one_version(path)


def test_kill_at_every_step_of_a_sharded_commit(tmp_path):
    path = tmp_path / "s.manifest"
    old, new = make("old", 30), make("new", 41)
    write_sharded(path, old)
    steps = list_steps(write_sharded, path, new)
    # every step in the output folder (the group commit), every 10th inside the staging folder
    chosen = [
        k
        for k, step in enumerate(steps, 1)
        if os.path.dirname(step.split("\t")[1]) == str(tmp_path) or k % 10 == 0
    ]
    assert len(chosen) >= 25
    seen = []
    for k in chosen:
        write_sharded(path, old)
        _, status = run_killed(k, write_sharded, path, new)
        assert os.WIFSIGNALED(status)
        with ShardedReader(path) as reader:
            keys = [reader.find_key(i) for i in range(len(reader))]
            assert keys in ([s["key"] for s in old], [s["key"] for s in new])
            assert [reader.get(i)["key"] for i in range(len(reader))] == keys
            assert reader.has_checksums and reader.damaged_samples() == []
        assert cli_main(["verify", "-q", str(path)]) == 0
        seen.append(keys[0].startswith("new"))
    assert seen == sorted(seen) and not seen[0] and seen[-1]
    write_sharded(path, old)
    names = os.listdir(tmp_path)
    assert not any(name.startswith(".") for name in names), names
    assert sorted(n for n in names if n.endswith(".msgpack")) == [
        f"s-{i:05d}.msgpack" for i in range(len(json.loads(path.read_text())["shards"]))
    ]


@pytest.mark.parametrize(
    "record",
    [
        '{"format": "shardstream.commit", "version": 1, "files": [{"staged": "../x", '
        '"final": "d.msgpack", "bytes": 1}], "remove": []}',
        '{"format": "shardstream.commit", "version": 1, "files": [], "remove": ["/etc/x"]}',
        '{"format": "shardstream.commit", "version": 1, "files": [{"staged": '
        '".d.msgpack.abcd1234.tmp", "final": "d.msgpack", "bytes": 1e400}], "remove": []}',
        "[" * 100000,
        '{"format": "other"}',
    ],
    ids=["staged outside", "absolute removal", "1e400 size", "deep nesting", "other format"],
)
def test_hostile_commit_record_is_a_typed_error(tmp_path, record):
    path = tmp_path / "d.msgpack"
    write(path, OLD)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    (tmp_path / ".d.msgpack.commit").write_text(record)
    with pytest.raises(CorruptIndexError, match=r"\.d\.msgpack\.commit"):
        MsgpackReader(path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name in before} == before


def test_a_set_whose_files_disagree_is_refused_at_open(tmp_path):
    """Files of two versions put together by hand (what a non-atomic commit left) are refused
    when opened, from sizes and headers only."""
    import shutil

    from shardstream.errors import DatasetFormatError

    old, new = tmp_path / "old.msgpack", tmp_path / "new.msgpack"
    write(old, OLD)
    write(new, NEW)
    for suffix in (".keys", ".key_hashes"):  # new keys and hashes next to old data and offsets
        mixed = tmp_path / "mixed"
        shutil.rmtree(mixed, ignore_errors=True)
        mixed.mkdir()
        for name in os.listdir(tmp_path):
            if name.startswith("old.msgpack"):
                shutil.copy(tmp_path / name, mixed / name.replace("old", "m"))
        shutil.copy(tmp_path / f"new.msgpack{suffix}", mixed / f"m.msgpack{suffix}")
        with pytest.raises(DatasetFormatError, match=rf"m\.msgpack{suffix}: .*12 samples"):
            MsgpackReader(mixed / "m.msgpack")


def test_an_exception_at_any_step_of_a_commit_never_breaks_the_set(tmp_path):
    """An error (not a kill) inside close(): before the commit point the writer cleans up and
    the old set stays; after it the staged files are kept for the next opener to finish."""
    path = tmp_path / "d.msgpack"
    write(path, OLD)
    total = len(list_steps(write, path, NEW))
    set_files = sorted(
        f"d.msgpack{s}"
        for s in ("", ".offsets", ".keys", ".key_hashes", ".filter", ".xxh3", ".md5")
    )
    outcomes = []
    for k in range(1, total + 1):
        write(path, OLD)
        steps = 0

        def hook(action, where, k=k):
            nonlocal steps
            steps += 1
            if steps == k:
                raise OSError(5, f"injected fault at step {k}: {action}")

        atomic.fault_hook = hook
        try:
            with pytest.raises(OSError, match="injected fault"):
                write(path, NEW)
        finally:
            atomic.fault_hook = None
        outcomes.append(assert_one_version(path))
        assert sorted(os.listdir(tmp_path)) == set_files
    assert outcomes == sorted(outcomes) and outcomes[0] is False and outcomes[-1] is True


def test_an_exception_in_a_sharded_commit_never_breaks_the_set(tmp_path):
    path = tmp_path / "s.manifest"
    old, new = make("old", 30), make("new", 41)
    write_sharded(path, old)
    steps = list_steps(write_sharded, path, new)
    group = [
        k
        for k, step in enumerate(steps, 1)
        if os.path.dirname(step.split("\t")[1]) == str(tmp_path)
    ]
    seen = []
    for k in group:
        write_sharded(path, old)
        count = 0

        def hook(action, where, k=k):
            nonlocal count
            count += 1
            if count == k:
                raise OSError(5, "injected fault")

        atomic.fault_hook = hook
        try:
            with pytest.raises(OSError, match="injected fault"):
                write_sharded(path, new)
        finally:
            atomic.fault_hook = None
        with ShardedReader(path) as reader:
            keys = [reader.find_key(i) for i in range(len(reader))]
            assert keys in ([s["key"] for s in old], [s["key"] for s in new])
            assert [reader.get(i)["key"] for i in range(len(reader))] == keys
            assert reader.has_checksums and reader.damaged_samples() == []
        assert cli_main(["verify", "-q", str(path)]) == 0
        seen.append(keys[0].startswith("new"))
    assert seen == sorted(seen) and not seen[0] and seen[-1]
