"""Settings of a DINO pretraining run (``shardstream train dino``), validated once."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...checks import non_negative_int, positive_int
from ...errors import ConfigError

__all__ = ["DinoTrainConfig", "TINY_VIT", "RUN_ONLY_SETTINGS", "RESUME_CHANGEABLE"]

#: The CPU default encoder: a tiny ViT (timm) for 32 px global and 16 px local crops: 8 px
#: patches (16 tokens + CLS per global crop), width 64, 2 blocks. On the demo set, wider or deeper
#: ViTs (96 x 3, 128 x 4, 192 x 2) and 4 px patches learned no better in a few hundred steps and
#: cost 2-7x the time.
TINY_VIT: dict[str, Any] = {
    "encoder_name": "vit_tiny_patch16_224",
    "encoder_kwargs": {
        "img_size": 32,
        "patch_size": 8,
        "embed_dim": 64,
        "depth": 2,
        "num_heads": 2,
        "dynamic_img_size": True,
    },
}


#: Settings that do not change what a run computes; a checkpoint may be resumed under others.
RUN_ONLY_SETTINGS = frozenset(
    {
        "out",
        "resume",
        "progress",
        "log_every",
        "checkpoint_every",
        "num_workers",
        "num_threads",
        "torch_threads",
        "device",
    }
)

#: Settings a resumed run may change: the run-only ones, ``steps`` (to extend the run; its
#: schedules then span the new total) and ``data`` (a moved data set: the loader's state still
#: checks that its content is the one the checkpoint was saved over).
RESUME_CHANGEABLE = RUN_ONLY_SETTINGS | {"steps", "data"}


@dataclass(frozen=True, kw_only=True)
class DinoTrainConfig:
    """Everything a DINO run needs; the defaults train a tiny ViT on the CPU in about a minute.

    The defaults were chosen on the demo set (600 images, 10 classes, 2 shared CPU cores):

    - Teacher temperature 0.03, constant. With DINO's 0.04 -> 0.07 warmup (and with 0.04
      constant) the centred teacher of a small head (256 normalised prototypes) drifts to the
      uniform distribution within ~50 steps (entropy 5.2-5.3 of ln 256 = 5.55): the targets carry
      no information and the loss rises to ~ln K and stays there. At 0.03 the teacher's entropy
      stays near 3 and the loss falls. 0.02 falls lower but spikes (entropy 0.6 -> 2.5).
    - lr 1e-3 at the default batch of 32 (``lr`` = 8e-3 per 256 images): 5e-4 learns slower,
      2e-3 and more destabilise the teacher (the loss climbs back after the warmup).
    - EMA 0.99 -> 1 over the run: 0.95-0.98 makes the teacher oscillate; 0.996 (DINO's) barely
      moves it in a few hundred steps.
    - 1000 steps of 32 images: about 55 s at ~600 images/s. On 600 images the loss drops from
      ~5.2 (steps 1-9) to ~3.9 by step 100, then falls slowly (3.9 -> 3.45 over steps 100-900);
      the teacher's k-NN top-1 at 16 px rises from 71-72 % (random init) to 81-85 % by step 900
      (only 75-84 % at step 300, too close to the noise for some seeds).
    - 32 px global / 2 x 16 px local crops, 256 prototypes, 256 -> 64 head: more local crops
      (6), more prototypes (1024), a wider head, no blur, no weight decay, no gradient clipping,
      freezing the prototypes for the first epoch (DINO's ``freeze_last_layer``) or
      unnormalised prototypes changed k-NN accuracy by less than its noise at equal steps.

    Attributes:
        data: the packed data set (a data file, a ``*.manifest`` or a glob of shards).
        out: folder for checkpoints and the run's log.
        steps: optimizer steps in total (the schedules span them).
        steps_per_epoch: steps in one epoch; None means one pass over the data.
        batch_size: images per step per process.
        encoder_name / encoder_kwargs: the backbone (a timm name and its arguments).
        projector_hidden_dim / projector_bottleneck_dim / n_prototypes: DINO head sizes.
        normalize_prototypes: L2-normalise the prototype vectors (the original DINO's
            weight-normalised last layer; stable_pretraining leaves them free).
        global_crops_size / local_crops_size / local_crops_number / global_crops_scale /
            local_crops_scale: the multi-crop recipe.
        masks: also generate iBOT masks in the loader (the DINOv1 loss does not use them).
        mask_probability / mask_ratio: the share of masked global crops and the ``(lo, hi)``
            range of the share of patches a masked crop masks (with ``masks``).
        lr / min_lr / warmup_steps: AdamW learning rate: linear warmup then cosine to min_lr;
            ``lr`` is for a batch of 256 and scales linearly with the global batch size.
        weight_decay / weight_decay_end: cosine weight decay schedule (biases and norms: none).
        clip_grad: gradient norm clipping (0 disables).
        ema_decay_start / ema_decay_end: the teacher's EMA coefficient schedule (per step).
        temperature_student: the student's softmax temperature.
        temperature_teacher_warmup / temperature_teacher / warmup_epochs_temperature_teacher:
            the teacher temperature schedule (per epoch).
        center_momentum: momentum of the teacher centre.
        num_workers / num_threads: loader workers and threads per worker.
        torch_threads: intra-op threads of the training process (None: on the CPU with loader
            workers, the cores they leave free, at least 1; otherwise torch's default).
        seed: seeds data order, augmentation and model initialisation.
        checkpoint_every: steps between checkpoints (0: only at the end).
        resume: continue from the checkpoint in ``out`` (or this file) when there is one.
        device: "cpu", "cuda" or "auto" (cuda when available).
        precision: "auto" (bf16 autocast on cuda, fp32 on cpu), "fp32", "bf16" or "fp16".
        progress: show a tqdm bar.
        resize / decode: where the views are resized and the JPEGs decoded, ``"cpu"`` (the
            loader workers, the exact path) or ``"device"`` (see
            :class:`~shardstream.vision.dino.DinoPreset`; ``decode="device"`` needs CUDA).
        log_every: steps between rows of ``out/metrics.csv`` (and TensorBoard, and lines of
            ``out/log.jsonl``).

    Raises:
        ConfigError: a setting is out of range (the message names it).
    """

    data: str
    out: Path = Path("runs/dino")
    steps: int = 1000
    steps_per_epoch: int | None = None
    batch_size: int = 32
    encoder_name: str = TINY_VIT["encoder_name"]
    encoder_kwargs: dict[str, Any] = field(default_factory=lambda: dict(TINY_VIT["encoder_kwargs"]))
    projector_hidden_dim: int = 256
    projector_bottleneck_dim: int = 64
    n_prototypes: int = 256
    normalize_prototypes: bool = True
    global_crops_size: int = 32
    local_crops_size: int = 16
    local_crops_number: int = 2
    global_crops_scale: tuple[float, float] = (0.32, 1.0)
    local_crops_scale: tuple[float, float] = (0.05, 0.32)
    masks: bool = False
    mask_probability: float = 0.5
    mask_ratio: tuple[float, float] = (0.1, 0.5)
    lr: float = 8e-3
    min_lr: float = 1e-6
    warmup_steps: int = 20
    weight_decay: float = 0.04
    weight_decay_end: float = 0.4
    clip_grad: float = 3.0
    ema_decay_start: float = 0.99
    ema_decay_end: float = 1.0
    temperature_student: float = 0.1
    temperature_teacher_warmup: float = 0.03
    temperature_teacher: float = 0.03
    warmup_epochs_temperature_teacher: int = 0
    center_momentum: float = 0.9
    num_workers: int = 2
    num_threads: int = 1
    torch_threads: int | None = None
    seed: int = 0
    checkpoint_every: int = 100
    resume: bool | str = False
    device: str = "auto"
    precision: str = "auto"
    progress: bool = True
    log_every: int = 10
    resize: str = "cpu"
    decode: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "global_crops_size", "local_crops_size", "log_every"):
            _store(self, name, positive_int(getattr(self, name), name))
        for name in ("local_crops_number", "warmup_steps", "checkpoint_every", "num_workers"):
            _store(self, name, non_negative_int(getattr(self, name), name))
        for name in ("steps_per_epoch", "torch_threads"):
            if getattr(self, name) is not None:
                _store(self, name, positive_int(getattr(self, name), name))
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ConfigError(
                f"precision must be 'auto', 'fp32', 'bf16' or 'fp16', got {self.precision!r}"
            )
        if not (self.lr > 0 and 0 <= self.min_lr <= self.lr):
            raise ConfigError(f"need lr > 0 and 0 <= min_lr <= lr, got {self.lr}, {self.min_lr}")
        for name in ("resize", "decode"):
            if getattr(self, name) not in ("cpu", "device"):
                raise ConfigError(f"{name} must be 'cpu' or 'device', got {getattr(self, name)!r}")
        if self.clip_grad < 0:
            raise ConfigError(f"clip_grad must be >= 0, got {self.clip_grad}")
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "data", os.fspath(self.data))

    def replace(self, **changes: Any) -> DinoTrainConfig:
        """A copy with some settings changed (validated again).

        Raises:
            ConfigError: a changed setting is out of range.
        """
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str) -> DinoTrainConfig:
        """The settings of :meth:`to_dict` (lists as tuples), e.g. read back from a checkpoint.

        Args:
            values: setting name -> plain value; missing settings take their defaults.
            source: what the values came from, for error messages (a file name).

        Returns:
            The validated settings.

        Raises:
            ConfigError: a name is not a setting (the message names it and ``source``) or a
                value is out of range.
        """
        known = {item.name: item for item in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"{source}: unknown training settings: {', '.join(unknown)}")
        settings = dict(values)
        for name, value in values.items():
            if "tuple" in str(known[name].type) and isinstance(value, list):
                settings[name] = tuple(value)
        if "out" in settings:
            settings["out"] = Path(settings["out"])
        try:
            return cls(**settings)
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from error

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain data (stored in checkpoints).

        Returns:
            A dict of plain values (``out`` as a string).
        """
        values = dataclasses.asdict(self)
        values["out"] = str(self.out)
        return values


def _store(config: DinoTrainConfig, name: str, value: int) -> None:
    # the checked value as a plain int (a numpy integer would not serialise to JSON)
    object.__setattr__(config, name, value)
