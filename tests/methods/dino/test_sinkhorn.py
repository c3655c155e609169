"""DINOv1Loss.sinkhorn_knopp_teacher (issue 13, item 4) against a hand computation in plain Python.

stable_pretraining's ``DINOv1Loss`` offers Sinkhorn-Knopp as the alternative to centring; the
expected values here come from the algorithm written out with ``math.exp`` and lists, and, for
the all-reduce, from two real gloo ranks each holding half of the batch.
"""

from __future__ import annotations

import math

import pytest
import torch

from shardstream.errors import ConfigError
from shardstream.methods.dino import DINOv1Loss
from tests.contracts.dist_harness import run_world

# 2 teacher views, batch 3, 4 prototypes
LOGITS = [
    [[0.5, -1.0, 2.0, 0.1], [1.5, 0.0, -0.5, 0.3], [0.2, 0.2, 0.9, -1.2]],
    [[-0.3, 0.8, 0.1, 0.0], [0.0, 0.0, 1.0, 2.5], [1.1, -0.4, 0.6, 0.7]],
]


def hand_sinkhorn(rows: list[list[float]], temp: float, num_samples: float, iterations: int):
    """The Sinkhorn-Knopp balancing of ``rows`` (samples x prototypes), in float64 lists."""
    n, k = len(rows), len(rows[0])
    q = [[math.exp(rows[i][j] / temp) for i in range(n)] for j in range(k)]  # K x N
    total = sum(sum(row) for row in q)
    q = [[x / total for x in row] for row in q]
    for _ in range(iterations):
        q = [[x / sum(row) / k for x in row] for row in q]
        columns = [sum(q[j][i] for j in range(k)) for i in range(n)]
        q = [[q[j][i] / columns[i] / num_samples for i in range(n)] for j in range(k)]
    return [[q[j][i] * num_samples for j in range(k)] for i in range(n)]


def flat(views):
    return [row for view in views for row in view]


def assert_close(actual: list[list[float]], expected: list[list[float]], rel: float) -> None:
    """Same shape, and every entry equal to ``rel`` (relative; 1e-15 absolute near zero)."""
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        assert got == pytest.approx(want, rel=rel, abs=1e-15)


def test_sinkhorn_teacher_equals_the_hand_computation_in_float64():
    loss = DINOv1Loss()
    logits = torch.tensor(LOGITS, dtype=torch.float64)
    probs = loss.sinkhorn_knopp_teacher(logits, 0.5, num_samples=6)
    assert probs.shape == (2, 3, 4) and probs.dtype == torch.float64
    expected = hand_sinkhorn(flat(LOGITS), 0.5, 6, 3)  # 3 iterations by default
    assert_close(probs.reshape(6, 4).tolist(), expected, 1e-12)
    assert probs.sum(-1).flatten().tolist() == pytest.approx([1.0] * 6, rel=1e-12)
    # pinned: the first sample's distribution after three iterations
    assert probs[0, 0].tolist() == pytest.approx(
        [0.0652029824238568, 0.0114422724307011, 0.9030355667202881, 0.0203191784251541],
        abs=1e-15,
    )
    assert loss.center is None and loss.updated  # the centre is neither read nor touched


def test_default_num_samples_and_iterations_follow_upstream():
    loss = DINOv1Loss()
    logits = torch.tensor(LOGITS[1], dtype=torch.float64)  # (B, K): num_samples = B
    default = loss.sinkhorn_knopp_teacher(logits, 0.1)
    for iterations in (0, 1, 5):
        probs = loss.sinkhorn_knopp_teacher(logits, 0.1, n_iterations=iterations)
        assert_close(probs.tolist(), hand_sinkhorn(LOGITS[1], 0.1, 3, iterations), 1e-12)
    assert default.tolist() == loss.sinkhorn_knopp_teacher(logits, 0.1, 3, 3).tolist()
    # more iterations bring the prototype marginals closer to uniform (1/K of the batch each)
    spread = [
        (loss.sinkhorn_knopp_teacher(logits, 1.0, n_iterations=i).sum(0) - 0.75).abs().max().item()
        for i in (0, 1, 3, 10, 30)
    ]
    assert spread[0] > spread[1] > spread[2] > spread[3] > spread[4]
    assert spread[3] < 1e-6 and spread[4] < 1e-14


def test_float32_and_a_tensor_num_samples():
    loss = DINOv1Loss()
    probs = loss.sinkhorn_knopp_teacher(
        torch.tensor(LOGITS, dtype=torch.float16), 0.5, num_samples=torch.tensor(6.0)
    )
    assert probs.dtype == torch.float32 and probs.shape == (2, 3, 4)
    halves = [[float(torch.tensor(x, dtype=torch.float16)) for x in row] for row in flat(LOGITS)]
    expected = hand_sinkhorn(halves, 0.5, 6, 3)
    assert_close(probs.reshape(6, 4).tolist(), expected, 1e-5)


def test_bad_arguments_are_refused():
    loss = DINOv1Loss()
    logits = torch.tensor(LOGITS)
    with pytest.raises(ConfigError, match="teacher_temp must be > 0"):
        loss.sinkhorn_knopp_teacher(logits, 0.0)
    with pytest.raises(ConfigError, match="n_iterations must be an int >= 0"):
        loss.sinkhorn_knopp_teacher(logits, 0.1, n_iterations=-1)
    with pytest.raises(ConfigError, match="prototype dimension"):
        loss.sinkhorn_knopp_teacher(torch.tensor(1.0), 0.1)


def _half_batch_job(rank: int, world_size: int) -> list[list[float]]:
    rows = flat(LOGITS)[rank * 3 : rank * 3 + 3]  # rank 0: view 0, rank 1: view 1
    logits = torch.tensor(rows, dtype=torch.float64)
    return DINOv1Loss().sinkhorn_knopp_teacher(logits, 0.5).tolist()  # num_samples = 3 * 2


def test_two_ranks_balance_over_the_global_batch():
    ranks = run_world(2, _half_batch_job, timeout=120)
    expected = hand_sinkhorn(flat(LOGITS), 0.5, 6, 3)
    assert_close(ranks[0] + ranks[1], expected, 1e-12)
    # one rank alone would balance its own 3 samples: a different answer
    alone = hand_sinkhorn(flat(LOGITS)[:3], 0.5, 3, 3)
    assert max(abs(a - b) for ra, rb in zip(ranks[0], alone) for a, b in zip(ra, rb)) > 1e-3
