"""The loop a worker process runs: receive batch tasks, load them, write them to a slot, reply.

Messages from the consumer are ``(ticket, task, slot, slot name, slot size, grow name)`` tuples,
or ``None`` to stop. Replies are tuples whose first element says what they are:

- ``("ok", ticket, slot, new name, new size, pickled spec, samples, skipped, nbytes, stages)``
- ``("empty", ticket, skipped, stages)``: every sample was skipped
- ``("fail", ticket, failure)`` and ``("cancelled", ticket)``
- ``("open_fail", -1, failure)``: ``work.open()`` raised; the worker then exits.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from multiprocessing.reduction import ForkingPickler
from typing import Any

from .._lifeline import bind_to_parent
from .batches import BatchRunner, Failure, describe_batch
from .scratch import BatchBuffers
from .slots import WorkerSlots
from .tasks import BatchWork
from .transport import plan_tree, write_leaves

__all__ = ["worker_main"]

#: seconds between checks that the consumer process is still alive
_PARENT_POLL_S = 1.0


def worker_main(
    work: BatchWork,
    worker: int,
    tasks: Any,
    results: Any,
    cells: Any,
    batches: Any,
    num_threads: int,
    parent_pid: int | None,
    first_live_ticket: Any,
    deathsig: bool = False,
) -> None:
    """Serve batch tasks until told to stop or the consumer goes away.

    Args:
        work: the work (opened here).
        worker: this worker's number.
        tasks: the connection tasks arrive on.
        results: the connection replies go to.
        cells: shared int64 cells, ``num_threads`` per worker: the index each thread loads.
        batches: shared int64 cells, one per worker: the ticket of the batch in progress.
        num_threads: threads per batch.
        parent_pid: the process id this worker's parent must have (the consumer's), or
            ``None`` for whatever parent it has now (a ``forkserver`` child).
        first_live_ticket: shared int64; tasks with a smaller ticket are cancelled.
        deathsig: have the kernel kill this worker when its parent thread ends (see
            :func:`~shardstream._lifeline.deathsig_fits`).

    The worker dies with its parent, also while a sample's transform hangs: the kernel kills
    it (``deathsig``) or a watchdog thread does within 0.1 s (see :mod:`shardstream._lifeline`).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent_pid is None:
        parent_pid = os.getppid()
    bind_to_parent(parent_pid, deathsig=deathsig)
    buffers = BatchBuffers(reuse=True)  # each batch is copied into a slot before the next
    # parallelism comes from the worker processes and their threads: native libraries' own
    # thread pools would only oversubscribe the cores
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        cv2.setNumThreads(1)
    try:
        work.open()
    except Exception as error:
        failure = Failure.capture(error, "open", f"work.open() in loader worker {worker}")
        _send(results, ("open_fail", -1, failure.portable()))
        return
    base = worker * num_threads
    my_cells = _Cells(cells, base)
    ticket_now = [-1]
    runner = BatchRunner(
        work=work,
        num_threads=num_threads,
        cells=my_cells,
        cancelled=lambda: ticket_now[0] < first_live_ticket.value,
    )
    slots = WorkerSlots()
    try:
        while True:
            if not tasks.poll(_PARENT_POLL_S):
                if os.getppid() != parent_pid:
                    return
                continue
            try:
                message = tasks.recv()
            except (EOFError, OSError):
                return
            if message is None:
                return
            ticket = message[0]
            ticket_now[0] = ticket
            if ticket < first_live_ticket.value:
                reply: tuple = ("cancelled", ticket)
            else:
                batches[worker] = ticket
                reply = _serve(runner, slots, buffers, message)
                batches[worker] = -1
            if not _send(results, reply):
                return
    finally:
        runner.close()
        slots.close()


def _serve(runner: BatchRunner, slots: WorkerSlots, buffers: BatchBuffers, message: tuple) -> tuple:
    ticket, task, slot, name, size, grow = message
    task = dataclasses.replace(task, buffers=buffers)
    current = slots.current(slot, name, size)
    with buffers.arena(current) as place:  # the collation may fill the slot directly
        loaded = runner.run(task)
        used = place.used if place is not None else 0
    if loaded is None:
        return ("cancelled", ticket)
    if isinstance(loaded, Failure):
        return ("fail", ticket, loaded.portable())
    if loaded.tree is None:
        return ("empty", ticket, loaded.skipped, loaded.stages)
    try:
        in_place = (current, used) if used and current is not None else None
        plan = plan_tree(loaded.tree, in_place=in_place)
        if plan.size > size and used:  # outgrew the slot: copy every leaf into the grown one
            plan = plan_tree(loaded.tree)
        spec = bytes(ForkingPickler.dumps(plan.spec))
    except Exception as error:  # a leaf that cannot be pickled
        where = describe_batch(runner.work, task)
        return ("fail", ticket, Failure.capture(error, "collate", where).portable())
    try:
        buffer, new_name, new_size = slots.buffer_for(slot, name, size, grow, plan.size)
        if buffer is not None:
            write_leaves(plan, buffer)
            del buffer
    except Exception as error:
        where = f"moving {describe_batch(runner.work, task)} to the consumer"
        return ("fail", ticket, Failure.capture(error, "transport", where).portable())
    return (
        "ok", ticket, slot, new_name, new_size, spec,
        loaded.samples, loaded.skipped, plan.nbytes, loaded.stages,
    )  # fmt: skip


def _send(results: Any, reply: tuple) -> bool:
    """Send ``reply``; return False when the consumer is gone."""
    try:
        results.send(reply)
        return True
    except (OSError, EOFError):
        return False


class _Cells:
    """This worker's slice of the shared per-thread index cells."""

    __slots__ = ("_base", "_cells")

    def __init__(self, cells: Any, base: int) -> None:
        self._cells = cells
        self._base = base

    def __setitem__(self, cell: int, index: int) -> None:
        self._cells[self._base + cell] = index
