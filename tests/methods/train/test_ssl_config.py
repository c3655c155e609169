"""Training settings as YAML in dinov2's SSL config layout: known keys map, unknown ones are named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream.errors import ConfigError
from shardstream.methods.train.config import DinoTrainConfig
from shardstream.methods.train.ssl_config import (
    DINOV2_KEYS,
    FIXED_KEYS,
    read_config_file,
    settings_from_ssl,
    to_ssl_config,
    write_config_file,
)

#: dinov2's own ssl_default_config.yaml values for the keys shardstream reads (a subset)
DINOV2_EXCERPT = """\
dino:
  loss_weight: 1.0
  head_n_prototypes: 65536
  head_bottleneck_dim: 256
  head_hidden_dim: 2048
ibot:
  mask_sample_probability: 0.5
  mask_ratio_min_max:
    - 0.1
    - 0.5
train:
  batch_size_per_gpu: 64
  seed: 0
  num_workers: 10
  OFFICIAL_EPOCH_LENGTH: 1250
  centering: "centering"
teacher:
  momentum_teacher: 0.992
  final_momentum_teacher: 1
  warmup_teacher_temp: 0.04
  teacher_temp: 0.07
  warmup_teacher_temp_epochs: 30
optim:
  epochs: 100
  weight_decay: 0.04
  weight_decay_end: 0.4
  warmup_epochs: 10
  min_lr: 1.0e-06
  clip_grad: 3.0
crops:
  global_crops_scale:
    - 0.32
    - 1.0
  local_crops_number: 8
  local_crops_scale:
    - 0.05
    - 0.32
  global_crops_size: 224
  local_crops_size: 96
"""


def test_dinov2_keys_map_to_their_settings(tmp_path):
    path = tmp_path / "ssl.yaml"
    path.write_text(DINOV2_EXCERPT)
    assert read_config_file(path) == {
        "n_prototypes": 65536,
        "projector_bottleneck_dim": 256,
        "projector_hidden_dim": 2048,
        "mask_probability": 0.5,
        "mask_ratio": (0.1, 0.5),
        "batch_size": 64,
        "seed": 0,
        "num_workers": 10,
        "steps_per_epoch": 1250,
        "ema_decay_start": 0.992,
        "ema_decay_end": 1,
        "temperature_teacher_warmup": 0.04,
        "temperature_teacher": 0.07,
        "warmup_epochs_temperature_teacher": 30,
        "steps": 125_000,  # epochs x OFFICIAL_EPOCH_LENGTH
        "warmup_steps": 12_500,
        "weight_decay": 0.04,
        "weight_decay_end": 0.4,
        "min_lr": 1e-06,
        "clip_grad": 3.0,
        "global_crops_scale": (0.32, 1.0),
        "local_crops_number": 8,
        "local_crops_scale": (0.05, 0.32),
        "global_crops_size": 224,
        "local_crops_size": 96,
    }


def test_written_config_reads_back_as_the_same_settings(tmp_path):
    config = DinoTrainConfig(
        data=str(tmp_path / "data.msgpack"),
        out=tmp_path / "run",
        steps=7,
        batch_size=4,
        lr=1e-3,
        global_crops_scale=(0.4, 1.0),
        encoder_kwargs={"img_size": 32, "patch_size": 8, "depth": 1},
        steps_per_epoch=3,
    )
    path = write_config_file(tmp_path / "config.yaml", config)
    document = yaml.safe_load(path.read_text())
    assert list(document) == [
        "crops", "dino", "ibot", "train", "student", "teacher", "optim", "shardstream",
    ]  # fmt: skip
    assert document["optim"] == {
        "base_lr": 1e-3,
        "min_lr": 1e-6,
        "weight_decay": 0.04,
        "weight_decay_end": 0.4,
        "clip_grad": 3.0,
        "scaling_rule": "linear_wrt_256",
    }
    assert document["train"]["output_dir"] == str(tmp_path / "run")
    assert "resume" not in document["shardstream"]
    again = DinoTrainConfig(**read_config_file(path))
    assert again == config
    assert sorted(tmp_path.iterdir()) == [path]  # no temp file left


@settings(max_examples=40, deadline=None)
@given(
    steps=st.integers(1, 10**6),
    batch=st.integers(1, 4096),
    lr=st.floats(1e-6, 1.0),
    scale=st.tuples(st.floats(0.01, 0.5), st.floats(0.5, 1.0)),
    crops=st.integers(0, 12),
)
def test_to_ssl_config_and_back_is_lossless(steps, batch, lr, scale, crops):
    config = DinoTrainConfig(
        data="d.msgpack",
        steps=steps,
        batch_size=batch,
        lr=lr,
        min_lr=min(1e-6, lr),
        local_crops_scale=scale,
        local_crops_number=crops,
    )
    text = yaml.safe_dump(to_ssl_config(config))
    assert DinoTrainConfig(**settings_from_ssl(yaml.safe_load(text), source="x")) == config


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"crops": {"global_crop_size": 32}}, "x: unknown key crops.global_crop_size"),
        ({"student": {"drop_path_rate": 0.3}}, "x: unknown key student.drop_path_rate"),
        ({"MODEL": {"WEIGHTS": ""}}, "x: unknown key MODEL.WEIGHTS"),
        ({"shardstream": {"resume": True}}, "x: unknown key shardstream.resume"),
        ({"ibot": {"loss_weight": 1.0}}, "x: ibot.loss_weight=1.0 is not implemented"),
        ({"optim": {"scaling_rule": "sqrt_wrt_1024"}}, "optim.scaling_rule='sqrt_wrt_1024'"),
        ({"train": {"centering": "sinkhorn_knopp"}}, "train.centering='sinkhorn_knopp'"),
        ({"optim": {"epochs": 3}}, "x: optim.epochs need train.OFFICIAL_EPOCH_LENGTH"),
        (
            {"train": {"batch_size_per_gpu": 8}, "shardstream": {"batch_size": 16}},
            "x: shardstream.batch_size and train.batch_size_per_gpu both set batch_size",
        ),
        ({"crops": [1, 2]}, "x: section 'crops' must be a mapping"),
        ([1, 2], "x: expected a mapping of sections, got list"),
    ],
)
def test_unknown_or_unimplemented_keys_are_refused_by_name(document, message):
    with pytest.raises(ConfigError) as error:
        settings_from_ssl(document, source="x")
    assert message in str(error.value)


def test_fixed_keys_with_their_value_are_accepted():
    document: dict = {}
    for key, value in FIXED_KEYS.items():
        section, leaf = key.split(".")
        document.setdefault(section, {})[leaf] = value
    assert settings_from_ssl(document, source="x") == {}
    assert settings_from_ssl(None, source="x") == {}


def test_every_mapped_key_names_a_setting():
    names = {field for field in DinoTrainConfig.__dataclass_fields__}
    assert set(DINOV2_KEYS.values()) <= names
    assert len(set(DINOV2_KEYS.values())) == len(DINOV2_KEYS)


@pytest.mark.parametrize("content", [b"a: [1, 2\n", b"\xff\xfe"])
def test_unreadable_config_file_is_a_config_error(tmp_path: Path, content):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=f"config file {path}: "):
        read_config_file(path)
    with pytest.raises(ConfigError, match="cannot be read"):
        read_config_file(tmp_path / "missing.yaml")
