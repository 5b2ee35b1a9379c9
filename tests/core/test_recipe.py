from pathlib import Path

import pytest
import yaml

from vssl_core.recipe import CLI, compose_recipe, dump_with_provenance
from vssl_core.schema import RecipeError


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_defaults_merge_mappings_replace_lists_and_later_wins(tmp_path):
    write(tmp_path / "base" / "a.yaml", {"x": {"p": 1, "q": [1, 2, 3]}, "y": "a"})
    write(tmp_path / "base" / "b.yaml", {"x": {"q": [9]}, "y": "b"})
    top = write(tmp_path / "top.yaml", {"defaults": ["base/a.yaml", "base/b.yaml"], "x": {"r": 3}})
    r = compose_recipe(top)
    assert r.data == {"x": {"p": 1, "q": [9], "r": 3}, "y": "b"}
    assert r.provenance["x.p"].endswith("a.yaml")
    assert r.provenance["x.q"].endswith("b.yaml") and r.provenance["y"].endswith("b.yaml")
    assert r.provenance["x.r"].endswith("top.yaml")


def test_defaults_are_relative_to_the_including_file(tmp_path):
    write(tmp_path / "lib" / "inner.yaml", {"v": 1})
    write(tmp_path / "lib" / "outer.yaml", {"defaults": ["inner.yaml"], "w": 2})
    top = write(tmp_path / "run" / "top.yaml", {"defaults": ["../lib/outer.yaml"]})
    assert compose_recipe(top).data == {"v": 1, "w": 2}


def test_search_paths_find_plugin_fragments(tmp_path):
    plugin_dir = tmp_path / "plugin_recipes"
    write(plugin_dir / "method" / "frag.yaml", {"objective": {"name": "m", "k": 1}})
    top = write(tmp_path / "top.yaml", {"defaults": ["method/frag.yaml"]})
    assert compose_recipe(top, search_paths=[plugin_dir]).data["objective"] == {"name": "m", "k": 1}


def test_a_component_whose_name_changes_is_replaced_not_merged(tmp_path):
    write(tmp_path / "a.yaml", {"backbone": {"name": "vit_tiny", "depth": 2}})
    top = write(tmp_path / "top.yaml", {"defaults": ["a.yaml"], "backbone": {"name": "r3d"}})
    assert compose_recipe(top).data["backbone"] == {"name": "r3d"}
    same = write(
        tmp_path / "same.yaml",
        {"defaults": ["a.yaml"], "backbone": {"name": "vit_tiny", "img_size": 8}},
    )
    assert compose_recipe(same).data["backbone"] == {"name": "vit_tiny", "depth": 2, "img_size": 8}


def test_cli_overrides_apply_last_parse_yaml_and_record_provenance(tmp_path):
    top = write(tmp_path / "top.yaml", {"a": {"b": 1, "c": [1]}, "n": "x"})
    r = compose_recipe(top, ["a.b=2.5", "a.c=[3, 4]", "a.new.deep=true", "n=null"])
    assert r.data == {"a": {"b": 2.5, "c": [3, 4], "new": {"deep": True}}, "n": None}
    assert r.provenance["a.b"] == CLI and r.provenance["a.new.deep"] == CLI
    with pytest.raises(RecipeError, match="expected key.path=value"):
        compose_recipe(top, ["a.b"])
    with pytest.raises(RecipeError, match="n is a value, not a mapping"):
        compose_recipe(top, ["n.x=1"])


def test_interpolation_resolves_after_merging(tmp_path):
    write(tmp_path / "a.yaml", {"size": 64, "backbone": {"img_size": "${size}"}})
    top = write(tmp_path / "top.yaml", {"defaults": ["a.yaml"], "size": 32})
    assert compose_recipe(top, ["size=16"]).data["backbone"]["img_size"] == 16
    bad = write(tmp_path / "bad.yaml", {"x": "${nope}"})
    with pytest.raises(RecipeError, match="interpolation"):
        compose_recipe(bad)


def test_duplicate_keys_cycles_and_missing_files_are_errors(tmp_path):
    dup = write(tmp_path / "dup.yaml", "a: 1\nb: 2\na: 3\n")
    with pytest.raises(RecipeError, match="duplicate key 'a'.*first at line 1"):
        compose_recipe(dup)
    write(tmp_path / "c1.yaml", {"defaults": ["c2.yaml"]})
    write(tmp_path / "c2.yaml", {"defaults": ["c1.yaml"]})
    with pytest.raises(RecipeError, match="cycle"):
        compose_recipe(tmp_path / "c1.yaml")
    miss = write(tmp_path / "miss.yaml", {"defaults": ["nowhere.yaml"]})
    with pytest.raises(RecipeError, match="'nowhere.yaml' not found"):
        compose_recipe(miss)


def test_provenance_dump_marks_every_leaf(tmp_path):
    top = write(tmp_path / "top.yaml", {"a": {"b": 1}, "l": [1, 2]})
    r = compose_recipe(top, ["a.b=5"])
    text = dump_with_provenance(r.data, r.provenance)
    assert "b: 5  # command line" in text
    assert "l: [1, 2]  # " in text and "top.yaml" in text


def test_exponent_floats_are_numbers_in_files_and_overrides(tmp_path):
    top = write(tmp_path / "top.yaml", "lr: 1e-3\nwd: 5.0e-2\nname: 1e3x\n")
    r = compose_recipe(top, ["min_lr=1e-5", "n=-2E+3"])
    assert r.data == {"lr": 1e-3, "wd": 0.05, "name": "1e3x", "min_lr": 1e-5, "n": -2000.0}
