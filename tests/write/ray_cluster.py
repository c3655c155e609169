"""Ray for the write tests: one local session per test run, and a two-node cluster on 127.0.0.1.

The session (``ray.init(num_cpus=2)``) is shared by every test that needs Ray (starting Ray
takes seconds); the two-node cluster is started with the real ``ray start`` command and stopped
by killing exactly the processes it started (never ``ray stop``, which would stop every Ray
cluster on the machine).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

#: Environment of ``ray start`` and of drivers connecting to its cluster (no auth token files).
RAY_ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture(scope="session")
def ray_local() -> Iterator[str]:
    """A local Ray session with 2 CPUs in this process; yields its GCS address."""
    yield from _local_session()


@pytest.fixture(scope="module", name="ray_local")
def ray_local_module() -> Iterator[str]:
    """``ray_local`` for a module far from the others in a test run: Ray stops when the module
    ends, so its idle processes (~7 % of a core) do not run beside the rest of the suite."""
    yield from _local_session()


def _local_session() -> Iterator[str]:
    started = False
    if not ray.is_initialized():
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        started = True
    yield ray.get_runtime_context().gcs_address
    if started:
        ray.shutdown()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def two_node_cluster(tmp_path: Path) -> Iterator[str]:
    """A head node and a second node (1 CPU each) on 127.0.0.1; yields the head's address."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus", "1", "--disable-usage-stats", "--node-ip-address", "127.0.0.1"]
    try:
        subprocess.run(
            ["ray", "start", "--head", "--port", str(port), "--include-dashboard", "false"]
            + common,
            env=RAY_ENV,
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            ["ray", "start", "--address", address] + common,
            env=RAY_ENV,
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield address
    finally:
        stop_cluster(port)


def stop_cluster(port: int) -> list[int]:
    """Kill the processes of the cluster whose GCS listens on ``port`` (those naming the port
    on their command line, and their descendants, e.g. the idle workers); returns their pids."""
    pattern = re.compile(rf"(?<!\d){port}(?!\d)")
    parents: dict[int, int] = {}
    matched: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        if pattern.search(command) and pid != os.getpid():
            matched.add(pid)
    victims = set(matched)
    grew = True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in victims} - victims
        grew = bool(children)
        victims |= children
    for pid in sorted(victims):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.2)
    return sorted(victims)
