"""Evaluation metrics against hand-computed values (SEVERE's definitions, spec §6.5-6.7)."""

import pytest
import torch
from vssl_eval.metrics import (
    ClassificationMetrics,
    CountingMetrics,
    MultilabelMAP,
    build_metrics,
    selection_metric,
)


def test_top1_top5_and_mean_class_accuracy_count_absent_classes_as_zero():
    # 6 classes; classes 2, 4, 5 have no test video
    scores = torch.tensor(
        [
            [0.50, 0.10, 0.10, 0.10, 0.10, 0.10],  # label 0: top-1 hit
            [0.00, 0.20, 0.20, 0.20, 0.20, 0.20],  # label 0: lowest score, top-5 miss
            [0.10, 0.30, 0.40, 0.10, 0.05, 0.05],  # label 1: second, top-5 hit only
            [0.10, 0.10, 0.10, 0.40, 0.20, 0.10],  # label 3: top-1 hit
        ]
    )
    m = ClassificationMetrics(6)
    m.update(scores[:2], torch.tensor([0, 0]))  # two updates accumulate
    m.update(scores[2:], torch.tensor([1, 3]))
    out = m.compute()
    assert out["top1"] == pytest.approx(50.0)
    assert out["top5"] == pytest.approx(75.0)
    assert out["mean_class_top1"] == pytest.approx(100 * (0.5 + 0 + 1) / 6)
    assert out["mean_class_top5"] == pytest.approx(100 * (0.5 + 1 + 1) / 6)


def test_map_averages_classes_with_a_positive_and_handles_ties_like_sklearn():
    scores = torch.tensor([[0.9, 0.2, 0.5], [0.8, 0.6, 0.5], [0.8, 0.4, 0.5], [0.1, 0.3, 0.5]])
    targets = torch.tensor([[1, 0, 0], [0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=torch.float32)
    m = MultilabelMAP(3)
    m.update(scores, targets)
    # class 0: thresholds 0.9 (P 1, R .5) and the tie at 0.8 (P 2/3, R 1): AP = .5 + .5 * 2/3
    # class 1: its positive ranks third: AP = 1/3; class 2 has no positive and is left out
    assert m.compute()["map"] == pytest.approx(100 * ((0.5 + 1 / 3) + 1 / 3) / 2, abs=1e-4)


def test_counting_rounds_then_gives_normalised_mae_and_off_by_one_accuracy():
    m = CountingMetrics()
    m.update(torch.tensor([2.4, 5.6, 10.0, 3.0]), torch.tensor([2.0, 4.0, 8.0, 6.0]))
    out = m.compute()  # rounded 2, 6, 10, 3: errors 0, 2, 2, 3
    assert out["mae"] == pytest.approx((0 + 2 / 4 + 2 / 8 + 3 / 6) / 4)
    assert out["obo_acc"] == pytest.approx(25.0)
    with pytest.raises(ValueError, match="must be positive"):
        m.update(torch.tensor([1.0]), torch.tensor([0.0]))


def test_selection_metric_defaults_per_task_and_rejects_foreign_names():
    assert selection_metric("classification", "auto") == "top1"
    assert selection_metric("counting", "auto") == "mae"
    assert selection_metric("classification", "mean_class_top1") == "mean_class_top1"
    with pytest.raises(ValueError, match="not a multilabel metric; choose one of map"):
        selection_metric("multilabel", "top1")
    with pytest.raises(ValueError, match="no metrics for task"):
        build_metrics("detection", 3)
