"""Evaluation protocols (components of kind ``protocol``), run by ``vssl eval``.

A protocol builds to an object with ``run(config, host) -> EvalResult``; it writes
``metrics.json`` and ``predictions.jsonl`` into the run directory.

- ``finetune``: train backbone + head with the ``supervised`` objective in the ordinary trainer,
  keep the best (or last) model, then the multi-view test (SEVERE §6.4-6.5, VideoMAE §1.10);
- ``linear``: the same with a frozen backbone (``objective.freeze_backbone: true``; §6.9);
- ``knn`` (in :mod:`vssl_eval.knn`): no training: a weighted kNN vote of test videos among
  training videos on frozen, L2-normalised features.
"""

from __future__ import annotations

from typing import Literal

from vssl_core.config import Config
from vssl_core.engine.trainer import train
from vssl_core.plugins import PluginHost
from vssl_core.registry import component
from vssl_eval.metrics import selection_metric
from vssl_eval.session import EvalResult, prepare
from vssl_eval.trained import TrainedEvaluation


class _TrainThenTest:
    """Supervised training through the trainer, with selection and the final test as hooks."""

    name = ""

    def __init__(
        self,
        select: str,
        select_every_epochs: int | None,
        select_clips: int | None,
        select_metric: str | None,
    ) -> None:
        options = {
            "select_every_epochs": select_every_epochs,
            "select_clips": select_clips,
            "select_metric": select_metric,
        }
        if select == "last":
            used = [k for k, v in options.items() if v is not None]
            if used:
                raise ValueError(
                    f"{self.name}: {', '.join(used)} only apply with select: best; remove them "
                    "or set select: best"
                )
        for key in ("select_every_epochs", "select_clips"):
            if options[key] is not None and options[key] < 1:
                raise ValueError(f"{self.name}: {key} must be >= 1, got {options[key]}")
        self.select = select
        self.every_epochs = select_every_epochs or 1
        self.select_clips = select_clips or 1
        self.select_metric = select_metric or "auto"

    def check(self, config: Config) -> None:
        """Protocol-specific recipe checks (before anything is built)."""

    def run(self, config: Config, host: PluginHost) -> EvalResult:
        self.check(config)
        settings, data = prepare(config, host)
        if settings.val_dataset and self.select == "last":
            raise ValueError(
                "eval.val_dataset is only used to select a model (select: best); remove it or "
                "set eval.protocol.select: best"
            )
        hooks = TrainedEvaluation(
            config.data,
            settings,
            data,
            self.name,
            self.select,
            self.every_epochs,
            self.select_clips,
            selection_metric(data.task, self.select_metric),
        )
        host.pm.register(hooks, name="vssl_eval.trained")
        try:
            result = train(config, host)
        finally:
            host.pm.unregister(hooks)
        if hooks.error is not None:
            raise hooks.error
        metrics = hooks.payload["metrics"] if hooks.payload else {}
        return EvalResult(result.run_dir, result.status, metrics)


@component("protocol", name="finetune")
class Finetune(_TrainThenTest):
    """Fine-tune every layer with a new head, select the best (or last) model, multi-view test."""

    name = "finetune"

    def __init__(
        self,
        select: Literal["best", "last"] = "best",
        select_every_epochs: int | None = None,
        select_clips: int | None = None,
        select_metric: str | None = None,
    ) -> None:
        super().__init__(select, select_every_epochs, select_clips, select_metric)


@component("protocol", name="linear")
class Linear(_TrainThenTest):
    """Train a head on a frozen backbone (linear probe), then the multi-view test."""

    name = "linear"

    def __init__(
        self,
        select: Literal["best", "last"] = "best",
        select_every_epochs: int | None = None,
        select_clips: int | None = None,
        select_metric: str | None = None,
    ) -> None:
        super().__init__(select, select_every_epochs, select_clips, select_metric)

    def check(self, config: Config) -> None:
        if not config.data["objective"].get("freeze_backbone", False):
            raise ValueError(
                "the linear protocol trains a head on a frozen backbone: set "
                "objective.freeze_backbone: true (or use eval.protocol.name: finetune)"
            )
