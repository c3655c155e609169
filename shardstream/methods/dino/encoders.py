"""Backbones for DINO: a timm model by name, or any ``nn.Module``, and its embedding size.

timm is optional (``pip install timm``, or the ``shardstream[train]`` extra) and imported only
when a model is built by name. A timm model is created headless (``num_classes=0``), so it returns
one pooled embedding per image; ``encoder_kwargs`` override any ``timm.create_model`` argument.
For multi-crop training a timm ViT needs ``dynamic_img_size=True`` so that local crops of another
size pass through it. The small ViT used for CPU runs is, for example::

    DINO("vit_tiny_patch16_224", encoder_kwargs={"img_size": 32, "patch_size": 8,
         "embed_dim": 64, "depth": 2, "num_heads": 2, "dynamic_img_size": True})

The embedding dimension is not read from attributes (their names differ between model families)
but discovered by running the backbone once, in eval mode and without gradients, on a zero image
of the model's own input size (``patch_embed.img_size`` of a timm ViT, else 224 x 224) and
reducing the output to its CLS embedding with :func:`cls_embedding`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ...errors import ConfigError, MissingDependencyError

__all__ = ["build_encoder", "cls_embedding", "embedding_dim"]

#: probe size for backbones that do not state their input size
DEFAULT_PROBE_SIZE = 224


def build_encoder(
    encoder: str | nn.Module,
    *,
    pretrained: bool = False,
    encoder_kwargs: Mapping[str, Any] | None = None,
) -> nn.Module:
    """The backbone: ``encoder`` itself when it is a module, else a headless timm model.

    Args:
        encoder: a timm model name (``"vit_small_patch16_224"``) or a built ``nn.Module`` that
            maps ``(B, C, H, W)`` images to ``(B, D)`` embeddings or ``(B, N, D)`` tokens.
        pretrained: load timm's pretrained weights (timm downloads them).
        encoder_kwargs: extra ``timm.create_model`` arguments; they override ``num_classes=0``
            and ``pretrained``.

    Returns:
        The backbone module.

    Raises:
        MissingDependencyError: ``encoder`` is a name and timm is not installed.
        ConfigError: timm has no model of that name, ``encoder`` is neither a name nor a
            module, or ``pretrained``/``encoder_kwargs`` are given with a built module.
    """
    if isinstance(encoder, nn.Module):
        if encoder_kwargs or pretrained:
            raise ConfigError(
                "DINO: encoder_kwargs and pretrained apply to a timm model name, "
                f"not to a built module ({type(encoder).__name__})"
            )
        return encoder
    if not isinstance(encoder, str):
        raise ConfigError(
            f"DINO: encoder_name must be a timm model name or an nn.Module, "
            f"got {type(encoder).__name__}"
        )
    try:
        timm = importlib.import_module("timm")
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] != "timm":
            raise
        raise MissingDependencyError(
            f"DINO(encoder_name={encoder!r}) builds its backbone with timm, which is not "
            "installed: pip install timm (or pip install 'shardstream[train]'), or pass a "
            "built nn.Module"
        ) from error
    if not timm.is_model(encoder):
        raise ConfigError(
            f"DINO: timm has no model named {encoder!r} (see timm.list_models('vit_*'))"
        )
    kwargs = {"num_classes": 0, "pretrained": pretrained, **dict(encoder_kwargs or {})}
    return timm.create_model(encoder, **kwargs)


def cls_embedding(features: torch.Tensor) -> torch.Tensor:
    """Reduce a backbone's output to one embedding per image.

    Args:
        features: ``(B, D)`` embeddings, returned as is, or ``(B, N, D)`` tokens, of which the
            first (the CLS token) is taken.

    Returns:
        ``(B, D)`` embeddings.

    Raises:
        ConfigError: ``features`` has another number of dimensions.
    """
    if features.ndim == 2:
        return features
    if features.ndim == 3:
        return features[:, 0]
    raise ConfigError(
        f"DINO: unexpected backbone output shape {tuple(features.shape)}; "
        "expected (batch, dim) or (batch, tokens, dim)"
    )


def embedding_dim(encoder: nn.Module, *, in_chans: int = 3) -> int:
    """The size of the backbone's CLS embedding, found by running it once on a zero image.

    The probe runs in eval mode (restored afterwards) and without gradients, so it leaves
    no trace in the module (no BatchNorm statistics are updated). Its spatial size is the
    backbone's ``patch_embed.img_size`` when it has one (timm ViTs), else 224 x 224.

    Args:
        encoder: the backbone.
        in_chans: channels of the probe image.

    Returns:
        The embedding dimension ``D``.

    Raises:
        ConfigError: the output is neither ``(B, D)`` nor ``(B, N, D)``.
    """
    size = getattr(getattr(encoder, "patch_embed", None), "img_size", None) or DEFAULT_PROBE_SIZE
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    parameter = next(encoder.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            features = encoder(torch.zeros(1, in_chans, height, width, device=device))
    finally:
        encoder.train(was_training)
    return int(cls_embedding(features).shape[-1])
