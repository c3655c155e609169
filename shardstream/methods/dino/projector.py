"""DINOProjector: the head that maps a backbone embedding to prototype scores."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError

__all__ = ["DINOProjector"]


class DINOProjector(nn.Module):
    """Three-layer MLP, L2-normalised bottleneck, linear prototypes (stable_pretraining's head).

    ``Linear(in, hidden)`` → GELU → ``Linear(hidden, hidden)`` → GELU →
    ``Linear(hidden, bottleneck)`` → L2 normalisation of the last dimension →
    ``Linear(bottleneck, n_prototypes, bias=False)``. The prototype weights are plain trainable
    weights, as in stable_pretraining. With ``normalize_prototypes=True`` each prototype vector is
    L2-normalised before use instead: the original DINO's weight-normalised last layer with its
    gain fixed at 1 (``norm_last_layer=True``), which keeps small runs stable.

    Args:
        in_dim: the backbone's embedding dimension.
        hidden_dim: width of the two hidden layers.
        bottleneck_dim: width of the normalised bottleneck.
        n_prototypes: number of prototypes (the output dimension).
        normalize_prototypes: L2-normalise each prototype's weights in the forward pass.

    Raises:
        ConfigError: a dimension is not a positive integer.
    """

    def __init__(
        self,
        *,
        in_dim: int,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        n_prototypes: int = 65536,
        normalize_prototypes: bool = False,
    ):
        super().__init__()
        for name, value in (
            ("in_dim", in_dim),
            ("hidden_dim", hidden_dim),
            ("bottleneck_dim", bottleneck_dim),
            ("n_prototypes", n_prototypes),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"DINOProjector: {name} must be a positive int, got {value!r}")
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, bottleneck_dim),
        )
        self.prototypes = nn.Linear(bottleneck_dim, n_prototypes, bias=False)
        self.normalize_prototypes = normalize_prototypes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Prototype scores (logits) of embeddings.

        Args:
            x: ``(..., in_dim)`` embeddings.

        Returns:
            ``(..., n_prototypes)`` logits.
        """
        z = F.normalize(self.mlp(x), p=2, dim=-1)
        weight = self.prototypes.weight
        if self.normalize_prototypes:
            weight = F.normalize(weight, p=2, dim=-1)
        return F.linear(z, weight)
