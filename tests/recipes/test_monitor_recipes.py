"""recipes/monitor/: each is its method's CPU recipe plus the kNN monitor fragment, and loads."""

from pathlib import Path

import pytest

from vssl_core.config import load_config

MONITOR = Path(__file__).resolve().parents[2] / "recipes" / "monitor"
RECIPES = sorted(MONITOR.glob("*_knn.yaml"))


def test_every_method_with_a_cpu_recipe_has_a_monitor_recipe():
    methods = {p.name.removesuffix("_knn.yaml") for p in RECIPES}
    assert {"clip_order", "rotation", "moco", "videomae", "sigma"} <= methods


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_a_monitor_recipe_is_its_method_recipe_with_the_knn_monitor(path, host):
    method = path.name.removesuffix("_knn.yaml")
    watched = load_config(path, [], host).data
    plain = load_config(MONITOR.parent / f"{method}.yaml", [], host).data
    assert watched["objective"] == plain["objective"] and watched["backbone"] == plain["backbone"]
    assert watched["run"]["name"] == f"{method}_knn"
    monitor = watched["monitor"]
    assert (
        monitor["name"] == "knn"
        and monitor["test_dataset"]["seed"] != plain["data"]["dataset"]["seed"]
    )
    steps = plain["train"]["epochs"] * (
        plain["data"]["dataset"]["num_samples"] // plain["batch"]["global_size"]
    )
    assert 1 <= monitor["every_steps"] <= steps  # at least one measurement between start and end
