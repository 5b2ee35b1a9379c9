"""Recipes found by name from any folder: lookup, "not found" suggestions, `vssl list recipes`."""

import types
from pathlib import Path

import pytest
import yaml

from vssl_core import hookimpl
from vssl_core.cli.main import main
from vssl_core.config import load_config
from vssl_core.plugins import load_plugins
from vssl_core.recipe import compose_recipe
from vssl_core.recipe_catalog import catalog, classify
from vssl_core.schema import RecipeError

RUNNABLE = {
    "objective": {"name": "rotation"},
    "backbone": {"name": "cnn3d_small"},
    "data": {"dataset": {"name": "moving_shapes"}},
}


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    """A recipe folder called `recipes`: a runnable recipe, an evaluation recipe, fragments."""
    root = tmp_path / "pkg" / "recipes"
    write(root / "base" / "cpu.yaml", {"train": {"device": "cpu"}})
    write(root / "rotation" / "pretrain.yaml", {"objective": {"name": "rotation"}})
    write(root / "rotation.yaml", {"defaults": ["base/cpu.yaml"], **RUNNABLE})
    write(root / "eval" / "knn.yaml", {**RUNNABLE, "eval": {"protocol": {"name": "knn"}}})
    write(root / "results" / "published.yaml", {"published": []})  # YAML, not a recipe
    return root


def test_a_name_may_start_with_the_recipe_folders_own_name(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside the folder: the paths of a checkout still work
    assert compose_recipe("rotation.yaml", search_paths=[folder]).path == folder / "rotation.yaml"
    found = compose_recipe("recipes/rotation.yaml", search_paths=[folder])
    assert found.path == folder / "rotation.yaml" and found.data["train"] == {"device": "cpu"}


def test_recipes_are_sorted_into_runnable_evaluation_and_fragments(folder):
    kinds = {e.name: e.kind for e in catalog([("mine", folder)])}
    assert kinds == {
        "base/cpu.yaml": "fragment",
        "eval/knn.yaml": "eval",
        "rotation.yaml": "train",
        "rotation/pretrain.yaml": "fragment",
    }
    assert classify(folder / "results" / "published.yaml", [folder]) is None


def test_an_earlier_folder_shadows_a_name_as_the_lookup_does(folder, tmp_path):
    other = write(tmp_path / "other" / "rotation.yaml", {"train": {"epochs": 1}}).parent
    entries = catalog([("first", other), ("second", folder)])
    assert [(e.name, e.source) for e in entries if e.name == "rotation.yaml"] == [
        ("rotation.yaml", "first")
    ]


def test_a_wrong_name_suggests_runnable_recipes_each_once(folder, tmp_path, monkeypatch):
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(RecipeError) as err:
        compose_recipe("recipe/rotation.yaml", search_paths=[folder, folder])
    text = str(err.value)
    assert "did you mean: rotation.yaml?" in text  # not the fragment rotation/pretrain.yaml
    assert text.count(str(folder)) == 1  # each folder named once
    monkeypatch.chdir(folder.parent)  # in a checkout: as the user types it there
    with pytest.raises(RecipeError, match=r"did you mean: recipes/rotation\.yaml\?"):
        compose_recipe("recipe/rotation.yaml", search_paths=[folder])
    with pytest.raises(RecipeError, match=r"or: rotation/pretrain\.yaml\? \(a fragment"):
        compose_recipe("rotation/pretrain.yml", search_paths=[folder])


def test_a_missing_recipe_names_the_plugins_that_failed_to_load(recipe_env):
    broken = types.ModuleType("broken_recipes")

    @hookimpl
    def vssl_register_components(registry, plugin):
        raise ImportError("cannot import name 'Objective'")

    broken.vssl_register_components = vssl_register_components
    with pytest.warns(UserWarning):
        host = load_plugins(extra=[("arrow", broken)])
    with pytest.raises(RecipeError) as err:
        load_config("arrow/synthetic.yaml", [], host)
    assert "plugins that failed to load (one may provide it): arrow (registering" in str(err.value)
    assert "cannot import name 'Objective'" in str(err.value)


@pytest.fixture
def recipe_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_list_recipes_shows_the_shipped_recipes_by_kind(recipe_env, capsys):
    assert main(["list", "recipes"]) == 0
    out = capsys.readouterr().out
    train, rest = out.split("evaluate (vssl eval", 1)
    evaluate, fragments = rest.split("fragments (", 1)
    assert "  sigma.yaml " in train and "zoo/videomae_vitb_k400.yaml" in train
    assert "needs data.dataset.root" in train  # the zoo reads a dataset from disk
    assert "eval/synthetic_knn.yaml" in evaluate and "severe/synthetic/ucf101_1k.yaml" in evaluate
    assert "base/synthetic.yaml" in fragments and "sigma/pretrain.yaml" in fragments
    assert "results/" not in out
