"""DINOProjector: MLP -> L2-normalised bottleneck -> prototypes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from shardstream.errors import ConfigError
from shardstream.methods.dino import DINOProjector


def test_layers_and_shapes():
    head = DINOProjector(in_dim=6, hidden_dim=10, bottleneck_dim=4, n_prototypes=7)
    kinds = [type(m) for m in head.mlp]
    assert kinds == [nn.Linear, nn.GELU, nn.Linear, nn.GELU, nn.Linear]
    assert [tuple(m.weight.shape) for m in head.mlp if isinstance(m, nn.Linear)] == [
        (10, 6),
        (10, 10),
        (4, 10),
    ]
    assert all(m.bias is not None for m in head.mlp if isinstance(m, nn.Linear))
    assert tuple(head.prototypes.weight.shape) == (7, 4) and head.prototypes.bias is None
    assert head(torch.randn(3, 5, 6)).shape == (3, 5, 7)


def test_forward_equals_the_composition_written_out():
    torch.manual_seed(0)
    head = DINOProjector(in_dim=6, hidden_dim=10, bottleneck_dim=4, n_prototypes=7)
    x = torch.randn(5, 6)
    linear1, _, linear2, _, linear3 = head.mlp
    h = torch.nn.functional.gelu(linear1(x))
    h = torch.nn.functional.gelu(linear2(h))
    z = linear3(h)
    z = z / z.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    expected = z @ head.prototypes.weight.T
    assert torch.allclose(head(x), expected, rtol=1e-6, atol=1e-7)


def test_normalised_prototypes_bound_the_logits_by_one():
    torch.manual_seed(0)
    head = DINOProjector(in_dim=6, hidden_dim=10, bottleneck_dim=4, n_prototypes=7)
    with torch.no_grad():
        head.prototypes.weight.mul_(100.0)
    x = torch.randn(50, 6)
    assert head(x).abs().max() > 1.0
    head.normalize_prototypes = True
    logits = head(x)
    assert logits.abs().max() <= 1.0 + 1e-6  # cosine between unit vectors
    w = head.prototypes.weight
    unit = torch.nn.functional.normalize(w, dim=-1)
    z = torch.nn.functional.normalize(head.mlp(x), dim=-1)
    assert torch.allclose(logits, z @ unit.T, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["in_dim", "hidden_dim", "bottleneck_dim", "n_prototypes"])
def test_dimensions_must_be_positive_ints(name):
    kwargs = {"in_dim": 4, "hidden_dim": 4, "bottleneck_dim": 4, "n_prototypes": 4, name: 0}
    with pytest.raises(ConfigError, match=f"{name} must be a positive int, got 0"):
        DINOProjector(**kwargs)
