"""Evaluation around a training run, as hooks on the trainer's lifecycle.

Registered for the duration of one ``train()`` call by the fine-tuning and linear protocols:

- ``vssl_step_end``: at the end of every ``select_every_epochs``-th epoch (and at the last
  step) with ``select: best``, score the selection set (the test set unless
  ``eval.val_dataset`` is set: SEVERE picks its best epoch on the test split, spec
  contrastive-and-severe §6.5) and keep the best model in ``checkpoints/best.pt``;
- ``vssl_train_end`` (a completed run): restore the best model (``select: best``) or keep the
  last one, run the full multi-view test and write ``metrics.json`` and ``predictions.jsonl``.

Both run on every rank while the process group is still up; metrics are synced over ranks.
SEVERE's per-epoch check scores random-start clips one by one; here it is the video-level
metric over ``select_clips`` evenly spaced centre-crop clips per video (deterministic).
"""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path

from vssl_core.engine import checkpoint as ckpt
from vssl_core.engine.run import RunContext
from vssl_core.hookspecs import hookimpl
from vssl_eval.metrics import LOWER_IS_BETTER
from vssl_eval.multiview import aggregate
from vssl_eval.results import write_results
from vssl_eval.runner import DistEnv, TestOutput, run_test, view_loader, weights_in_ndhwc
from vssl_eval.session import Datasets, EvalSettings

log = logging.getLogger("vssl.eval")


class TrainedEvaluation:
    """Model selection during training and the final test after it (one run's state)."""

    def __init__(
        self,
        recipe: dict,
        settings: EvalSettings,
        data: Datasets,
        protocol: str,
        select: str,
        every_epochs: int,
        select_clips: int,
        select_metric: str,
    ) -> None:
        self.recipe, self.settings, self.data, self.protocol = recipe, settings, data, protocol
        self.select, self.every_epochs, self.select_clips = select, every_epochs, select_clips
        self.metric_name = select_metric
        self.higher_better = self.metric_name not in LOWER_IS_BETTER
        self.best: dict | None = None  # {"step", "value", "metrics"} of the kept model
        self.payload: dict | None = None  # metrics.json, after the final test
        self.error: BaseException | None = None  # raised again once the trainer has cleaned up

    # --------------------------------------------------------------------------- helpers
    def _env(self, run: RunContext) -> DistEnv:
        return DistEnv.current(next(run.model.parameters()).device)

    def _test(self, run: RunContext, dataset, num_clips: int, num_crops: int) -> TestOutput:
        model, env = run.model, self._env(run)
        views = self.settings.test_views(model.views(), num_clips, num_crops)
        loader = view_loader(
            dataset, views, env, self.settings.test_batch_size, self.recipe["data"]["num_workers"]
        )
        spec = model.views()
        was_training = model.training
        model.eval()
        try:
            return run_test(
                model.predict,
                loader,
                env,
                self.data.task,
                self.data.num_classes,
                partial(aggregate, how=self.settings.aggregation(self.data.task)),
                spec.mean,
                spec.std,
                self.recipe["train"]["precision"],
                channels_last=weights_in_ndhwc(model),
            )
        finally:
            model.train(was_training)

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best["value"] if self.higher_better else value < self.best["value"]

    @staticmethod
    def _best_path(run: RunContext) -> Path:
        return run.checkpoint_dir / "best.pt"

    # --------------------------------------------------------------------------- hooks
    @hookimpl
    def vssl_train_start(self, run: RunContext) -> None:
        if run.start_step > 0 and self._best_path(run).is_file():  # a resumed run keeps its best
            state = ckpt.load_checkpoint(self._best_path(run))
            self.best = state["selection"]

    @hookimpl
    def vssl_step_end(self, run: RunContext, step: int, metrics: dict | None) -> None:
        if self.select != "best":
            return
        period = run.steps_per_epoch * self.every_epochs
        if step % period and step != run.total_steps:
            return
        dataset = self.data.val if self.data.val is not None else self.data.test
        out = self._test(run, dataset, self.select_clips, 1)
        value = out.metrics[self.metric_name]
        improved = self._better(value)
        if improved:
            self.best = {
                "step": step,
                "value": value,
                "metric": self.metric_name,
                "metrics": out.metrics,
            }
        if run.is_main:
            with open(run.run_dir / "val_metrics.jsonl", "a") as f:
                f.write(json.dumps({"step": step, **out.metrics, "best": improved}) + "\n")
            log.info(
                "step %d: selection %s %.4f%s",
                step,
                self.metric_name,
                value,
                " (best)" if improved else "",
            )
            if improved:
                state = {
                    "format": "vssl",
                    "version": ckpt.FORMAT_VERSION,
                    "step": step,
                    "model": run.model.state_dict(),
                    "recipe": run.recipe,
                    "selection": self.best,
                }
                ckpt.save_atomic(state, self._best_path(run))
        self._env(run).barrier()

    @hookimpl
    def vssl_train_end(self, run: RunContext, step: int, status: str) -> None:
        if status != "completed":
            return
        try:  # an exception here would skip the trainer's own clean-up: keep it for later
            self._final_test(run, step)
        except Exception as exc:  # re-raised by the protocol after train() returns
            self.error = exc

    def _final_test(self, run: RunContext, step: int) -> None:
        selected = {"rule": "last", "step": step}
        if self.select == "best":
            if self.best is None or not self._best_path(run).is_file():
                raise RuntimeError(f"select: best but no model was kept in {self._best_path(run)}")
            state = ckpt.load_checkpoint(self._best_path(run))
            run.model.load_state_dict(state["model"])
            selected = {"rule": "best", **self.best}
        s = self.settings
        out = self._test(run, self.data.test, s.test_clips, s.test_crops)
        views = s.test_views(run.model.views())
        info = {
            "protocol": self.protocol,
            "task": self.data.task,
            "num_classes": self.data.num_classes,
            "checkpoint": self.recipe["objective"].get("backbone_checkpoint"),
            "selected": selected,
            "test_dataset": s.test_dataset,
            "views": {
                "clips": views.num_clips,
                "crops": views.num_crops,
                "frames": views.frames,
                "stride": views.stride,
                "crop_size": views.crop_size,
                "short_side": views.short_side,
                "aggregate": s.aggregation(self.data.task),
            },
        }
        self.payload = write_results(run.run_dir, self._env(run), out, info)
