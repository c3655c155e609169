"""kill -9 of ``shardstream write`` and of a Loader consumer leaves no process or segment behind.

Each test starts the real thing in a subprocess, records (from ``/proc``) every process below
it and every ``/dev/shm`` segment those processes map, kills it with SIGKILL mid-run, and checks
2 s later that none of them is alive. Whatever survives is killed and unlinked afterwards, so a
failing run leaves nothing behind either.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from shardstream import FileWriter
from shardstream.sets.demo import generate_demo_images

ROOT = Path(__file__).resolve().parents[2]
#: seconds after the kill by which everything must be gone
GRACE_S = 2.0
SHM = Path("/dev/shm")

pytestmark = pytest.mark.skipif(not SHM.is_dir(), reason="needs Linux /proc and /dev/shm")


def process_table() -> dict[int, tuple[int, str]]:
    """``{pid: (parent pid, state)}`` of every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        table[int(entry)] = (int(fields[1]), fields[0])
    return table


def descendants(root: int) -> set[int]:
    """Every process below ``root`` (children, their children, ...)."""
    table = process_table()
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, (ppid, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    """The processes of ``pids`` that still run: a zombie counts as dead once its last thread
    has exited (a zombie group leader may still have threads holding its files)."""
    table = process_table()
    found = set()
    for pid in pids:
        if pid not in table:
            continue
        try:
            threads = len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue
        if table[pid][1] != "Z" or threads > 1:
            found.add(pid)
    return found


def mapped_segments(pids: set[int]) -> set[str]:
    """Names of the ``/dev/shm`` segments the processes map (unlinked ones excluded)."""
    names = set()
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if "/dev/shm/" in line and not line.endswith("(deleted)"):
                names.add(line.split("/dev/shm/", 1)[1].strip())
    return names


def owned_segments(pid: int) -> set[str]:
    """Segments whose name says ``pid`` made them (the loader's and the writer pool's)."""
    prefixes = (f"ss{pid:x}", f"ssw{pid:x}", f"sso_ss{pid:x}", f"sso_ssw{pid:x}")
    return {name for name in os.listdir(SHM) if name.startswith(prefixes)}


def kill_and_check(process: subprocess.Popen, pids: set[int], segments: set[str]) -> None:
    """SIGKILL ``process``; assert none of ``pids`` / ``segments`` is left within GRACE_S."""
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(10) == -signal.SIGKILL
    deadline = time.monotonic() + GRACE_S
    while True:  # done as soon as all are gone (none can come back once every pid is dead)
        left_processes = alive(pids)
        segments |= owned_segments(process.pid)
        left_segments = {name for name in segments if (SHM / name).exists()}
        if not (left_processes or left_segments) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    try:
        assert left_processes == set(), [
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ") for pid in left_processes
        ]
        assert left_segments == set()
    finally:  # a failing run must not leave them behind
        for pid in alive(left_processes):
            os.kill(pid, signal.SIGKILL)
        for name in left_segments:
            (SHM / name).unlink(missing_ok=True)


def environment() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("teardown") / "images"
    return generate_demo_images(root, num_images=300, num_classes=3, workers=1).root


def test_kill_9_of_write_leaves_no_worker_and_no_segment(image_tree, tmp_path):
    output = tmp_path / "out.msgpack"
    command = [
        sys.executable, "-m", "shardstream", "write", "imagefolder", str(image_tree),
        "-o", str(output), "--workers", "2", "--quality", "50", "--quiet", "-y",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=tmp_path, env=environment(), stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(descendants(process.pid)) < 2:  # the pool's workers are up: mid-run
            assert process.poll() is None, "the conversion ended before its workers were seen"
            assert time.monotonic() < deadline, "no worker processes appeared"
            time.sleep(0.002)
        os.kill(process.pid, signal.SIGSTOP)  # hold it mid-run while its processes are listed
        time.sleep(0.2)
        pids = descendants(process.pid)
        segments = mapped_segments(pids | {process.pid})
        assert len(pids) >= 2
        kill_and_check(process, pids, segments)
        assert not output.exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


CONSUMER = """
import os
import sys
import time

from shardstream import Loader

marker = sys.argv[2]


def hang_at_13(sample):
    if int(sample["index"]) == 13:
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(3600)
    return sample


def consume():
    loader = Loader(sys.argv[1], seed=0).transform(hang_at_13).batch(4).pytorch(num_workers=2)
    for batch in loader:
        print(batch["index"].tolist(), flush=True)


if sys.argv[3] == "thread":  # workers forked from a thread: no PR_SET_PDEATHSIG, the watchdog
    import threading

    threading.Thread(target=consume).start()
else:
    consume()
"""


def start_hung_consumer(tmp_path: Path, where: str = "main", **options) -> subprocess.Popen:
    """A Loader consumer whose worker hangs in a transform (returns once it does)."""
    data = tmp_path / "numbers.msgpack"
    with FileWriter(data, overwrite=True, disable=True) as writer:
        for i in range(32):
            writer.write({"key": f"n{i:02d}", "value": np.full(1000, i, dtype=np.int64)})
    script = tmp_path / "consumer.py"
    script.write_text(textwrap.dedent(CONSUMER))
    marker = tmp_path / "hung"
    process = subprocess.Popen(
        [sys.executable, str(script), str(data), str(marker), where],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        text=True,
        **options,
    )
    deadline = time.monotonic() + 60
    while not marker.exists():  # a worker is inside the hanging transform
        assert process.poll() is None, "the consumer ended before the transform hung"
        assert time.monotonic() < deadline, "the transform was never reached"
        time.sleep(0.01)
    assert process.stdout.readline().strip() == "[0, 1, 2, 3]"
    time.sleep(0.3)
    return process


@pytest.mark.parametrize("where", ["main", "thread"])
def test_kill_9_of_a_loader_consumer_leaves_no_worker_and_no_segment(tmp_path, where):
    marker = tmp_path / "hung"
    process = start_hung_consumer(tmp_path, where)
    try:
        pids = descendants(process.pid)
        hung = int(marker.read_text())
        assert hung in pids
        segments = mapped_segments(pids | {process.pid}) | owned_segments(process.pid)
        assert segments, "the batches delivered so far went through shared memory"
        kill_and_check(process, pids, segments)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


LIVE_OWNER = """
import os, time
from shardstream._lifeline import claim_prefix
prefix = f"ss{os.getpid():x}abcdef"
claim_prefix(prefix)
with open(f"/dev/shm/{prefix}_0_1", "wb") as f:
    f.write(b"x")
print(f"sso_{prefix} {prefix}_0_1", flush=True)
time.sleep(60)
"""


def test_segments_of_a_killed_process_group_are_reaped_by_the_next_pool(tmp_path):
    """kill -9 of the consumer's whole group also kills the resource tracker, which would have
    unlinked the segments: the next pool removes those of owners that are dead."""
    from shardstream.engine import WorkerPool

    from ..engine.works import RandomWork

    process = start_hung_consumer(tmp_path, start_new_session=True)
    segments: set[str] = set()
    try:
        pids = descendants(process.pid)
        segments = mapped_segments(pids | {process.pid}) | owned_segments(process.pid)
        assert segments
        os.killpg(process.pid, signal.SIGKILL)
        assert process.wait(10) == -signal.SIGKILL
        deadline = time.monotonic() + 10
        while alive(pids):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        WorkerPool(work=RandomWork(), num_workers=1).close()
        assert {name for name in segments if (SHM / name).exists()} == set()
        owner = subprocess.Popen(  # a live owner of other segments: they are kept
            [sys.executable, "-c", LIVE_OWNER],
            env=environment(),
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            live = set(owner.stdout.readline().split())
            assert len(live) == 2 and all((SHM / name).exists() for name in live)
            WorkerPool(work=RandomWork(), num_workers=1).close()
            assert all((SHM / name).exists() for name in live)
        finally:  # its resource tracker too: nothing removes its segments but the next reaper
            with contextlib.suppress(ProcessLookupError):
                os.killpg(owner.pid, signal.SIGKILL)
            owner.wait()
        from shardstream._lifeline import reap_unclaimed

        assert sorted(reap_unclaimed()) == sorted(live)  # its owner is dead now
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for name in segments:  # a failing run must not leave them behind
            (SHM / name).unlink(missing_ok=True)


def test_workers_started_from_a_thread_outlive_the_thread(tmp_path):
    """PR_SET_PDEATHSIG fires when the parent *thread* ends: workers forked from a thread that
    has ended must keep serving the next epoch."""
    import threading

    from shardstream.loader.loader import Loader

    data = tmp_path / "numbers.msgpack"
    with FileWriter(data, overwrite=True, disable=True) as writer:
        for i in range(16):
            writer.write({"key": f"n{i:02d}", "value": np.full(4, i, dtype=np.int64)})
    loader = Loader(data, seed=0).batch(4).numpy(num_workers=2, persistent_workers=True)
    epochs = []
    thread = threading.Thread(target=lambda: epochs.append([b["value"][:, 0] for b in loader]))
    thread.start()
    thread.join()
    pids = set(loader._run._pool.worker_pids())
    time.sleep(0.5)
    assert alive(pids) == pids and len(pids) == 2
    epochs.append([b["value"][:, 0] for b in loader])
    assert set(loader._run._pool.worker_pids()) == pids
    assert [np.concatenate(e).tolist() for e in epochs] == [list(range(16))] * 2
    loader.close()
    assert alive(pids) == set()


def test_forkserver_workers_stay_while_idle():
    """A forkserver worker's parent is the server, not the consumer: it must not take that for
    its consumer's death (idle persistent workers used to exit after 1 s)."""
    from shardstream.engine import WorkerPool

    from ..engine.works import RandomWork, make_tasks

    with WorkerPool(
        work=RandomWork(),
        num_workers=2,
        persistent_workers=True,
        multiprocessing_context="forkserver",
    ) as pool:
        first = [b["index"].tolist() for _, b in pool.run(make_tasks([3, 3]))]
        pids = set(pool.worker_pids())
        time.sleep(1.5)  # idle for longer than the workers' poll of their parent
        assert alive(pids) == pids
        second = [b["index"].tolist() for _, b in pool.run(make_tasks([3, 3]))]
        assert set(pool.worker_pids()) == pids
    assert first == second == [[0, 1, 2], [3, 4, 5]]
