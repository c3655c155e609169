"""A run's metrics every ``log_every`` steps: ``metrics.csv``, ``log.jsonl`` and TensorBoard.

``metrics.csv`` has one row per logged step with the columns of :data:`METRICS_COLUMNS`: the loss,
the learning rate, weight decay, teacher momentum (EMA coefficient) and teacher temperature used
by that step, the images/s and input stall % since the previous row, and the loader's seconds
per stage (read, decode, transform, collate: summed over workers; wait: the training loop's)
since the process started training (a resumed run counts from its resume). ``log.jsonl`` holds the same as JSON lines plus the loader's one-line summary. When
``tensorboard`` is installed, the same scalars go to TensorBoard event files in the run folder
(``tensorboard --logdir RUN``).

A resumed run continues the files: rows after the checkpoint's step (logged by a run killed
after its last checkpoint) are dropped first, so each step appears once. A fresh run starts them
empty.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from ...format.atomic import StagedFiles
from .run_folder import LOG_NAME, METRICS_NAME

__all__ = ["METRICS_COLUMNS", "RunLog", "tensorboard_available"]

#: The columns of ``metrics.csv``, in order.
METRICS_COLUMNS: tuple[str, ...] = (
    "step",
    "epoch",
    "loss",
    "lr",
    "weight_decay",
    "teacher_momentum",
    "teacher_temperature",
    "images_per_s",
    "input_stall_pct",
    "loader_read_s",
    "loader_decode_s",
    "loader_transform_s",
    "loader_collate_s",
    "loader_wait_s",
)


def tensorboard_available() -> bool:
    """Whether ``torch.utils.tensorboard`` can write event files (``tensorboard`` installed)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return False
    return True


class RunLog:
    """The metric files of one run (rank 0 only), opened for a run starting at ``first_step``.

    Args:
        out: the run folder (created when missing).
        first_step: 0 for a fresh run (the files start empty), else the resumed checkpoint's
            step (later rows are dropped, new ones appended).
        tensorboard: also write TensorBoard events; None: when ``tensorboard`` is installed.
    """

    def __init__(self, *, out: Path, first_step: int, tensorboard: bool | None = None) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        _truncate_after(self.out / METRICS_NAME, first_step, csv_file=True)
        _truncate_after(self.out / LOG_NAME, first_step, csv_file=False)
        metrics_path = self.out / METRICS_NAME
        new = first_step == 0 or not metrics_path.exists() or metrics_path.stat().st_size == 0
        mode = "w" if new else "a"
        self._csv_file = open(metrics_path, mode, encoding="utf-8", newline="")  # noqa: SIM115
        self._csv = csv.DictWriter(self._csv_file, fieldnames=METRICS_COLUMNS)
        if new:
            self._csv.writeheader()
            self._csv_file.flush()
        mode = "w" if first_step == 0 else "a"
        self._log = open(self.out / LOG_NAME, mode, encoding="utf-8")  # noqa: SIM115
        if tensorboard is None:
            tensorboard = tensorboard_available()
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step: events a killed run logged after the checkpoint are hidden
            self._writer = SummaryWriter(
                log_dir=str(self.out), purge_step=first_step + 1 if first_step else None
            )

    def write(self, row: dict[str, float], *, loader_summary: str | None = None) -> None:
        """Log one step: ``row`` holds every :data:`METRICS_COLUMNS` entry."""
        self._csv.writerow({name: row[name] for name in METRICS_COLUMNS})
        self._csv_file.flush()
        record: dict[str, Any] = {name: row[name] for name in METRICS_COLUMNS}
        if loader_summary is not None:
            record["loader"] = loader_summary
        self._log.write(json.dumps(record) + "\n")
        self._log.flush()
        if self._writer is not None:
            step = int(row["step"])
            for name in METRICS_COLUMNS[2:]:
                value = float(row[name])
                if math.isfinite(value):
                    self._writer.add_scalar(_tag(name), value, step)
            self._writer.flush()

    def close(self) -> None:
        """Close the files (idempotent)."""
        self._csv_file.close()
        self._log.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _tag(name: str) -> str:
    if name.startswith("loader_"):
        return f"loader/{name.removeprefix('loader_')}"
    if name in ("images_per_s", "input_stall_pct"):
        return f"speed/{name}"
    return f"train/{name}"


def _truncate_after(path: Path, step: int, *, csv_file: bool) -> None:
    """Drop the rows of ``path`` logged after ``step`` (atomically; nothing when none are)."""
    if step == 0 or not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = lines[:1] if csv_file else []
    for line in lines[1:] if csv_file else lines:
        if not line.endswith("\n"):
            continue  # the torn last line of a killed run
        try:
            logged = (
                int(next(csv.reader(io.StringIO(line)))[0])
                if csv_file
                else int(json.loads(line)["step"])
            )
        except (ValueError, KeyError, IndexError, TypeError, StopIteration):
            continue  # not a row
        if logged <= step:
            kept.append(line)
    if kept == lines:
        return
    staged = StagedFiles()
    try:
        staged.write_bytes(path, "".join(kept).encode("utf-8"))
        staged.commit()
    except BaseException:
        staged.abort()
        raise
