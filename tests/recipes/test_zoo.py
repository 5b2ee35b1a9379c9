"""recipes/zoo: every paper-setting recipe validates and says where it comes from and how to run
it; every published-results file parses, names its sources and points at a zoo recipe."""

import re
from pathlib import Path

import pytest
import yaml

from vssl_core.cli.main import main
from vssl_core.config import load_config
from vssl_core.recipe import compose_recipe

ZOO = Path(__file__).resolve().parents[2] / "recipes" / "zoo"
RESULTS = ZOO / "results"
RECIPES = sorted(ZOO.glob("*.yaml"))
SETTINGS = yaml.safe_load((RESULTS / "settings.yaml").read_text())
METHOD_FILES = sorted(p for p in RESULTS.glob("*.yaml") if p.name != "settings.yaml")
METHODS = ("videomae", "sigma", "moco", "tubelet", "rotation", "clip_order")


def test_the_zoo_has_a_recipe_and_a_results_file_for_every_method():
    assert len(RECIPES) == 10, [p.name for p in RECIPES]
    for method in METHODS:
        assert any(p.name.startswith(f"{method}_") for p in RECIPES), method
    assert {p.stem for p in METHOD_FILES} == {*METHODS, "baselines"}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_zoo_recipe_validates_and_documents_itself(path, host):
    dataset = compose_recipe(path).data["data"]["dataset"]["name"]
    if dataset not in host.registry.names("dataset"):
        pytest.skip(f"dataset {dataset!r} is not registered (no plugin provides it yet)")
    config = load_config(path, [], host)
    assert path.stem.startswith(config.data["objective"]["name"] + "_")
    header = path.read_text().split("\nrun:")[0]
    assert all(line.startswith("#") for line in header.splitlines()), "header: comments only"
    prose = " ".join(line.lstrip("#").strip() for line in header.splitlines())
    assert re.search(r"spec [\w-]+\.md §\d", prose), "the header cites the spec section"
    assert "#   torchrun " in header and " -m vssl_core.cli train " in header, "the command"
    assert f"recipes/zoo/{path.name}" in header
    assert f"results/{config.data['objective']['name']}.yaml" in header


def _groups():
    for path in METHOD_FILES:
        data = yaml.safe_load(path.read_text())
        assert data["method"] == path.stem
        assert data["published"], f"{path.name}: no published results"
        for i, group in enumerate(data["published"]):
            yield f"{path.stem}[{i}]", group


@pytest.mark.parametrize(
    ("where", "group"), list(_groups()), ids=lambda x: x if isinstance(x, str) else ""
)
def test_every_published_result_has_a_source_and_a_known_setting(where, group, host):
    assert set(group) <= {"name", "recipe", "overrides", "protocol", "source", "note", "results"}
    assert group["name"] and "spec " in group["source"], f"{where}: source must cite its spec"
    assert group["protocol"] in SETTINGS["protocols"], where
    if group["recipe"] is None:
        assert group.get("note") or group["name"].startswith(("None", "Supervised")), where
    else:
        recipe = ZOO / group["recipe"]
        assert recipe.is_file(), f"{where}: no zoo recipe {group['recipe']}"
        dataset = compose_recipe(recipe).data["data"]["dataset"]["name"]
        if dataset in host.registry.names("dataset"):
            load_config(recipe, group.get("overrides", []), host)  # the overrides still apply
    assert group["results"], where
    for setting, value in group["results"].items():
        meta = SETTINGS["settings"][setting]  # a KeyError names an undefined setting
        assert isinstance(value, int | float), f"{where}.{setting}: {value!r}"
        low, high = (0.0, 1.0) if meta["metric"] == "mean_error" else (1.0, 100.0)
        assert low < value <= high, f"{where}.{setting}: {value} out of range for {meta['metric']}"


def test_every_zoo_recipe_has_published_results():
    referenced = {group["recipe"] for _, group in _groups()}
    assert {p.name for p in RECIPES} <= referenced


@pytest.mark.parametrize(
    ("gpus", "layout"),
    [
        (64, "global batch 2048 = 32 per rank x 64 rank(s) x 1 accumulation step(s)"),
        (8, "global batch 2048 = 32 per rank x 8 rank(s) x 8 accumulation step(s)"),
    ],
)
def test_config_shows_the_layout_and_lr_of_a_zoo_recipe_on_n_gpus(gpus, layout, capsys):
    assert main(["config", str(ZOO / "videomae_vitb_k400.yaml"), "--gpus", str(gpus)]) == 0
    head = capsys.readouterr().out.splitlines()[:3]
    assert head[1] == f"# on {gpus} GPU(s): {layout}"
    # the paper's actual peak lr (spec videomae-sigma.md §1.9): 1.5e-4 x 2048 / 256 = 1.2e-3
    assert head[2] == "# lr 0.0012 = base lr 0.00015 x 2048/256; min lr 8e-05"
