"""The ``knn`` monitor: the kNN accuracy of the backbone's frozen features, measured inside a
pretraining run every ``every_steps`` steps (the online kNN of solo-learn and PySlowFast's
``KNN_ON``).

A pretext loss that falls says the pretext task is being learned, not that the features are
getting better for anything else: rotation and clip order reach 90%+ pretext accuracy on the
embedded synthetic data by reading one global cue (docs/benchmarks.md). The monitor logs what a
downstream user would see: ``knn_top1`` (and ``knn_mean_class_top1``) of a labelled training
bank voting for held-out videos, in metrics.jsonl, TensorBoard and the log, beside the loss.

It reuses the ``knn`` protocol's pieces (the same views, unit video features and weighted vote)
on the pretraining backbone as it is at that step, in eval mode and without gradients. Every rank
embeds its share of the videos; the bank is gathered and the metrics synced, so all ranks agree.
"""

from __future__ import annotations

import math
from functools import partial

from vssl_core.build import build_dataset
from vssl_core.engine.run import RunContext
from vssl_core.interfaces import Monitor
from vssl_core.registry import Registry, component
from vssl_eval.knn import feature_bank, knn_vote
from vssl_eval.multiview import ViewPlan
from vssl_eval.runner import DistEnv, batch_scores, run_test, view_loader, weights_in_ndhwc
from vssl_eval.supervised import task_of


@component("monitor", name="knn")
class KnnMonitor(Monitor):
    """kNN top-1 of the backbone's features on ``test_dataset``, voting with ``train_dataset``."""

    def __init__(
        self,
        train_dataset: dict,
        test_dataset: dict,
        every_steps: int = 500,
        k: int = 20,
        temperature: float = 0.07,
        clips: int = 1,
        batch_size: int = 16,
        num_workers: int = 0,
    ) -> None:
        for name, value, low in (
            ("every_steps", every_steps, 1),
            ("k", k, 1),
            ("clips", clips, 1),
            ("batch_size", batch_size, 1),
            ("num_workers", num_workers, 0),
        ):
            if value < low:
                raise ValueError(f"knn monitor: {name} must be >= {low}, got {value}")
        if not 0 < temperature < math.inf:
            raise ValueError(f"knn monitor: temperature must be > 0, got {temperature}")
        self.specs = {"train_dataset": train_dataset, "test_dataset": test_dataset}
        self.every_steps, self.k, self.temperature = every_steps, k, temperature
        self.clips, self.batch_size, self.num_workers = clips, batch_size, num_workers

    def setup(self, run: RunContext, registry: Registry) -> None:
        decoder = run.recipe["data"].get("decoder") or {}
        built = {
            key: build_dataset(registry, {"data": {"dataset": spec, "decoder": decoder}})
            for key, spec in self.specs.items()
        }
        for key, ds in built.items():
            if task_of(ds) != "classification":
                raise ValueError(
                    f"monitor.{key} has task {task_of(ds)!r}; the knn monitor classifies: give "
                    "it a classification dataset"
                )
        self.train, self.test = built["train_dataset"], built["test_dataset"]
        if int(self.train.num_classes) != int(self.test.num_classes):
            raise ValueError(
                f"monitor.train_dataset has {self.train.num_classes} classes, "
                f"monitor.test_dataset {self.test.num_classes}: use one label set"
            )
        spec = run.model.views()  # the training clip's frames, stride and crop
        self.views = ViewPlan(
            frames=spec.frames,
            stride=spec.stride,
            crop_size=spec.crop_size,
            short_side=spec.crop_size,
            num_clips=self.clips,
            num_crops=1,
            pad=spec.pad,
            temporal="segments" if spec.temporal == "segments" else "clips",
        )
        self.mean, self.std = spec.mean, spec.std

    def measure(self, run: RunContext, step: int) -> dict[str, float]:
        model = run.model
        env = DistEnv.current(next(model.parameters()).device)
        precision = run.recipe["train"]["precision"]
        features = model.backbone  # pooled features [N, D] of normalized clips
        loader = partial(
            view_loader, views=self.views, env=env, batch_size=self.batch_size,
            num_workers=self.num_workers,
        )  # fmt: skip
        model.eval()  # no grad: batch_scores; the trainer sets training mode back afterwards
        ndhwc = weights_in_ndhwc(model)  # train.channels_last: clips in the weights' layout
        embed = partial(
            batch_scores, features, env=env, mean=self.mean, std=self.std,
            precision=precision, channels_last=ndhwc,
        )  # fmt: skip
        bank_ND, labels_N, _ = feature_bank(embed, loader(self.train), env)
        vote = partial(
            knn_vote, bank_ND=bank_ND, labels_N=labels_N,
            num_classes=int(self.train.num_classes), k=self.k,
            temperature=self.temperature,
        )  # fmt: skip
        out = run_test(
            features, loader(self.test), env, "classification",
            int(self.test.num_classes), vote, self.mean, self.std, precision,
            channels_last=ndhwc,
        )  # fmt: skip
        return {
            "knn_top1": out.metrics["top1"],
            "knn_mean_class_top1": out.metrics["mean_class_top1"],
        }
