"""The DINO pretraining loop behind ``shardstream train dino``.

One step: take a multi-crop batch from the loader (geometry in the workers, colour on the device),
run :class:`~shardstream.methods.dino.DINO`, back-propagate, clip, step AdamW, move the EMA teacher.
Learning rate and weight decay follow warmup + cosine schedules per step; the teacher temperature
follows the epoch; the EMA coefficient follows a cosine over the steps. Checkpoints hold model,
teacher, loss centre, optimizer, grad scaler, loader position and every random generator, so a
resumed run continues exactly where the saved one stopped (bit for bit on the CPU).

Under ``torchrun`` each process trains on its own share of every epoch (the loader's distributed
mode) and DDP averages the student's gradients; rank 0 writes checkpoints and logs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ...errors import CheckpointError, ConfigError, StateMismatchError
from ...loader.loader import Loader
from ...vision.dino import DinoPreset
from ..dino import DINO, WarmupCosine
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import RESUME_CHANGEABLE, DinoTrainConfig
from .distributed import DistributedContext
from .run_folder import CHECKPOINT_NAME, CONFIG_NAME
from .run_log import RunLog
from .ssl_config import write_config_file

__all__ = ["TrainResult", "train_dino", "build_model", "build_loader", "CHECKPOINT_NAME"]


@dataclass
class TrainResult:
    """What a run did.

    Attributes:
        losses: the loss of every step this process ran (after a resume: from the resumed step).
        first_step: the step the run started at (0, or where the checkpoint left off).
        steps: the step count reached.
        images_per_second: training images (per process) per second of wall time.
        input_stall: fraction of the wall time spent waiting for the loader.
        checkpoint: the last checkpoint written, if any.
        seen_indices: per step, the dataset indices of its batch (when asked for).
        model: the trained model (student and EMA teacher), in eval mode.
    """

    losses: list[float] = field(default_factory=list)
    first_step: int = 0
    steps: int = 0
    images_per_second: float = 0.0
    input_stall: float = 0.0
    checkpoint: Path | None = None
    seen_indices: list[list[int]] = field(default_factory=list)
    model: DINO | None = None


def build_model(config: DinoTrainConfig) -> DINO:
    """The DINO model of a configuration (timm encoder sized for the global crops).

    Raises:
        MissingDependencyError: timm is not installed.
        ConfigError: a model setting is out of range.
    """
    encoder_kwargs = dict(config.encoder_kwargs)
    encoder_kwargs.setdefault("img_size", config.global_crops_size)
    encoder_kwargs.setdefault("dynamic_img_size", True)
    return DINO(
        encoder_name=config.encoder_name,
        projector_hidden_dim=config.projector_hidden_dim,
        projector_bottleneck_dim=config.projector_bottleneck_dim,
        n_prototypes=config.n_prototypes,
        temperature_student=config.temperature_student,
        temperature_teacher_warmup=config.temperature_teacher_warmup,
        temperature_teacher=config.temperature_teacher,
        warmup_epochs_temperature_teacher=config.warmup_epochs_temperature_teacher,
        center_momentum=config.center_momentum,
        ema_decay_start=config.ema_decay_start,
        ema_decay_end=config.ema_decay_end,
        encoder_kwargs=encoder_kwargs,
        normalize_prototypes=config.normalize_prototypes,
    )


def build_loader(config: DinoTrainConfig, *, device: torch.device, distributed: bool) -> Any:
    """The shuffled multi-crop loader of a configuration (dinov2's recipe, sized by it).

    Raises:
        DatasetNotFoundError: the data set does not exist.
    """

    preset = DinoPreset(
        global_crops_size=config.global_crops_size,
        local_crops_size=config.local_crops_size,
        local_crops_number=config.local_crops_number,
        global_crops_scale=config.global_crops_scale,
        local_crops_scale=config.local_crops_scale,
        masks=config.masks,
        mask_probability=config.mask_probability,
        mask_ratio_tuple=config.mask_ratio,
        patch_size=_patch_size(config),
    )
    return (
        Loader(config.data, seed=config.seed)
        .batch(config.batch_size, drop_last=True)
        .shuffle(True)
        .preset(preset, device=device)
        .pytorch(
            num_workers=config.num_workers,
            num_threads=config.num_threads,
            distributed=distributed,
            persistent_workers=True,
        )
    )


def train_dino(
    config: DinoTrainConfig,
    *,
    stop_after: int | None = None,
    record_indices: bool = False,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Pretrain DINO as ``config`` says; resume from the run folder's checkpoint when asked.

    Args:
        config: the run's settings.
        stop_after: stop (after checkpointing) once this step count is reached, as if the
            process were interrupted there; the schedules still span ``config.steps``.
        record_indices: keep each step's dataset indices in the result (coverage checks).
        on_step: called with ``(step, loss)`` after every step.

    Returns:
        A :class:`TrainResult`.

    Raises:
        CheckpointError: ``resume`` names an unusable checkpoint, or one of another run.
        StateMismatchError: the checkpoint was saved over another data set (its content
            digest differs from the one at the dataset path; the message names both).
        MissingDependencyError: timm is not installed.
    """
    context = DistributedContext.from_environment(config.device)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(_training_threads(config, context.device))
        return _Run(config, context, record_indices, on_step).run(stop_after)
    finally:
        torch.set_num_threads(threads)
        context.close()


class _Run:
    """One training run: model, optimizer, loader and the step loop (internal)."""

    def __init__(
        self,
        config: DinoTrainConfig,
        context: DistributedContext,
        record_indices: bool,
        on_step: Callable[[int, float], None] | None,
    ) -> None:
        self.config = config
        self.context = context
        self.device = context.device
        self.record_indices = record_indices
        self.on_step = on_step
        torch.manual_seed(config.seed)
        self.model = build_model(config).to(self.device)
        self.network: torch.nn.Module = self.model
        if context.world_size > 1:
            self.network = torch.nn.parallel.DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                broadcast_buffers=False,
            )
        self.optimizer = torch.optim.AdamW(_parameter_groups(self.model))
        self.autocast_dtype = _autocast_dtype(config.precision, self.device)
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.autocast_dtype is torch.float16
        )
        self.loader = build_loader(config, device=self.device, distributed=context.world_size > 1)
        self.steps_per_epoch = config.steps_per_epoch or len(self.loader)
        if self.steps_per_epoch < 1:
            raise ConfigError(
                f"data set {config.data}: too small for one batch of {config.batch_size} "
                f"per process"
            )
        global_batch = config.batch_size * context.world_size
        self.lr = WarmupCosine(
            base_value=config.lr * global_batch / 256,
            final_value=config.min_lr,
            total_steps=config.steps,
            warmup_steps=min(config.warmup_steps, config.steps),
        )
        self.weight_decay = WarmupCosine(
            base_value=config.weight_decay,
            final_value=config.weight_decay_end,
            total_steps=config.steps,
        )
        self.step = 0
        self.result = TrainResult()

    # -- checkpoints -----------------------------------------------------------------------

    def checkpoint_path(self) -> Path:
        if isinstance(self.config.resume, str) and self.config.resume:
            return Path(self.config.resume)
        return self.config.out / CHECKPOINT_NAME

    def restore(self) -> None:
        path = self.checkpoint_path()
        if not self.config.resume or not path.exists():
            return
        state = load_checkpoint(path)
        saved = state.get("config")
        if not isinstance(saved, dict):
            raise CheckpointError(f"checkpoint {path}: has no training settings")
        mine = self.config.to_dict()
        defaults = {item.name: item for item in dataclasses.fields(DinoTrainConfig)}
        for name in sorted(set(mine) - RESUME_CHANGEABLE):
            # a setting newer than the checkpoint: it was saved under the default
            default = defaults[name].default
            if default is dataclasses.MISSING:
                default = defaults[name].default_factory()
            if _plain(saved.get(name, default)) != _plain(mine[name]):
                raise CheckpointError(
                    f"checkpoint {path}: made with {name}={saved.get(name, default)!r}, "
                    f"this run has {mine[name]!r}; resume with the same settings or another --out"
                )
        if state.get("world_size") != self.context.world_size:
            raise CheckpointError(
                f"checkpoint {path}: made with {state.get('world_size')} processes, "
                f"this run has {self.context.world_size}"
            )
        if not isinstance(state.get("step"), int) or state["step"] > self.config.steps:
            raise CheckpointError(
                f"checkpoint {path}: the run is at step {state.get('step')!r}, "
                f"past steps={self.config.steps}"
            )
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scaler.load_state_dict(state["scaler"])
            self.loader.load_state_dict(state["loader"][self.context.rank])
            set_rng_state(state["rng"][self.context.rank])
        except StateMismatchError as error:  # e.g. another data set at the dataset path
            raise StateMismatchError(f"checkpoint {path}: {error}") from error
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as error:
            raise CheckpointError(
                f"checkpoint {path}: cannot be restored ({type(error).__name__}: {error})"
            ) from error
        self.step = int(state["step"])
        self.result.first_step = self.step

    def save(self) -> None:
        loader_states = self.context.gather(self.loader.state_dict())
        rng_states = self.context.gather(rng_state())
        if self.context.rank != 0:
            return
        state = {
            "config": self.config.to_dict() | {"out": str(self.config.out)},
            "step": self.step,
            "world_size": self.context.world_size,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "loader": loader_states,
            "rng": rng_states,
        }
        self.result.checkpoint = save_checkpoint(self.config.out / CHECKPOINT_NAME, state)

    # -- the loop --------------------------------------------------------------------------

    def run(self, stop_after: int | None) -> TrainResult:
        self.restore()
        last = self.config.steps if stop_after is None else min(stop_after, self.config.steps)
        bar = self._progress_bar(last)
        log = self._run_log()
        started = time.perf_counter()
        first = self.step
        waited = 0.0
        window = (self.step, started, 0.0)  # step, time and wait at the last metrics row
        batches = self._batches()
        try:
            while self.step < last:
                before = time.perf_counter()
                batch = next(batches)
                waited += time.perf_counter() - before
                loss = self._train_step(batch)
                self.step += 1
                self.result.losses.append(loss)
                if self.record_indices:
                    self.result.seen_indices.append(batch["index"].tolist())
                if self.on_step is not None:
                    self.on_step(self.step, loss)
                now = time.perf_counter()
                elapsed = now - started
                images = (self.step - first) * self.config.batch_size
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(
                        loss=f"{loss:.4f}",
                        img_s=f"{images / elapsed:.0f}",
                        stall=f"{100 * waited / elapsed:.0f}%",
                    )
                if log is not None and (
                    self.step % self.config.log_every == 0 or self.step == last
                ):
                    self._log_metrics(log, loss, window, now, waited)
                    window = (self.step, now, waited)
                every = self.config.checkpoint_every
                if every and self.step % every == 0 and self.step < last:
                    self.save()
            elapsed = time.perf_counter() - started
            self.result.images_per_second = (
                (self.step - first) * self.config.batch_size / elapsed if elapsed else 0.0
            )
            self.result.input_stall = waited / elapsed if elapsed else 0.0
            self.result.steps = self.step
            # fold the last step's queued centre statistics in on every rank (saving does it on
            # rank 0 only), so every rank ends with the same centre
            self.model.dino_loss.apply_center_update()
            self.save()
            self.result.model = self.model.eval()
        finally:
            if bar is not None:
                bar.close()
            if log is not None:
                log.close()
            self.loader.close()
        return self.result

    def _log_metrics(
        self, log: RunLog, loss: float, window: tuple[int, float, float], now: float, waited: float
    ) -> None:
        """One row of metrics for the step just taken; speed and stall since the last row."""
        step0, time0, waited0 = window
        seconds = now - time0
        stats = self.loader.stats()
        stages = stats.stages()
        step = self.step - 1  # the step just taken, as the schedules count it
        row = {
            "step": self.step,
            "epoch": step // self.steps_per_epoch,
            "loss": loss,
            "lr": self.lr(step),
            "weight_decay": self.weight_decay(step),
            "teacher_momentum": self.model.ema_coefficient,
            "teacher_temperature": self.model.teacher_temperature,
            "images_per_s": (self.step - step0) * self.config.batch_size / seconds
            if seconds > 0
            else 0.0,
            "input_stall_pct": 100 * (waited - waited0) / seconds if seconds > 0 else 0.0,
        }
        for stage, stage_seconds in stages.items():
            row[f"loader_{stage}_s"] = stage_seconds
        log.write(row, loader_summary=str(stats))

    def _batches(self):
        """Batches forever, epoch after epoch, from wherever the loader's state says."""
        while True:
            produced = 0
            for batch in self.loader:
                produced += 1
                yield batch
            if produced == 0:
                raise ConfigError(f"data set {self.config.data}: the loader gave no batch")

    def _train_step(self, batch: dict[str, Any]) -> float:
        config = self.config
        epoch = self.step // self.steps_per_epoch
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr(self.step)
            if group["apply_weight_decay"]:
                group["weight_decay"] = self.weight_decay(self.step)
        self.model.set_epoch(epoch)
        self.model.update_ema_coefficient(self.step, config.steps)
        n_local = config.local_crops_number
        global_views = list(batch["collated_global_crops"].chunk(2))
        local_views = list(batch["collated_local_crops"].chunk(n_local)) if n_local else None
        autocast = (
            torch.autocast(self.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with autocast:
            output = self.network(global_views=global_views, local_views=local_views)
        loss = output.loss
        if not torch.isfinite(loss):
            raise FloatingPointError(f"step {self.step}: the loss is {float(loss)}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if config.clip_grad:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(
                [p for p in self.model.parameters() if p.requires_grad], config.clip_grad
            )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.model.update_teacher()
        return float(loss.detach())

    def _progress_bar(self, last: int) -> Any:
        if not self.config.progress or self.context.rank != 0:
            return None
        from tqdm import tqdm

        return tqdm(total=last, initial=self.step, desc="dino", unit="step", dynamic_ncols=True)

    def _run_log(self) -> RunLog | None:
        """The metric files, and ``config.yaml`` with the settings (rank 0 only)."""
        if self.context.rank != 0:
            return None
        self.config.out.mkdir(parents=True, exist_ok=True)
        write_config_file(self.config.out / CONFIG_NAME, self.config)
        return RunLog(out=self.config.out, first_step=self.step)


def _plain(value: Any) -> Any:
    """Tuples as lists (a checkpoint stores both as lists), for comparing settings."""
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _training_threads(config: DinoTrainConfig, device: torch.device) -> int:
    """Intra-op threads for the training process: as configured, else the cores the loader's
    workers leave free on the CPU (measured on 2 cores with 2 workers: 1 thread trains at 609
    images/s, torch's default of 2 at 374, as the threads fight the workers for the cores)."""
    if config.torch_threads is not None:
        return config.torch_threads
    if device.type != "cpu" or config.num_workers == 0:
        return torch.get_num_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) - config.num_workers * config.num_threads)


def _parameter_groups(model: DINO) -> list[dict[str, Any]]:
    """Student parameters in two groups: weights decay, biases and norm scales do not."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        if parameter.ndim <= 1 or name.endswith(".bias"):
            no_decay.append(parameter)
        else:
            decay.append(parameter)
    return [
        {"params": decay, "apply_weight_decay": True},
        {"params": no_decay, "apply_weight_decay": False, "weight_decay": 0.0},
    ]


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "fp16":
        return torch.float16
    return torch.bfloat16


def _patch_size(config: DinoTrainConfig) -> int:
    patch = config.encoder_kwargs.get("patch_size", 16)
    return int(patch if isinstance(patch, int) else patch[0])
