"""Video-level evaluation metrics, as torchmetrics ``Metric`` objects (synced across ranks).

Accuracies and mAP are in percent, as the papers report them; the counting error is a ratio.

- classification (SEVERE ``test.py``, spec contrastive-and-severe §6.5): ``top1``, ``top5``
  (Video@1/@5), ``mean_class_top1`` / ``mean_class_top5`` (Video@MeanTop1: the mean over *all*
  classes of per-class accuracy; a class with no test video counts as 0, as in SEVERE);
- multilabel (Charades, §6.7): ``map``, the mean over classes with at least one positive of the
  average precision (sklearn's ``average_precision_score``, ties handled the same way);
- counting (UCF-RC, §6.6): the predicted count is rounded to an integer; ``mae`` is the mean of
  |c_hat - c| / c (the "MAE" SEVERE reports, lower is better) and ``obo_acc`` the percentage of
  videos with |c_hat - c| <= 1.

The ``Metric`` classes live in :mod:`vssl_eval.metric_states`, imported when first used:
importing torchmetrics takes a second or two (it imports transformers when installed), which
every ``vssl`` command would pay when the plugin loads.

Shape legend: B videos, K classes.
"""

from __future__ import annotations

from typing import Any

# the metric that selects a model, and whether higher is better
PRIMARY: dict[str, tuple[str, bool]] = {
    "classification": ("top1", True),
    "multilabel": ("map", True),
    "counting": ("mae", False),
}
NAMES: dict[str, tuple[str, ...]] = {
    "classification": ("top1", "top5", "mean_class_top1", "mean_class_top5"),
    "multilabel": ("map",),
    "counting": ("mae", "obo_acc"),
}
LOWER_IS_BETTER = frozenset({"mae"})


def selection_metric(task: str, requested: str) -> str:
    """The metric that picks a model: the task's primary one ("auto") or a named one."""
    if requested == "auto":
        return PRIMARY[task][0]
    if requested not in NAMES[task]:
        raise ValueError(
            f"select_metric {requested!r} is not a {task} metric; choose one of "
            f"{', '.join(NAMES[task])} (or auto: {PRIMARY[task][0]})"
        )
    return requested


_STATES = ("ClassificationMetrics", "MultilabelMAP", "CountingMetrics")


def __getattr__(name: str) -> Any:
    if name in _STATES:
        from vssl_eval import metric_states

        return getattr(metric_states, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_metrics(task: str, num_classes: int):
    """The torchmetrics ``Metric`` of a task."""
    from vssl_eval import metric_states

    if task == "classification":
        return metric_states.ClassificationMetrics(num_classes)
    if task == "multilabel":
        return metric_states.MultilabelMAP(num_classes)
    if task == "counting":
        return metric_states.CountingMetrics()
    raise ValueError(f"no metrics for task {task!r}; tasks: {', '.join(PRIMARY)}")
