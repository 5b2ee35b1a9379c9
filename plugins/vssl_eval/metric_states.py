"""The evaluation metrics as torchmetrics ``Metric`` objects, synced across ranks (what each
computes: :mod:`vssl_eval.metrics`).

Shape legend: B videos, K classes.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.functional.classification import binary_average_precision


class ClassificationMetrics(Metric):
    """Top-1/top-5 over videos and averaged per class, from per-class hit counts."""

    full_state_update = False

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        for name in ("hits1", "hits5", "count"):
            self.add_state(name, torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, scores_BK: torch.Tensor, labels_B: torch.Tensor) -> None:
        B, K = scores_BK.shape
        if K != self.num_classes or tuple(labels_B.shape) != (B,):
            raise ValueError(
                f"classification metrics for {self.num_classes} classes got scores "
                f"{list(scores_BK.shape)} and labels {list(labels_B.shape)}"
            )
        top_B5 = scores_BK.topk(min(5, K), dim=-1).indices
        labels_B = labels_B.long()
        hit1_B = (top_B5[:, 0] == labels_B).long()
        hit5_B = (top_B5 == labels_B[:, None]).any(dim=-1).long()
        self.hits1 += torch.bincount(labels_B, hit1_B, minlength=K).long()
        self.hits5 += torch.bincount(labels_B, hit5_B, minlength=K).long()
        self.count += torch.bincount(labels_B, minlength=K)

    def compute(self) -> dict[str, float]:
        n = self.count.sum().clamp_min(1).double()
        per_class = self.count.clamp_min(1).double()  # absent classes: 0 hits / 1 = 0
        return {
            "top1": 100 * float(self.hits1.sum() / n),
            "top5": 100 * float(self.hits5.sum() / n),
            "mean_class_top1": 100 * float((self.hits1 / per_class).mean()),
            "mean_class_top5": 100 * float((self.hits5 / per_class).mean()),
        }


class MultilabelMAP(Metric):
    """Mean average precision over the classes that have a positive."""

    full_state_update = False

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.add_state("scores", [], dist_reduce_fx="cat")
        self.add_state("targets", [], dist_reduce_fx="cat")

    def update(self, scores_BK: torch.Tensor, targets_BK: torch.Tensor) -> None:
        if scores_BK.shape != targets_BK.shape or scores_BK.shape[-1] != self.num_classes:
            raise ValueError(
                f"multilabel mAP over {self.num_classes} classes got scores "
                f"{list(scores_BK.shape)} and targets {list(targets_BK.shape)}"
            )
        self.scores.append(scores_BK.float())
        self.targets.append((targets_BK > 0.5).long())

    def compute(self) -> dict[str, float]:
        scores = _cat(self.scores)
        targets = _cat(self.targets)
        present = [k for k in range(self.num_classes) if int(targets[:, k].sum()) > 0]
        if not present:
            return {"map": float("nan")}
        aps = [float(binary_average_precision(scores[:, k], targets[:, k])) for k in present]
        return {"map": 100 * sum(aps) / len(aps)}


class CountingMetrics(Metric):
    """Normalised mean absolute counting error and off-by-one accuracy of rounded counts."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        for name in ("rel_error", "off_by_one", "n"):
            self.add_state(name, torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, counts_B: torch.Tensor, true_B: torch.Tensor) -> None:
        counts_B, true_B = counts_B.reshape(-1).double(), true_B.reshape(-1).double()
        if counts_B.shape != true_B.shape:
            raise ValueError(
                f"counting metrics: {counts_B.numel()} predictions, {true_B.numel()} labels"
            )
        if bool((true_B <= 0).any()):
            raise ValueError(
                "counting metrics: true counts must be positive (the error divides by them)"
            )
        err_B = (counts_B.round() - true_B).abs()
        self.rel_error += (err_B / true_B).sum()
        self.off_by_one += (err_B <= 1).double().sum()
        self.n += counts_B.numel()

    def compute(self) -> dict[str, float]:
        n = float(self.n.clamp_min(1))
        return {"mae": float(self.rel_error) / n, "obo_acc": 100 * float(self.off_by_one) / n}


def _cat(x: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    return torch.cat(x) if isinstance(x, list) else x
