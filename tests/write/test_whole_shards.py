"""The local engine's whole-shard mode (each worker process writes whole shards) writes the
streamed local engine's files byte for byte, survives a killed worker, leaves the old set or
the new one when the parent is killed at any step, and resumes a killed run."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shardstream import ShardedReader
from shardstream.errors import BadSourceError, ConfigError, WorkerDiedError
from shardstream.write.conversion import Item, convert
from shardstream.write.loaders import given_bytes, read_file
from tests.reliability.test_commit import run_killed
from tests.write.demo_tree import demo_tree, tree_files

ROOT = Path(__file__).resolve().parents[2]


def output_files(folder: Path) -> dict[str, bytes]:
    """Every visible file of an output folder (data, index and sidecars, manifest, report)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def marked_read(path: str, marker: str, delay: float) -> bytes:
    """read_file that records this process' pid and the file in ``marker`` (a folder)."""
    Path(marker, f"{os.getpid()}-{Path(path).name}").touch()
    time.sleep(delay)
    return read_file(path)


def make_items(
    root: Path, count: int, bad: frozenset[int] = frozenset(), marker: Path | None = None,
    delay: float = 0.0, prefix: str = "k",
) -> list[Item]:  # fmt: skip
    """``count`` items cycling over the demo images (keys unique); those at ``bad`` are not
    images. With ``marker``, each load records its process there and takes ``delay`` s."""
    files = sorted(tree_files(root))
    items = []
    for index in range(count):
        if index in bad:
            load = functools.partial(given_bytes, b"not an image")
        elif marker is not None:
            path = os.fspath(root / files[index % len(files)])
            load = functools.partial(marked_read, path, os.fspath(marker), delay)
        else:
            load = functools.partial(read_file, os.fspath(root / files[index % len(files)]))
        items.append(Item(f"{prefix}{index:03d}", index % 4, f"source-{index}", load))
    return items


def streamed(items: list[Item], folder: Path, **options) -> dict[str, bytes]:
    """The streamed local engine's files (the path of the old code): the reference."""
    convert(
        items, folder / "set.manifest", progress=False, overwrite=True, whole_shards=False,
        **options,
    )  # fmt: skip
    return output_files(folder)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return demo_tree(tmp_path_factory.mktemp("whole-shards-demo"))


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    count=st.integers(1, 25),
    shard_samples=st.integers(1, 9),
    workers=st.integers(1, 3),
    bad=st.frozensets(st.integers(0, 24), max_size=4),
    transcode=st.booleans(),
)
def test_whole_shards_equal_the_streamed_engine_byte_for_byte(
    tree, tmp_path_factory, count, shard_samples, workers, bad, transcode
):
    folder = tmp_path_factory.mktemp("equal")
    bad = frozenset(i for i in bad if i < count)
    if len(bad) == count:
        bad = frozenset(list(bad)[1:])  # at least one good item: a dataset is written
    items = make_items(tree, count, bad)
    options = {"shard_samples": shard_samples, "on_error": "skip"}
    if transcode:
        options.update(max_side=24, quality=90)
    expected = streamed(items, folder / "streamed", **options)
    report = convert(
        items, folder / "whole" / "set.manifest", progress=False, workers=workers,
        whole_shards=True, **options,
    )  # fmt: skip
    assert output_files(folder / "whole") == expected
    shards = -(-count // shard_samples)
    assert report.workers == min(workers, shards)
    assert report.written == count - len(bad)
    assert [s.source for s in report.skipped] == [f"source-{i}" for i in sorted(bad)]
    assert [p.name for p in report.files] == [f"set-{i:05d}.msgpack" for i in range(shards)]
    assert [p.name for p in (folder / "whole").iterdir() if p.name.startswith(".")] == []


def test_by_default_each_shard_is_written_by_one_worker_process(tree, tmp_path):
    """With at least as many shards as workers, every shard's items are loaded in one worker
    process (not this one): the worker writes the whole shard."""
    marker = tmp_path / "marks"
    marker.mkdir()
    items = make_items(tree, 12, marker=marker)
    report = convert(items, tmp_path / "out" / "set.manifest", progress=False, workers=2,
                     shard_samples=3)  # fmt: skip
    assert report.workers == 2
    pid_of = {}
    for mark in marker.iterdir():
        pid, name = mark.name.split("-", 1)
        pid_of.setdefault(name, set()).add(int(pid))
    files = sorted(tree_files(tree))  # 12 files: item i loads file i
    for shard in range(4):
        pids = set().union(*(pid_of[Path(files[i]).name] for i in range(3 * shard, 3 * shard + 3)))
        assert len(pids) == 1 and os.getpid() not in pids
    assert len(set().union(*pid_of.values())) == 2
    assert output_files(tmp_path / "out") == streamed(make_items(tree, 12), tmp_path / "ref",
                                                      shard_samples=3)  # fmt: skip


def test_fewer_shards_than_workers_stream_by_default(tree, tmp_path):
    items = make_items(tree, 6)
    report = convert(items, tmp_path / "a" / "set.manifest", progress=False, workers=3,
                     shard_samples=3)  # fmt: skip
    assert report.workers == 3  # streamed: every worker converts chunks (2 shards only)
    forced = convert(items, tmp_path / "b" / "set.manifest", progress=False, workers=3,
                     shard_samples=3, whole_shards=True)  # fmt: skip
    assert forced.workers == 2
    assert output_files(tmp_path / "a") == output_files(tmp_path / "b")


def test_a_bad_source_stops_with_the_streamed_engines_error(tree, tmp_path):
    items = make_items(tree, 12, bad=frozenset({4, 10}))
    with pytest.raises(BadSourceError) as old:
        streamed(items, tmp_path / "streamed", shard_samples=3)
    (tmp_path / "whole").mkdir()
    with pytest.raises(BadSourceError) as new:
        convert(items, tmp_path / "whole" / "set.manifest", progress=False, workers=2,
                shard_samples=3, whole_shards=True)  # fmt: skip
    assert str(new.value) == str(old.value) and new.value.source == "source-4"
    assert list((tmp_path / "whole").iterdir()) == []  # no staging folder, no lock left


@pytest.mark.parametrize(
    "options, message",
    [
        ({"whole_shards": True}, "whole_shards needs shard_samples"),
        ({"whole_shards": True, "shard_size": 100}, "whole_shards needs shard_samples"),
        ({"shard_samples": 2, "whole_shards": False, "resume": True}, "needs whole shards"),
    ],
)
def test_bad_whole_shard_options_are_config_errors(tmp_path, options, message):
    items = [Item("k", 0, "s", functools.partial(given_bytes, b"x"))]
    with pytest.raises(ConfigError, match=message):
        convert(items, tmp_path / "x.manifest", progress=False, **options)


def test_a_killed_worker_is_run_again_and_the_output_is_unchanged(tree, tmp_path):
    marker = tmp_path / "marks"
    marker.mkdir()
    items = make_items(tree, 12, marker=marker, delay=0.1)
    expected = streamed(make_items(tree, 12), tmp_path / "ref", shard_samples=2)
    killed: list[int] = []

    def kill_first_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            pids = {int(m.name.split("-")[0]) for m in marker.iterdir()} - {os.getpid()}
            if pids:
                pid = min(pids)
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.02)

    killer = threading.Thread(target=kill_first_worker)
    killer.start()
    report = convert(items, tmp_path / "out" / "set.manifest", progress=False, workers=2,
                     shard_samples=2)  # fmt: skip
    killer.join()
    assert len(killed) == 1 and report.written == 12
    assert output_files(tmp_path / "out") == expected
    after = {int(m.name.split("-")[0]) for m in marker.iterdir()}
    assert len(after) >= 3  # a new pool's workers ran the lost shards and the rest


def killing_read(path: str) -> bytes:
    """A load that kills its own process (a worker that always dies on this item)."""
    os.kill(os.getpid(), signal.SIGKILL)
    return read_file(path)


def test_a_worker_that_always_dies_stops_the_conversion_and_keeps_the_old_set(tree, tmp_path):
    old = streamed(make_items(tree, 5), tmp_path / "out", shard_samples=4)
    items = make_items(tree, 8)
    items[5] = Item(items[5].key, 0, items[5].source, functools.partial(killing_read, "x"))
    with pytest.raises(WorkerDiedError, match=r"set.manifest: conversion workers died 4 times"):
        convert(items, tmp_path / "out" / "set.manifest", progress=False, workers=2,
                shard_samples=2, overwrite=True)  # fmt: skip
    assert output_files(tmp_path / "out") == old
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []


DRIVER = """
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
from shardstream.write.conversion import convert
from tests.write.test_whole_shards import make_items
items = make_items(Path({tree!r}), 24, marker=Path({marker!r}), delay=0.3)
convert(items, {output!r}, progress=False, workers=2, shard_samples=1, overwrite=True)
"""


def test_a_killed_parent_leaves_the_old_set_and_resume_finishes_it(tree, tmp_path):
    marker = tmp_path / "marks"
    marker.mkdir()
    output = tmp_path / "out" / "set.manifest"
    old = streamed(make_items(tree, 5), tmp_path / "out", shard_samples=4)  # the previous set
    script = DRIVER.format(root=os.fspath(ROOT), tree=os.fspath(tree), marker=os.fspath(marker),
                           output=os.fspath(output))  # fmt: skip
    driver = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    deadline = time.monotonic() + 90
    done: list[Path] = []
    while time.monotonic() < deadline and len(done) < 2 and driver.poll() is None:
        done = list((tmp_path / "out").glob(".set.manifest.*.tmp/*.done.json"))
        time.sleep(0.05)
    driver.kill()  # SIGKILL: no cleanup runs
    driver.wait()
    assert driver.returncode == -signal.SIGKILL and len(done) >= 2
    assert output_files(tmp_path / "out") == old  # the old set, untouched
    workers = {int(m.name.split("-")[0]) for m in marker.iterdir()}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers)  # the workers died with their parent
    staging = done[0].parent
    before = {p.name: p.stat().st_mtime_ns for p in done}

    # 24 shards on 2 workers: 4 groups of 6 shards (2 rounds) where md5 lanes run, so the kill
    # comes after the first round's shards are done and before the second round's
    report = convert(make_items(tree, 24), output, progress=False, workers=2, shard_samples=1,
                     overwrite=True, resume=True)  # fmt: skip
    expected = streamed(make_items(tree, 24), tmp_path / "ref", shard_samples=1)
    assert output_files(tmp_path / "out") == expected and report.written == 24
    assert not staging.exists()
    for name, mtime in before.items():  # finished shards were kept, not written again
        shard = tmp_path / "out" / name.removesuffix(".done.json")
        assert shard.stat().st_mtime_ns <= mtime


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead too
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def _write_old(items, output) -> None:
    convert(items, output, progress=False, overwrite=True, shard_samples=2, whole_shards=True)


def _write_new(items, output) -> None:
    convert(items, output, progress=False, overwrite=True, shard_samples=4,
            whole_shards=True, workers=1, on_error="skip")  # fmt: skip


def test_a_kill_at_every_commit_step_leaves_the_old_set_or_the_new_one(tree, tmp_path):
    output = tmp_path / "set.manifest"
    old_items = make_items(tree, 5)
    new_items = make_items(tree, 9, bad=frozenset({3}), prefix="new-")

    def write_old() -> None:
        _write_old(old_items, output)

    write_old()
    old = output_files(tmp_path)
    steps, status = run_killed(0, _write_new, new_items, output)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    new = output_files(tmp_path)
    chosen = [k for k, step in enumerate(steps, 1)
              if os.path.dirname(step.split("\t")[1]) == str(tmp_path)]  # fmt: skip
    assert len(chosen) >= 15
    seen = []
    for k in chosen:
        write_old()
        _, status = run_killed(k, _write_new, new_items, output)
        assert os.WIFSIGNALED(status)
        with ShardedReader(output) as reader:  # rolls an interrupted commit forward
            keys = [reader.find_key(i) for i in range(len(reader))]
        is_new = keys[0].startswith("new-")
        assert keys == ([i.key for i in new_items if i.key != "new-003"] if is_new else
                        [i.key for i in old_items])  # fmt: skip
        files = output_files(tmp_path)
        files.pop("set.manifest.skipped.tsv", None)  # written after the commit
        assert files == {k: v for k, v in (new if is_new else old).items()
                         if k != "set.manifest.skipped.tsv"}  # fmt: skip
        seen.append(is_new)
    assert seen == sorted(seen) and not seen[0] and seen[-1]
