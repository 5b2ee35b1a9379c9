"""What every protocol needs before it runs: the recipe's ``eval`` settings, the train / val /
test datasets with a consistent task and class count, and the objective told about them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vssl_core.build import build_dataset
from vssl_core.config import Config
from vssl_core.interfaces import VideoDataset, ViewSpec
from vssl_core.plugins import PluginHost
from vssl_eval.multiview import ViewPlan
from vssl_eval.supervised import task_of

# how the views of a video are combined when the recipe says "auto"
DEFAULT_AGGREGATE = {"classification": "mean", "multilabel": "max", "counting": "mean"}


@dataclass
class EvalResult:
    """What ``vssl eval`` prints: ``status`` is "completed" (metrics filled) or "preempted"."""

    run_dir: Path
    status: str
    metrics: dict[str, float]


@dataclass(frozen=True)
class EvalSettings:
    """The recipe's ``eval`` section (see vssl_core.schema.EvalSection)."""

    protocol: dict
    test_dataset: dict
    val_dataset: dict
    test_clips: int
    test_crops: int
    test_short_side: int | None
    aggregate: str
    test_batch_size: int

    @classmethod
    def from_recipe(cls, recipe: dict) -> EvalSettings:
        return cls(**recipe["eval"])

    def test_views(
        self, train_views: ViewSpec, num_clips: int | None = None, num_crops: int | None = None
    ) -> ViewPlan:
        """Test views with the training clip's frames, stride and crop size."""
        return ViewPlan(
            frames=train_views.frames,
            stride=train_views.stride,
            crop_size=train_views.crop_size,
            short_side=self.test_short_side or train_views.crop_size,
            num_clips=num_clips or self.test_clips,
            num_crops=num_crops or self.test_crops,
            pad=train_views.pad,
            temporal="segments" if train_views.temporal == "segments" else "clips",
        )

    def aggregation(self, task: str) -> str:
        return DEFAULT_AGGREGATE[task] if self.aggregate == "auto" else self.aggregate


@dataclass
class Datasets:
    train: VideoDataset
    test: VideoDataset
    val: VideoDataset | None  # None: model selection uses the test set (as SEVERE does)
    task: str
    num_classes: int


def _build(host: PluginHost, recipe: dict, spec: dict) -> VideoDataset:
    """A dataset component other than data.dataset, with the recipe's decoder."""
    return build_dataset(
        host.registry, {"data": {"dataset": spec, "decoder": recipe["data"]["decoder"]}}
    )


def prepare(config: Config, host: PluginHost) -> tuple[EvalSettings, Datasets]:
    """Build the datasets, check that they agree, and fill ``objective.num_classes``/``task``
    where the recipe leaves them to the data (so the saved recipe states them)."""
    settings = EvalSettings.from_recipe(config.data)
    if not settings.test_dataset:
        raise ValueError(
            "eval.test_dataset is empty: an evaluation recipe names the videos to test on, e.g. "
            "eval.test_dataset: {name: ucf101, split: test}"
        )
    for name in ("test_clips", "test_crops", "test_batch_size"):
        if getattr(settings, name) < 1:
            raise ValueError(f"eval.{name} must be >= 1, got {getattr(settings, name)}")
    train = build_dataset(host.registry, config.data)
    test = _build(host, config.data, settings.test_dataset)
    val = _build(host, config.data, settings.val_dataset) if settings.val_dataset else None
    task, num_classes = task_of(train), int(train.num_classes)
    for where, ds in (("eval.test_dataset", test), ("eval.val_dataset", val)):
        if ds is not None and (task_of(ds), int(ds.num_classes)) != (task, num_classes):
            raise ValueError(
                f"{where} ({task_of(ds)}, {ds.num_classes} classes) does not match data.dataset "
                f"({task}, {num_classes} classes): evaluate on the same label set"
            )
    _fill_objective(config.data["objective"], task, num_classes)
    return settings, Datasets(train, test, val, task, num_classes)


def _fill_objective(objective: dict, task: str, num_classes: int) -> None:
    for key, value, unset in (("task", task, "auto"), ("num_classes", num_classes, None)):
        if key not in objective:
            continue
        if objective[key] == unset:
            objective[key] = value
        elif objective[key] != value:
            raise ValueError(
                f"objective.{key} is {objective[key]!r} but the dataset says {value!r}: set "
                f"objective.{key}: {'null' if unset is None else unset} (taken from the dataset) "
                "or fix the dataset"
            )
