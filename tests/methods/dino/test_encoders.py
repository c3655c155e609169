"""Backbones: built from a timm name (timm imported lazily) or given; embedding-size discovery."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from shardstream.errors import ConfigError
from shardstream.methods.dino import build_encoder, cls_embedding, embedding_dim

from .tiny import TINY_VIT_KWARGS, TinyEncoder


def test_a_module_is_used_as_is():
    encoder = TinyEncoder()
    assert build_encoder(encoder) is encoder


def test_a_timm_name_builds_a_headless_model():
    encoder = build_encoder("vit_tiny_patch16_224", encoder_kwargs=TINY_VIT_KWARGS)
    assert encoder.num_classes == 0
    assert encoder(torch.zeros(2, 3, 32, 32)).shape == (2, 32)
    assert encoder(torch.zeros(2, 3, 16, 16)).shape == (2, 32)  # dynamic_img_size
    assert embedding_dim(encoder) == 32  # probed at its own 32 x 32 input size


def test_encoder_kwargs_override_the_defaults():
    encoder = build_encoder(
        "vit_tiny_patch16_224", encoder_kwargs={**TINY_VIT_KWARGS, "global_pool": ""}
    )
    assert encoder(torch.zeros(1, 3, 32, 32)).shape == (1, 17, 32)  # CLS + 4 x 4 patches
    assert embedding_dim(encoder) == 32


def test_cls_embedding():
    x = torch.arange(24.0).reshape(2, 3, 4)
    assert torch.equal(cls_embedding(x), x[:, 0])
    assert torch.equal(cls_embedding(x[:, 0]), x[:, 0])
    with pytest.raises(ConfigError, match=r"unexpected backbone output shape \(2, 3, 4, 1\)"):
        cls_embedding(x[..., None])


def test_embedding_dim_leaves_no_trace():
    encoder = nn.Sequential(
        nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    assert embedding_dim(encoder) == 5
    assert encoder.training
    for name, value in encoder.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert embedding_dim(TinyEncoder(dim=12, tokens=True)) == 12


def test_bad_encoders_are_refused():
    with pytest.raises(ConfigError, match="timm has no model named 'no_such_model_xyz'"):
        build_encoder("no_such_model_xyz")
    with pytest.raises(ConfigError, match="must be a timm model name or an nn.Module, got int"):
        build_encoder(3)
    with pytest.raises(ConfigError, match="apply to a timm model name, not to a built module"):
        build_encoder(TinyEncoder(), encoder_kwargs={"img_size": 32})


def test_timm_is_imported_lazily_and_its_absence_raises_a_clear_error():
    code = """
import sys
import shardstream as methods
print('torch' in sys.modules, 'timm' in sys.modules)
methods.DINO
print('torch' in sys.modules, 'timm' in sys.modules)

class NoTimm:
    def find_spec(self, name, path=None, target=None):
        if name == "timm" or name.startswith("timm."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoTimm())
from shardstream.errors import MissingDependencyError
try:
    methods.DINO("vit_small_patch16_224")
except MissingDependencyError as error:
    print(isinstance(error, ImportError), error)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "False False",  # import shardstream.methods: neither torch nor timm
        "True False",  # the DINO class: torch, still no timm
        "True DINO(encoder_name='vit_small_patch16_224') builds its backbone with timm, which is "
        "not installed: pip install timm (or pip install 'shardstream[train]'), or pass a built "
        "nn.Module",
    ]
