"""The ``knn`` monitor: logged beside the loss at its cadence, exact where the answer is known,
invisible to the training itself, and its recipe mistakes named before anything runs."""

import json

import pytest
import torch
import yaml
from kit import faults

from vssl_core.config import load_config
from vssl_core.engine.checkpoint import load_checkpoint
from vssl_core.engine.trainer import TrainingError, train
from vssl_core.hookspecs import hookimpl
from vssl_core.interfaces import Monitor
from vssl_core.plugins import load_plugins
from vssl_core.registry import component
from vssl_core.schema import RecipeError

HOST = load_plugins()


def shapes(seed: int, n: int = 8) -> dict:
    return {"name": "moving_shapes", "num_samples": n, "num_classes": 4, "num_frames": 32,
            "size": 32, "seed": seed}  # fmt: skip


def recipe(tmp_path, name: str, monitor: dict | None) -> dict:
    out = {
        "run": {"name": name, "output_root": str(tmp_path)},
        "data": {"dataset": shapes(0, 16)},
        "backbone": {"name": "cnn3d_small", "img_size": 32, "num_frames": 4, "width": 8},
        "objective": {"name": "rotation"},
        "batch": {"global_size": 4},
        "optim": {"name": "adamw", "lr": 1e-3, "lr_scaling": "none"},
        "train": {"max_steps": 4},
        "log": {"every_steps": 4, "progress_bar": False, "tensorboard": False},
    }
    if monitor is not None:
        out["monitor"] = monitor
    return out


def run(tmp_path, name, monitor, host=HOST):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe(tmp_path, name, monitor)))
    return train(load_config(path, [], host), host)


def logged(result) -> list[dict]:
    lines = (result.run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_monitor_logs_at_its_cadence_and_leaves_training_unchanged(tmp_path):
    monitor = {"name": "knn", "every_steps": 2, "train_dataset": shapes(1),
               "test_dataset": shapes(2, 4), "k": 3}  # fmt: skip
    watched = run(tmp_path, "watched", monitor)
    rows = logged(watched)
    # step 0: the untrained baseline; step 2 is logged because the monitor ran
    assert [r["step"] for r in rows] == [0, 2, 4]
    assert set(rows[0]) == {"step", "knn_top1", "knn_mean_class_top1"}
    for r in rows:
        assert 0 <= r["knn_top1"] <= 100 and 0 <= r["knn_mean_class_top1"] <= 100
    assert all("loss" in r and "clips_per_s" in r for r in rows[1:])

    plain = run(tmp_path, "plain", None)
    assert [r["step"] for r in logged(plain)] == [4]  # (its loss averages steps 1-4, not 3-4)
    a = load_checkpoint(watched.run_dir / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(plain.run_dir / "checkpoints" / "last.pt")["model"]
    for key in a:  # weights and BatchNorm statistics: eval mode, no gradient, no RNG
        assert torch.equal(a[key], b[key]), key


def test_a_preempted_step_saves_before_any_monitor_runs(tmp_path):
    """SIGTERM at step 3: step 4 finishes and is saved at once, although the monitor is due
    there (a scheduler's grace period must not wait for a kNN pass)."""
    monitor = {"name": "knn", "every_steps": 2, "train_dataset": shapes(1),
               "test_dataset": shapes(2, 4)}  # fmt: skip
    host = load_plugins(extra=[("sigterm", faults.SigtermAt(3))])
    stopped = run(tmp_path, "stopped", monitor, host)
    assert stopped.status == "preempted" and stopped.step == 4
    rows = logged(stopped)
    assert [r["step"] for r in rows] == [0, 2, 4] and "knn_top1" not in rows[-1]


def test_every_video_is_its_own_nearest_neighbour(tmp_path):
    """Bank = test set and k = 1: each test video finds itself, so a correct pipeline (features,
    labels and their order after the gather) scores 100%."""
    same = shapes(3)
    monitor = {"name": "knn", "every_steps": 4, "train_dataset": same, "test_dataset": same,
               "k": 1}  # fmt: skip
    rows = logged(run(tmp_path, "self", monitor))
    assert rows[-1]["knn_top1"] == 100.0


@pytest.mark.parametrize(
    "monitor, message",
    [
        ({"name": "knn", "train_dataset": {**shapes(1), "num_sampels": 8},
          "test_dataset": shapes(2)}, "monitor.train_dataset.num_sampels.*num_samples"),
        ({"name": "knnn", "train_dataset": shapes(1), "test_dataset": shapes(2)}, "knn"),
        ({"name": "knn", "test_dataset": shapes(2)}, "monitor.train_dataset"),
    ],
)  # fmt: skip
def test_recipe_mistakes_are_named_before_training(tmp_path, monitor, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(recipe(tmp_path, "bad", monitor)))
    with pytest.raises(RecipeError, match=message):
        load_config(path, [], HOST)


def test_settings_and_datasets_it_cannot_use_are_refused(tmp_path):
    factory = HOST.registry.get("monitor", "knn").factory
    with pytest.raises(ValueError, match="every_steps must be >= 1"):
        factory(train_dataset=shapes(1), test_dataset=shapes(2), every_steps=0)
    counting = {**shapes(2), "task": "counting"}
    monitor = {"name": "knn", "train_dataset": shapes(1), "test_dataset": counting}
    with pytest.raises(ValueError, match="monitor.test_dataset has task 'counting'"):
        run(tmp_path, "counting", monitor)


class _NoCadence(Monitor):
    """A monitor that forgets to say how often it runs."""

    def measure(self, run, step):
        return {}


class _NoCadencePlugin:
    @hookimpl
    def vssl_register_components(self, registry, plugin):
        registry.add(component("monitor", name="no_cadence")(_NoCadence), plugin)


def test_a_monitor_without_a_cadence_is_refused(tmp_path):
    host = load_plugins(extra=[("no_cadence", _NoCadencePlugin())])
    with pytest.raises(TrainingError, match="monitor 'no_cadence' must set every_steps"):
        run(tmp_path, "no_cadence", {"name": "no_cadence"}, host)


def test_a_channels_last_run_is_monitored_in_its_layout_with_the_same_scores(tmp_path):
    monitor = {"name": "knn", "every_steps": 2, "train_dataset": shapes(1),
               "test_dataset": shapes(2, 4), "k": 3}  # fmt: skip
    scores = {}
    for layout in (False, True):
        data = recipe(tmp_path, f"cl_{layout}", monitor)
        data["train"]["channels_last"] = layout
        path = tmp_path / f"cl_{layout}.yaml"
        path.write_text(yaml.safe_dump(data))
        rows = logged(train(load_config(path, [], HOST), HOST))
        scores[layout] = [(r["step"], r["knn_top1"], r["knn_mean_class_top1"]) for r in rows]
    assert scores[True] == scores[False]
