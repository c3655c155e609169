"""Run a job in ``world_size`` real processes joined by a gloo process group on 127.0.0.1.

Each process is started by a ``forkserver`` that has imported torch already (a fresh process
per rank, as with ``spawn``, without each rank paying torch's import), initialises
``torch.distributed`` (gloo, TCP rendezvous on a free local port, a collective timeout), runs
``job(rank, world_size, *args)`` and sends back its result. A rank that fails, or a run that
does not finish within ``timeout`` seconds (a hang), fails the test; the processes started here
are then killed.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue as queue_module
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

COLLECTIVE_TIMEOUT_S = 30


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _PortTaken(RuntimeError):
    """The rendezvous port was taken between :func:`free_port` and rank 0's listen."""


def run_world(
    world_size: int, job: Callable[..., Any], *args: Any, timeout: float = 120
) -> list[Any]:
    """Run ``job`` on every rank of a fresh gloo group; return the results by rank.

    A world whose rendezvous port was taken meanwhile by another process (EADDRINUSE: the job
    has not run yet) is started again on a new port, up to three times.
    """
    for _ in range(2):
        try:
            return _run_world_once(world_size, job, args, timeout)
        except _PortTaken:
            continue
    return _run_world_once(world_size, job, args, timeout)


def _run_world_once(
    world_size: int, job: Callable[..., Any], args: tuple[Any, ...], timeout: float
) -> list[Any]:
    context = multiprocessing.get_context("forkserver")
    # the server imports torch once (where this process starts it first); each rank is a fork of it
    context.set_forkserver_preload(["torch", "torch.distributed"])
    results: Any = context.Queue()
    port = free_port()
    processes = [
        context.Process(target=_rank_main, args=(rank, world_size, port, job, args, results))
        for rank in range(world_size)
    ]
    for process in processes:
        process.start()
    collected: dict[int, Any] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(collected) < world_size:
            try:
                rank, ok, payload = results.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue_module.Empty:
                raise TimeoutError(
                    f"world of {world_size}: ranks {sorted(set(range(world_size)) - set(collected))} "
                    f"did not finish within {timeout} s (a hang)"
                ) from None
            if not ok:
                taken = "EADDRINUSE" in payload and "init_process_group" in payload
                failure = _PortTaken if taken else RuntimeError
                raise failure(f"rank {rank} of {world_size} failed:\n{payload}")
            collected[rank] = payload
    except BaseException:
        for process in processes:  # a failed or hung world: stop its ranks now
            process.kill()
        raise
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
    return [collected[rank] for rank in range(world_size)]


def _rank_main(rank, world_size, port, job, args, results) -> None:
    try:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
        import torch
        import torch.distributed as dist

        torch.set_num_threads(1)
        dist.init_process_group(
            "gloo",
            init_method=f"tcp://127.0.0.1:{port}",
            rank=rank,
            world_size=world_size,
            timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_S),
        )
        try:
            payload = job(rank, world_size, *args)
            dist.barrier()
        finally:
            dist.destroy_process_group()
        results.put((rank, True, payload))
    except BaseException:
        results.put((rank, False, traceback.format_exc()))


@contextlib.contextmanager
def process_group_of_one() -> Iterator[None]:
    """A real gloo process group of world size 1 in this process, destroyed on exit.

    For code that, like torch's ``DistributedSampler``, needs an initialised group even when it
    runs as the only rank.
    """
    import torch.distributed as dist

    saved = os.environ.get("GLOO_SOCKET_IFNAME")
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    try:
        dist.init_process_group(
            "gloo",
            init_method=f"tcp://127.0.0.1:{free_port()}",
            rank=0,
            world_size=1,
            timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_S),
        )
        try:
            yield
        finally:
            dist.destroy_process_group()
    finally:
        if saved is None:
            os.environ.pop("GLOO_SOCKET_IFNAME", None)
        else:
            os.environ["GLOO_SOCKET_IFNAME"] = saved
