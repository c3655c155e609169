"""A DINO run's settings as YAML in dinov2's SSL config layout (``config.yaml``, ``--config-file``).

dinov2 configures training with sections ``crops``, ``dino``, ``ibot``, ``train``, ``student``,
``teacher`` and ``optim`` (its ``ssl_default_config.yaml``). shardstream reads the keys of those
sections that it implements, under dinov2's names and meanings, and keeps the settings dinov2 has
no key for under a ``shardstream`` section (by their :class:`DinoTrainConfig` names). A key it
does not know, or a dinov2 feature it does not implement (``ibot.loss_weight: 1.0``, another
``optim.scaling_rule``), is refused by name rather than silently ignored.

Differences of meaning: ``optim.base_lr`` is the peak learning rate for 256 images, scaled
linearly with the global batch (``optim.scaling_rule: linear_wrt_256``; dinov2's default is
``sqrt_wrt_1024``); ``optim.epochs`` and ``optim.warmup_epochs`` count epochs of
``train.OFFICIAL_EPOCH_LENGTH`` steps, as in dinov2, and need it.

Every run writes its resolved settings to ``config.yaml`` in this layout, so the file of one run
is a valid ``--config-file`` for the next.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

from ...errors import ConfigError, MissingDependencyError
from ...format.atomic import StagedFiles
from .config import DinoTrainConfig

__all__ = ["DINOV2_KEYS", "FIXED_KEYS", "to_ssl_config", "settings_from_ssl", "read_config_file"]
__all__ += ["write_config_file"]

#: dinov2 key -> the :class:`DinoTrainConfig` setting it sets (same meaning)
DINOV2_KEYS: dict[str, str] = {
    "crops.global_crops_scale": "global_crops_scale",
    "crops.local_crops_scale": "local_crops_scale",
    "crops.local_crops_number": "local_crops_number",
    "crops.global_crops_size": "global_crops_size",
    "crops.local_crops_size": "local_crops_size",
    "dino.head_n_prototypes": "n_prototypes",
    "dino.head_bottleneck_dim": "projector_bottleneck_dim",
    "dino.head_hidden_dim": "projector_hidden_dim",
    "ibot.mask_sample_probability": "mask_probability",
    "ibot.mask_ratio_min_max": "mask_ratio",
    "train.dataset_path": "data",
    "train.output_dir": "out",
    "train.batch_size_per_gpu": "batch_size",
    "train.seed": "seed",
    "train.num_workers": "num_workers",
    "train.OFFICIAL_EPOCH_LENGTH": "steps_per_epoch",
    "student.arch": "encoder_name",
    "teacher.momentum_teacher": "ema_decay_start",
    "teacher.final_momentum_teacher": "ema_decay_end",
    "teacher.warmup_teacher_temp": "temperature_teacher_warmup",
    "teacher.teacher_temp": "temperature_teacher",
    "teacher.warmup_teacher_temp_epochs": "warmup_epochs_temperature_teacher",
    "optim.base_lr": "lr",
    "optim.min_lr": "min_lr",
    "optim.weight_decay": "weight_decay",
    "optim.weight_decay_end": "weight_decay_end",
    "optim.clip_grad": "clip_grad",
}

#: dinov2 keys accepted only with the one value shardstream implements
FIXED_KEYS: dict[str, Any] = {
    "dino.loss_weight": 1.0,
    "dino.koleo_loss_weight": 0.0,
    "ibot.loss_weight": 0.0,
    "train.centering": "centering",
    "optim.scaling_rule": "linear_wrt_256",
}

#: dinov2 keys counted in epochs of ``train.OFFICIAL_EPOCH_LENGTH`` steps -> setting in steps
_EPOCH_KEYS = {"optim.epochs": "steps", "optim.warmup_epochs": "warmup_steps"}

#: settings never read from or written to a config file
_NOT_IN_FILES = frozenset({"resume"})


def to_ssl_config(config: DinoTrainConfig) -> dict[str, dict[str, Any]]:
    """The settings of a run in dinov2's layout (plain data, ready for YAML).

    Returns:
        ``{section: {key: value}}``: dinov2's keys where one exists, the fixed values shardstream
        implements, and the other settings under ``shardstream``.
    """
    values = config.to_dict()
    out: dict[str, dict[str, Any]] = {}
    mapped = set()
    for key, name in DINOV2_KEYS.items():
        section, leaf = key.split(".")
        out.setdefault(section, {})[leaf] = _plain(values[name])
        mapped.add(name)
    for key, value in FIXED_KEYS.items():
        section, leaf = key.split(".")
        out.setdefault(section, {})[leaf] = value
    out["shardstream"] = {
        name: _plain(value)
        for name, value in values.items()
        if name not in mapped and name not in _NOT_IN_FILES
    }
    return out


def settings_from_ssl(document: Any, *, source: str) -> dict[str, Any]:
    """The :class:`DinoTrainConfig` settings a config file in dinov2's layout sets.

    Args:
        document: the parsed file (a mapping of sections).
        source: the file's name, for error messages.

    Returns:
        Setting name -> value (only the settings the file names).

    Raises:
        ConfigError: the document is not a mapping of sections, names a key shardstream does
            not know or implement (the message names the key and ``source``), gives a fixed key
            another value, sets one setting twice, or counts epochs without
            ``train.OFFICIAL_EPOCH_LENGTH``.
    """
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(
            f"{source}: expected a mapping of sections, got {type(document).__name__}"
        )
    fields = {item.name for item in dataclasses.fields(DinoTrainConfig)} - _NOT_IN_FILES
    settings: dict[str, Any] = {}
    origin: dict[str, str] = {}
    epochs: dict[str, Any] = {}

    def put(name: str, value: Any, key: str) -> None:
        if name in settings:
            raise ConfigError(f"{source}: {key} and {origin[name]} both set {name}")
        settings[name], origin[name] = value, key

    for section, entries in document.items():
        if not isinstance(entries, dict):
            raise ConfigError(f"{source}: section {section!r} must be a mapping")
        for leaf, value in entries.items():
            key = f"{section}.{leaf}"
            if section == "shardstream":
                if leaf not in fields:
                    raise ConfigError(f"{source}: unknown key {key}")
                put(leaf, value, key)
            elif key in DINOV2_KEYS:
                put(DINOV2_KEYS[key], value, key)
            elif key in FIXED_KEYS:
                if not _same(value, FIXED_KEYS[key]):
                    raise ConfigError(
                        f"{source}: {key}={value!r} is not implemented "
                        f"(shardstream supports only {FIXED_KEYS[key]!r})"
                    )
            elif key in _EPOCH_KEYS:
                epochs[key] = value
            else:
                raise ConfigError(f"{source}: unknown key {key} (not implemented by shardstream)")
    if epochs:
        length = settings.get("steps_per_epoch")
        if not isinstance(length, int) or isinstance(length, bool) or length < 1:
            names = ", ".join(sorted(epochs))
            raise ConfigError(f"{source}: {names} need train.OFFICIAL_EPOCH_LENGTH (steps)")
        for key, value in epochs.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{source}: {key} must be a non-negative integer, got {value!r}")
            put(_EPOCH_KEYS[key], value * length, key)
    for item in dataclasses.fields(DinoTrainConfig):  # YAML has lists where tuples are kept
        if "tuple" in str(item.type) and isinstance(settings.get(item.name), list):
            settings[item.name] = tuple(settings[item.name])
    return settings


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The settings a YAML config file in dinov2's layout sets (see :func:`settings_from_ssl`).

    Raises:
        ConfigError: the file is missing, not YAML, or names an unknown key (named).
        MissingDependencyError: PyYAML is not installed.
    """
    yaml = _yaml()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"config file {path}: cannot be read ({error})") from error
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path}: not valid YAML ({error})") from error
    return settings_from_ssl(document, source=f"config file {path}")


def write_config_file(path: str | os.PathLike, config: DinoTrainConfig) -> Path:
    """Write a run's settings to ``path`` as YAML in dinov2's layout, atomically.

    Returns:
        The path written.

    Raises:
        MissingDependencyError: PyYAML is not installed.
    """
    yaml = _yaml()
    path = Path(path)
    text = yaml.safe_dump(to_ssl_config(config), sort_keys=False, default_flow_style=None)
    staged = StagedFiles()
    try:
        staged.write_bytes(path, text.encode("utf-8"))
        staged.commit()
    except BaseException:
        staged.abort()
        raise
    return path


def _yaml() -> Any:
    try:
        import yaml
    except ImportError as error:
        raise MissingDependencyError(
            "config files need PyYAML: pip install 'shardstream[train]'"
        ) from error
    return yaml


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _same(value: Any, expected: Any) -> bool:
    if (
        isinstance(expected, float)
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    ):
        return math.isclose(value, expected, abs_tol=0.0)
    return value == expected
