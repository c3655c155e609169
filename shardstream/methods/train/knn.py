"""Weighted k-nearest-neighbour classification of frozen embeddings (DINO's k-NN evaluation).

Each query votes over its ``k`` most cosine-similar training embeddings; a neighbour's vote for its
class weighs ``exp(similarity / temperature)``. The defaults (k = 20, temperature 0.07) are those of
the DINO paper's evaluation.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch

from ...errors import ConfigError

__all__ = ["knn_predict", "knn_accuracy", "extract_embeddings"]


@torch.no_grad()
def knn_predict(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    query_features: torch.Tensor,
    *,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Predict a class for each query embedding by weighted k-NN over the training embeddings.

    Args:
        train_features: (N, D) training embeddings (normalised here).
        train_labels: (N,) integer labels.
        query_features: (M, D) embeddings to classify.
        k: neighbours per query (at most N is used).
        temperature: the vote weight is ``exp(cosine / temperature)``.
        num_classes: number of classes; ``max(label) + 1`` when None.
        chunk_size: queries compared at once (bounds memory at ``chunk_size * N`` floats).

    Returns:
        (M,) int64 predicted labels; ties go to the lower class index.

    Raises:
        ConfigError: shapes disagree, there are no training samples, or k/temperature are not
            positive.
    """
    if train_features.ndim != 2 or query_features.ndim != 2:
        raise ConfigError("knn: features must be 2-D (samples, dimensions)")
    if train_features.shape[1] != query_features.shape[1]:
        raise ConfigError(
            f"knn: training features have {train_features.shape[1]} dimensions, "
            f"queries {query_features.shape[1]}"
        )
    if train_labels.shape != (train_features.shape[0],):
        raise ConfigError(
            f"knn: {train_features.shape[0]} training features but labels of shape "
            f"{tuple(train_labels.shape)}"
        )
    if train_features.shape[0] == 0:
        raise ConfigError("knn: no training samples")
    if k < 1 or temperature <= 0:
        raise ConfigError(f"knn: k must be >= 1 and temperature > 0, got k={k}, T={temperature}")
    labels = train_labels.long()
    classes = int(labels.max()) + 1 if num_classes is None else num_classes
    bank = torch.nn.functional.normalize(train_features.float(), dim=1)
    queries = torch.nn.functional.normalize(query_features.float(), dim=1)
    k = min(k, bank.shape[0])
    predictions = []
    for start in range(0, queries.shape[0], chunk_size):
        similarity = queries[start : start + chunk_size] @ bank.T
        top, where = similarity.topk(k, dim=1)
        votes = torch.zeros(top.shape[0], classes, dtype=top.dtype)
        votes.scatter_add_(1, labels[where], (top / temperature).exp())
        predictions.append(votes.argmax(dim=1))
    if not predictions:
        return torch.zeros(0, dtype=torch.long)
    return torch.cat(predictions)


def knn_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    query_features: torch.Tensor,
    query_labels: torch.Tensor,
    **options: Any,
) -> float:
    """Top-1 accuracy of :func:`knn_predict` on labelled queries (a fraction in [0, 1]).

    Warns (``UserWarning``) when some query classes have no training sample: those queries
    can never be classified correctly, so the accuracy is capped below 1.

    Raises:
        ConfigError: as :func:`knn_predict`, or the query labels do not match the queries.
    """
    if query_labels.shape != (query_features.shape[0],):
        raise ConfigError(
            f"knn: {query_features.shape[0]} queries but labels of shape {tuple(query_labels.shape)}"
        )
    if query_features.shape[0] == 0:
        raise ConfigError("knn: no queries")
    missing = sorted(set(query_labels.long().tolist()) - set(train_labels.long().tolist()))
    if missing:
        lost = int(torch.isin(query_labels.long(), torch.tensor(missing)).sum())
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        warnings.warn(
            f"knn: {len(missing)} test class(es) missing from the training samples (labels "
            f"{shown}): {lost} of {query_features.shape[0]} test samples cannot be classified "
            "correctly",
            stacklevel=2,
        )
    predicted = knn_predict(train_features, train_labels, query_features, **options)
    return float((predicted == query_labels.long()).float().mean())


@torch.no_grad()
def extract_embeddings(
    embed: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[dict[str, torch.Tensor]],
    *,
    image_key: str = "image",
    label_key: str = "label",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``embed`` over every batch and collect embeddings and labels on the CPU.

    Args:
        embed: maps a (B, C, H, W) float batch to (B, D) embeddings.
        batches: dicts holding ``image_key`` and ``label_key`` tensors.

    Returns:
        (embeddings (N, D) float32, labels (N,) int64).

    Raises:
        ConfigError: a batch lacks the image or label entry, or no batch came.
    """
    features, labels = [], []
    for batch in batches:
        if image_key not in batch or label_key not in batch:
            raise ConfigError(
                f"knn: a batch needs {image_key!r} and {label_key!r}, got {sorted(batch)}"
            )
        features.append(embed(batch[image_key]).float().cpu())
        labels.append(torch.as_tensor(batch[label_key]).long().cpu().reshape(-1))
    if not features:
        raise ConfigError("knn: no batches to embed")
    return torch.cat(features), torch.cat(labels)
