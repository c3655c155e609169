"""Tiny backbones for fast DINO tests (any input size, a few hundred parameters)."""

from __future__ import annotations

import torch
from torch import nn

#: timm overrides that turn vit_tiny_patch16_224 into a 2-block, 32-wide ViT for 32 x 32 images
TINY_VIT_KWARGS = {
    "img_size": 32,
    "patch_size": 8,
    "embed_dim": 32,
    "depth": 2,
    "num_heads": 2,
    "dynamic_img_size": True,
}


class TinyEncoder(nn.Module):
    """4 x 4 patches -> GELU -> mean over positions -> linear: (B, 3, H, W) -> (B, dim)."""

    def __init__(self, dim: int = 16, tokens: bool = False):
        super().__init__()
        self.patches = nn.Conv2d(3, 8, kernel_size=4, stride=4)
        self.head = nn.Linear(8, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if tokens else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.head(nn.functional.gelu(self.patches(x)).flatten(2).transpose(1, 2))
        if self.cls_token is None:
            return tokens.mean(dim=1)
        cls = self.cls_token.expand(x.shape[0], -1, -1) + tokens.mean(dim=1, keepdim=True)
        return torch.cat([cls, tokens], dim=1)
