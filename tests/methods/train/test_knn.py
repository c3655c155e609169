import pytest
import torch

from shardstream.errors import ConfigError
from shardstream.methods.train.knn import extract_embeddings, knn_accuracy, knn_predict


def test_weighted_vote_by_hand():
    # Three training points on the unit circle, one query between classes 0 and 1.
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 1, 1])
    query = torch.tensor([[1.0, 0.9]])
    # k=1: the nearest is class 0 (cosine 0.743 vs 0.669).
    assert knn_predict(train, labels, query, k=1).tolist() == [0]
    # k=3, T=1: class 0 gets e^0.743, class 1 gets e^0.669 + e^-0.743 -> class 1 wins.
    q = query / query.norm()
    w0 = float(torch.exp(q[0, 0]))
    w1 = float(torch.exp(q[0, 1]) + torch.exp(-q[0, 0]))
    assert w1 > w0
    assert knn_predict(train, labels, query, k=3, temperature=1.0).tolist() == [1]
    # a sharp temperature lets the single nearest neighbour dominate again
    assert knn_predict(train, labels, query, k=3, temperature=0.01).tolist() == [0]


def test_accuracy_on_separable_clusters():
    generator = torch.Generator().manual_seed(0)
    centres = torch.eye(4) * 5
    labels = torch.arange(4).repeat_interleave(25)
    train = centres[labels] + torch.randn(100, 4, generator=generator) * 0.1
    query = centres[labels] + torch.randn(100, 4, generator=generator) * 0.1
    assert knn_accuracy(train, labels, query, labels, k=5) == 1.0
    assert knn_accuracy(train, labels, query, (labels + 1) % 4, k=5) == 0.0


def test_chunking_does_not_change_predictions():
    generator = torch.Generator().manual_seed(1)
    train = torch.randn(50, 8, generator=generator)
    labels = torch.randint(0, 5, (50,), generator=generator)
    query = torch.randn(37, 8, generator=generator)
    whole = knn_predict(train, labels, query, k=7)
    chunked = knn_predict(train, labels, query, k=7, chunk_size=5)
    assert torch.equal(whole, chunked)


@pytest.mark.parametrize(
    "train,labels,query,options,match",
    [
        (torch.zeros(3, 2), torch.zeros(3), torch.zeros(1, 3), {}, "dimensions"),
        (torch.zeros(3, 2), torch.zeros(2), torch.zeros(1, 2), {}, "labels of shape"),
        (torch.zeros(0, 2), torch.zeros(0), torch.zeros(1, 2), {}, "no training"),
        (torch.zeros(3, 2), torch.zeros(3), torch.zeros(1, 2), {"k": 0}, "k must be"),
        (torch.zeros(3), torch.zeros(3), torch.zeros(1, 2), {}, "2-D"),
    ],
)
def test_bad_arguments(train, labels, query, options, match):
    with pytest.raises(ConfigError, match=match):
        knn_predict(train, labels, query, **options)


def test_extract_embeddings_collects_in_order():
    batches = [
        {"image": torch.ones(2, 3, 4, 4), "label": torch.tensor([1, 2])},
        {"image": torch.zeros(1, 3, 4, 4), "label": torch.tensor([3])},
    ]
    features, labels = extract_embeddings(lambda x: x.mean(dim=(2, 3)), batches)
    assert features.tolist() == [[1.0] * 3, [1.0] * 3, [0.0] * 3]
    assert labels.tolist() == [1, 2, 3]
    with pytest.raises(ConfigError, match="no batches"):
        extract_embeddings(lambda x: x, [])
    with pytest.raises(ConfigError, match="'label'"):
        extract_embeddings(lambda x: x, [{"image": torch.ones(1)}])
