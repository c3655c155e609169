"""The loader's execution engine: an ordered, parallel map from batch tasks to batches.

It knows nothing about samples or images: a :class:`BatchWork` (built by the loader chain)
loads one sample of a :class:`BatchTask` and collates a batch; a :class:`WorkerPool` runs it
in worker processes and threads, moves batches through shared memory and hands them back in
task order.
"""

from __future__ import annotations

from .pool import WorkerPool
from .tasks import SKIPPED, STAGES, BatchTask, BatchWork, StageTimer

__all__ = ["SKIPPED", "STAGES", "BatchTask", "BatchWork", "StageTimer", "WorkerPool"]
