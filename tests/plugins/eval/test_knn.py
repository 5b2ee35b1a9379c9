"""The weighted kNN vote: its formula on a hand example, and perfection on separable data."""

import math

import pytest
import torch
import torch.nn.functional as F
from vssl_eval.knn import knn_scores, video_features


def test_vote_weights_neighbours_by_exp_similarity_over_temperature():
    train = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    q = torch.tensor([[1.0, 0.0]])  # similarities 1.0, 0.8, 0.0
    scores = knn_scores(q, train, labels, num_classes=3, k=2, temperature=0.5)
    w0, w1 = math.exp(1.0 / 0.5), math.exp(0.8 / 0.5)  # the two nearest; the third is left out
    expected = torch.tensor([[w0, w1, 0.0]]) / (w0 + w1)
    assert torch.allclose(scores, expected, atol=1e-6)


def test_knn_on_a_trivially_separable_set_is_perfect():
    g = torch.Generator().manual_seed(0)
    centres = F.normalize(torch.randn(5, 16, generator=g), dim=1) * 10
    labels = torch.arange(5).repeat(20)
    train = centres[labels] + torch.randn(100, 16, generator=g)
    test_labels = torch.arange(5).repeat(6)
    test = centres[test_labels] + torch.randn(30, 16, generator=g)
    scores = knn_scores(test, train, labels, 5, k=20, temperature=0.07, chunk=7)
    assert torch.equal(scores.argmax(1), test_labels)
    assert torch.allclose(scores.sum(1), torch.ones(30))


def test_video_feature_is_the_renormalised_mean_of_unit_view_features():
    views = torch.tensor([[[2.0, 0.0], [0.0, 5.0]]])  # one video, two views
    assert torch.allclose(video_features(views), torch.tensor([[1.0, 1.0]]) / math.sqrt(2))


def test_bad_shapes_and_settings_are_named():
    with pytest.raises(ValueError, match="features must be"):
        knn_scores(torch.zeros(2, 3), torch.zeros(4, 5), torch.zeros(4), 2, 1, 0.1)
    with pytest.raises(ValueError, match="k must be >= 1"):
        knn_scores(torch.zeros(2, 3), torch.zeros(4, 3), torch.zeros(4), 2, 0, 0.1)
