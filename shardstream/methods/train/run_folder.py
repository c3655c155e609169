"""A training run's folder: what it holds, when it may be reused, and the settings of a resume.

A run folder (``--out``) holds the run's files: ``checkpoint.pt``, ``config.yaml`` (its resolved
settings), ``metrics.csv``, ``log.jsonl``, TensorBoard event files and, after ``eval knn``,
``knn.json``. :func:`plan_run` decides what a ``shardstream train dino`` call does with it:

- no ``resume``: the folder must be missing or empty, unless ``overwrite`` (``-y``) is given;
  then the previous run's files are removed (other files are left alone);
- ``resume``: the settings are those the checkpoint was saved with; settings given explicitly
  (command line, ``--config-file``) may change only :data:`RESUME_CHANGEABLE` ones, such as
  ``steps`` to extend the run, and each change is reported; any other change is refused by name;
- ``resume`` without a checkpoint: a fresh run (with the settings of the folder's
  ``config.yaml`` when there is one), and it says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import CheckpointError, RunFolderExistsError
from ...format.atomic import TEMP_SUFFIX
from .config import RESUME_CHANGEABLE, DinoTrainConfig
from .ssl_config import read_config_file

__all__ = ["RUN_FILES", "RunPlan", "plan_run", "run_files", "CHECKPOINT_NAME", "CONFIG_NAME"]
__all__ += ["METRICS_NAME", "LOG_NAME", "KNN_NAME"]

#: File names inside a run folder.
CHECKPOINT_NAME = "checkpoint.pt"
CONFIG_NAME = "config.yaml"
METRICS_NAME = "metrics.csv"
LOG_NAME = "log.jsonl"
KNN_NAME = "knn.json"
#: The files a run writes (TensorBoard's ``events.out.tfevents.*`` and checkpoint temp files too).
RUN_FILES = (CHECKPOINT_NAME, CONFIG_NAME, METRICS_NAME, LOG_NAME, KNN_NAME)


@dataclass(kw_only=True)
class RunPlan:
    """What a ``train dino`` call will do.

    Attributes:
        config: the resolved settings to train with.
        resumed_step: the checkpoint's step when resuming one, else None (a fresh run).
        changes: ``(setting, old, new)`` of each setting a resume changed.
        messages: lines for the user (resuming, starting fresh, files removed, changes).
    """

    config: DinoTrainConfig
    resumed_step: int | None = None
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def run_files(out: Path) -> list[Path]:
    """The files of a previous run in folder ``out`` (those :data:`RUN_FILES` names, TensorBoard
    event files and checkpoint temp files), sorted."""
    if not out.is_dir():
        return []
    found = [out / name for name in RUN_FILES if (out / name).exists()]
    found += out.glob("events.out.tfevents.*")
    found += out.glob(f".{CHECKPOINT_NAME}.*{TEMP_SUFFIX}")
    return sorted(set(found))


def plan_run(
    settings: dict[str, Any],
    *,
    explicit: dict[str, Any],
    resume: bool,
    overwrite: bool,
    leader: bool = True,
) -> RunPlan:
    """Resolve a run's settings against its folder, and clear the folder for a fresh start.

    Args:
        settings: the settings of a fresh run (defaults, config file and command line merged);
            must include ``data`` and ``out``.
        explicit: the settings the user gave explicitly (config file and command line), which
            a resume applies on top of the checkpoint's.
        resume: continue the run in ``settings["out"]``.
        overwrite: start over in an existing run folder (its run files are removed).
        leader: this process checks and clears the folder (under torchrun: rank 0 only; the
            others resolve the same settings without touching it).

    Returns:
        A :class:`RunPlan`.

    Raises:
        RunFolderExistsError: the folder holds files and neither ``resume`` nor ``overwrite``
            was given (the message names the folder and what it holds).
        CheckpointError: a resume would change a setting that changes what the run computes
            (the message names it, the checkpoint and both values), or the checkpoint is
            unusable.
        ConfigError: a setting is out of range.
    """

    out = Path(settings["out"])
    if not resume:
        entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
        if entries and not overwrite and leader:
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise RunFolderExistsError(
                f"run folder {out} is not empty ({shown}); add --resume to continue its run, "
                f"-y to start over (its run files are replaced) or choose another --out"
            )
        plan = RunPlan(config=DinoTrainConfig(**{**settings, "resume": False}))
        removed = run_files(out) if overwrite and leader else []
        for path in removed:
            path.unlink()
        if removed:
            names = ", ".join(path.name for path in removed)
            plan.messages.append(f"starting over in {out}: removed {names}")
        return plan

    checkpoint = out / CHECKPOINT_NAME
    if not checkpoint.exists():
        base = dict(settings)
        note = f"resume: no checkpoint in {out}, starting fresh"
        if (out / CONFIG_NAME).is_file():
            base = {**settings, **read_config_file(out / CONFIG_NAME), **explicit}
            base["out"] = out
            note += f" with the settings of {out / CONFIG_NAME}"
        plan = RunPlan(config=DinoTrainConfig(**{**base, "resume": True}))
        plan.messages.append(note)
        return plan
    return _resume(checkpoint, out, settings, explicit)


def _resume(
    checkpoint: Path, out: Path, settings: dict[str, Any], explicit: dict[str, Any]
) -> RunPlan:
    from .checkpoint import load_checkpoint  # delayed: imports torch (optional)

    state = load_checkpoint(checkpoint)
    saved = state.get("config")
    if not isinstance(saved, dict):
        raise CheckpointError(f"checkpoint {checkpoint}: has no training settings")
    saved_config = DinoTrainConfig.from_dict(
        {**saved, "out": out, "resume": True}, source=f"checkpoint {checkpoint}"
    )
    values = saved_config.to_dict()
    step = int(state.get("step", 0))
    changes = []
    for name, value in sorted(explicit.items()):
        if name in ("out", "resume") or _plain(value) == _plain(values[name]):
            continue
        if name not in RESUME_CHANGEABLE:
            allowed = ", ".join(sorted(RESUME_CHANGEABLE - {"out", "resume"}))
            raise CheckpointError(
                f"checkpoint {checkpoint}: made with {name}={values[name]!r}, this run has "
                f"{value!r}; a resumed run may change only {allowed} (start a new run with "
                f"another --out to change {name})"
            )
        if name == "steps" and value < step:
            raise CheckpointError(
                f"checkpoint {checkpoint}: the run is at step {step}, so steps={value} would "
                f"end before it"
            )
        changes.append((name, values[name], value))
    config = saved_config.replace(**{name: new for name, _, new in changes})
    plan = RunPlan(config=config, resumed_step=step, changes=changes)
    line = f"resume: {checkpoint} at step {step} of {saved_config.steps}, its settings restored"
    if changes:
        line += "; changed: " + ", ".join(f"{n} {old!r} -> {new!r}" for n, old, new in changes)
    plan.messages.append(line)
    if any(name == "steps" for name, _, _ in changes):
        plan.messages.append(
            f"resume: the lr, weight decay and EMA schedules now span {config.steps} steps"
        )
    return plan


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value
