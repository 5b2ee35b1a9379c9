from pathlib import Path

import pytest

from vssl_core.config import load_config
from vssl_core.schema import RecipeValidationError, validate_recipe

ROOT = Path(__file__).resolve().parents[2]


def base() -> dict:
    return {
        "data": {"dataset": {"name": "moving_shapes"}},
        "backbone": {"name": "vit_tiny"},
        "objective": {"name": "videomae"},
    }


def problems(recipe, host) -> list[str]:
    with pytest.raises(RecipeValidationError) as err:
        validate_recipe(recipe, host.registry)
    return err.value.problems


def test_minimal_recipe_gets_every_default(host):
    out = validate_recipe(base(), host.registry)
    assert out["objective"]["mask_ratio"] == 0.9
    assert out["train"]["precision"] == "auto" and out["batch"]["per_rank"] is None
    assert out["data"]["dataset"]["num_samples"] == 1024
    assert list(out)[:3] == ["run", "data", "backbone"]  # schema order, not merge order


def test_unknown_component_key_names_full_path_and_closest(host):
    r = base()
    r["objective"]["mask_ration"] = 0.5
    (p,) = problems(r, host)
    assert p.startswith("objective.mask_ration: unknown key; did you mean 'mask_ratio'?")
    assert "objective 'videomae' accepts:" in p


def test_unknown_section_key_names_full_path_and_closest(host):
    r = base()
    r["train"] = {"epochz": 3}
    r["optimizer"] = {}
    ps = problems(r, host)
    assert any(p.startswith("train.epochz: unknown key; did you mean 'epochs'?") for p in ps)
    assert any(p.startswith("optimizer: unknown key; did you mean 'optim'?") for p in ps)


def test_wrong_types_name_the_expected_type(host):
    r = base()
    r["objective"]["mask_ratio"] = "high"
    r["train"] = {"epochs": 1.5, "precision": "fp8"}
    r["optim"] = {"betas": [0.9]}
    ps = problems(r, host)
    assert "objective.mask_ratio: expected float, got str 'high'" in ps
    assert "train.epochs: expected int, got float 1.5" in ps
    assert "train.precision: expected one of 'auto', 'bf16', 'fp16', 'fp32', got str 'fp8'" in ps
    assert any(p.startswith("optim.betas: expected a list of 2 (float, float) or null") for p in ps)


def test_a_value_left_missing_names_the_key_and_how_to_set_it(host):
    r = base()
    r["data"]["dataset"]["num_samples"] = "???"  # omegaconf's "fill me in"
    r["train"] = {"epochs": "???"}
    ps = problems(r, host)
    assert any(
        p.startswith("data.dataset.num_samples: required, but the recipe leaves it ???")
        and "data.dataset.num_samples=VALUE; expected int" in p
        for p in ps
    ), ps
    assert any(p.startswith("train.epochs: required, but the recipe leaves it ???") for p in ps)


def test_a_nested_component_is_checked_like_a_top_level_one(host):
    r = {
        **base(),
        "backbone": {"name": "cnn3d_small"},
        "objective": {"name": "supervised", "head": {"name": "linear_head", "dropuot": 0.1}},
    }
    (p,) = problems(r, host)
    assert p.startswith("objective.head.dropuot: unknown key; did you mean 'dropout'?")
    r["objective"]["head"] = {"name": "linear_haed"}
    (p,) = problems(r, host)
    assert p.startswith("objective.head.name: unknown head 'linear_haed'")


def test_unknown_component_name_lists_close_matches(host):
    r = base()
    r["backbone"]["name"] = "vit_tinny"
    (p,) = problems(r, host)
    assert "backbone.name: unknown backbone 'vit_tinny'" in p and "did you mean: vit_tiny" in p
    assert "available backbones:" in p


def test_injected_missing_and_optimizer_specific_keys(host):
    r = base()
    r["objective"]["backbone"] = "x"
    del r["data"]["dataset"]
    r["optim"] = {"name": "adamw", "momentum": 0.9}
    ps = problems(r, host)
    assert "objective.backbone: set by vssl itself; remove it from the recipe" in ps
    assert "data.dataset: missing; set a dataset component" in ps
    assert any(p.startswith("optim.momentum: only used by optimizer 'sgd'") for p in ps)


def test_every_problem_is_reported_at_once(host):
    r = base()
    r["objective"]["a"] = 1
    r["backbone"]["b"] = 2
    r["log"] = {"c": 3}
    assert len(problems(r, host)) == 3


def test_every_shipped_recipe_validates(host):
    """Runnable recipes validate; fragments (recipes/base, plugin recipe folders) compose; every
    built-in objective has a runnable recipe named after it."""
    from vssl_core.recipe import compose_recipe

    runnable = sorted((ROOT / "recipes").glob("*.yaml"))
    runnable += sorted((ROOT / "recipes" / "monitor").glob("*.yaml"))
    fragments = sorted((ROOT / "recipes" / "base").rglob("*.yaml"))
    fragments += sorted(  # the method plugins' own (vssl_recipes/recipes links to recipes/)
        p for p in (ROOT / "plugins").rglob("recipes/**/*.yaml") if "vssl_recipes" not in p.parts
    )
    builtin = {p.name for p in host.plugins if p.distribution == "vssl"}
    objectives = [
        n
        for n in host.registry.names("objective")
        if host.registry.get("objective", n).plugin in builtin
    ]
    assert {f"{n}.yaml" for n in objectives} <= {p.name for p in runnable}
    assert len(fragments) >= len(objectives) + 2
    for path in runnable:
        load_config(path, [], host)
    for path in fragments:
        assert compose_recipe(path, search_paths=host.recipe_search_paths()).data


def test_objective_backbone_capability_mismatch_names_backbones_that_fit(host):
    from vssl_core import component
    from vssl_core.registry import Registry

    reg = Registry()
    for name, caps in (("cnn", ()), ("vit_a", ("token_mask",)), ("vit_b", ("token_mask",))):
        reg.add(component("backbone", name=name, capabilities=caps)(lambda: None), plugin="p")
    reg.add(
        component("objective", name="mae", requires=("token_mask",))(lambda backbone: None),
        plugin="p",
    )
    reg.add(component("dataset", name="d")(lambda: None), plugin="p")
    recipe = {
        "data": {"dataset": {"name": "d"}},
        "backbone": {"name": "cnn"},
        "objective": {"name": "mae"},
    }
    with pytest.raises(RecipeValidationError) as err:
        validate_recipe(recipe, reg)
    (p,) = err.value.problems
    assert "objective 'mae' needs a backbone with token_mask, which 'cnn' lacks" in p
    assert "backbones that have it: vit_a, vit_b" in p
    recipe["backbone"]["name"] = "vit_b"
    with pytest.raises(RecipeValidationError) as err:  # the pairing fits; the factory does not
        validate_recipe(recipe, reg)
    (p,) = err.value.problems
    assert "backbone 'vit_b' (plugin 'p', NoneType)" in p and "not a torch.nn.Module" in p


def test_builtin_vits_declare_token_masking(host):
    assert {"vit_tiny", "vit_small", "vit_base", "vit_large"} <= set(
        host.registry.providing("backbone", ["token_mask"])
    )
