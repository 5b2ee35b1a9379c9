"""Protocols on every task (a stub plugin gives moving_shapes multi-label and count labels),
their option checks, the dataset/objective agreement, and the shipped eval recipes."""

import json
from pathlib import Path

import numpy as np
import pytest
from vssl_eval.session import prepare

from vssl_core.build import build
from vssl_core.config import load_config
from vssl_core.hookspecs import hookimpl
from vssl_core.interfaces import VideoSample
from vssl_core.plugins import load_plugins
from vssl_core.recipe import compose_recipe
from vssl_core.registry import component

ROOT = Path(__file__).resolve().parents[3]
FINETUNE = ROOT / "recipes" / "eval" / "synthetic_finetune.yaml"


@component("dataset")
class shapes_tasks:  # noqa: N801 - a component name
    """moving_shapes with multi-hot labels {c, c+1} or counts 2 + c."""

    def __init__(self, task: str = "multilabel", num_samples: int = 8, seed: int = 0):
        from vssl_datasets.moving_shapes import MovingShapes

        self.inner = MovingShapes(
            num_samples=num_samples, num_classes=4, num_frames=8, size=32, seed=seed
        )
        self.task, self.num_classes = task, 4

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        s = self.inner[i]
        if self.task == "multilabel":
            label = np.zeros(4, np.float32)
            label[[s.label, (s.label + 1) % 4]] = 1
        else:
            label = float(2 + s.label)
        return VideoSample(s.video, label, i, s.video_id)


class StubPlugin:
    @hookimpl
    def vssl_register_components(self, registry, plugin):
        registry.add(shapes_tasks, plugin)


@pytest.fixture(scope="module")
def host():
    return load_plugins(extra=[("stub_tasks", StubPlugin())])


def overrides(tmp_path, task):
    data = f"{{name: shapes_tasks, task: {task}, num_samples: 8}}"
    return [
        f"run.output_root={tmp_path}",
        "data.num_workers=0",
        f"data.dataset={data}",
        f"eval.test_dataset={{name: shapes_tasks, task: {task}, num_samples: 4, seed: 1}}",
        "backbone={name: cnn3d_small, img_size: 32, num_frames: 4, width: 4}",
        "objective.head={name: linear_head, dropout: 0.5}",
        "batch.global_size=4",
        "train.max_steps=2",
        "eval.test_clips=2",
        "eval.test_crops=3",
        "log.progress_bar=false",
        "log.tensorboard=false",
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "task, metrics, aggregate",
    [("multilabel", {"map"}, "max"), ("counting", {"mae", "obo_acc"}, "mean")],
)
def test_finetune_runs_every_task_with_its_loss_metrics_and_aggregation(
    host, tmp_path, task, metrics, aggregate
):
    config = load_config(FINETUNE, overrides(tmp_path, task), host)
    result = build(host.registry, "protocol", config.data["eval"]["protocol"]).run(config, host)
    assert result.status == "completed" and set(result.metrics) == metrics
    saved = json.loads((result.run_dir / "metrics.json").read_text())
    assert saved["task"] == task and saved["views"]["aggregate"] == aggregate
    assert saved["selected"]["metric"] == ("map" if task == "multilabel" else "mae")
    rows = [
        json.loads(li) for li in (result.run_dir / "predictions.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 4
    if task == "multilabel":
        assert rows[1]["label"] == [1, 2] and len(rows[1]["scores"]) == 4
    else:
        assert rows[1]["label"] == 3.0 and isinstance(rows[1]["prediction"], int)


def test_the_objective_learns_the_task_and_class_count_from_the_data(host, tmp_path):
    config = load_config(FINETUNE, overrides(tmp_path, "counting"), host)
    settings, data = prepare(config, host)
    assert (data.task, data.num_classes) == ("counting", 4)
    assert config.data["objective"]["task"] == "counting"
    assert config.data["objective"]["num_classes"] == 4
    assert settings.aggregation("counting") == "mean"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["objective.num_classes=7"], "objective.num_classes is 7 but the dataset says 4"),
        (["eval.test_dataset.task=counting"], "does not match data.dataset"),
        (["eval.test_dataset=null"], "eval.test_dataset is empty"),
    ],
)
def test_disagreements_between_data_and_recipe_are_named(host, tmp_path, extra, message):
    config = load_config(FINETUNE, [*overrides(tmp_path, "multilabel"), *extra], host)
    with pytest.raises(ValueError, match=message):
        prepare(config, host)


def test_protocol_options_that_would_be_ignored_are_refused(host):
    protocol = host.registry.get("protocol", "finetune").factory
    with pytest.raises(ValueError, match="select_clips only apply with select: best"):
        protocol(select="last", select_clips=3)
    with pytest.raises(ValueError, match="frozen backbone"):
        config = load_config(FINETUNE, ["eval.protocol={name: linear}"], host)
        build(host.registry, "protocol", config.data["eval"]["protocol"]).run(config, host)


def test_every_eval_recipe_validates_and_every_fragment_composes(host):
    runnable = sorted((ROOT / "recipes" / "eval").glob("*.yaml"))
    fragments = sorted((ROOT / "plugins" / "vssl_eval" / "recipes").rglob("*.yaml"))
    assert len(runnable) == 3 and len(fragments) == 4
    for path in runnable:
        assert load_config(path, [], host).data["eval"]["protocol"]["name"] in (
            "finetune",
            "linear",
            "knn",
        )
    for path in fragments:
        assert compose_recipe(path, search_paths=host.recipe_search_paths()).data["eval"][
            "protocol"
        ]
