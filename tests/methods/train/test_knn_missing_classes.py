"""k-NN evaluation warns when test classes have no training sample (they cannot be right)."""

from __future__ import annotations

import warnings

import pytest
import torch

from shardstream.methods.train.knn import knn_accuracy


def test_warns_naming_the_missing_classes_and_the_lost_queries():
    train = torch.eye(4)[:3]
    train_labels = torch.tensor([0, 1, 1])
    query = torch.eye(4)
    query_labels = torch.tensor([0, 1, 2, 5])
    with pytest.warns(UserWarning) as caught:
        accuracy = knn_accuracy(train, train_labels, query, query_labels, k=1)
    assert len(caught) == 1
    assert str(caught[0].message) == (
        "knn: 2 test class(es) missing from the training samples (labels 2, 5): 2 of 4 test "
        "samples cannot be classified correctly"
    )
    assert accuracy == 0.5  # queries 0 and 1 are right, 2 and 5 never can be


def test_no_warning_when_every_test_class_is_in_training():
    train = torch.eye(3)
    labels = torch.tensor([0, 1, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert knn_accuracy(train, labels, train, torch.tensor([2, 1, 0]), k=1) == pytest.approx(
            1 / 3
        )
