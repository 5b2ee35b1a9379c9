"""The Python API (vssl_core.api), and docs/python-api.md executed as written."""

import re
from pathlib import Path

import pytest
import torch

import vssl_core.api as vssl
from vssl_core.interfaces import Objective

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "python-api.md"


def python_blocks(text: str) -> list[str]:
    """The ```python blocks of a page, in order (```text blocks are examples not run)."""
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)


def test_the_python_api_page_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recipes").symlink_to(ROOT / "recipes")  # the page runs from a checkout's root
    blocks = python_blocks(PAGE.read_text())
    assert len(blocks) == 4
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "Rotation 64"
    assert printed[1] == "[(4, 3, 8, 32, 32)]"
    assert abs(float(printed[2].split()[1]) - 1.386) < 0.1
    assert printed[3].startswith("loaded 24 tensors from runs/notebook/checkpoints/last.pt (vssl)")
    assert printed[4:] == ["(4, 64)", "True"]
    assert isinstance(namespace["model"], Objective)


def test_load_backbone_needs_a_backbone_for_a_foreign_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="does not say which backbone it holds.*backbone="):
        vssl.load_backbone(path)


def test_overrides_go_to_load_recipe_or_with_a_path_not_both(tiny_recipe):
    config = vssl.load_recipe(tiny_recipe, ["train.max_steps=3"])
    assert config.data["train"]["max_steps"] == 3
    assert vssl.load_recipe(tiny_recipe, {"train.max_steps": 4}).data["train"]["max_steps"] == 4
    with pytest.raises(ValueError, match="not both"):
        vssl.build_model(config, {"train.max_steps": 5})
    model = vssl.build_model(tiny_recipe, {"backbone.depth": 2})
    assert len(model.backbone.blocks) == 2
    with pytest.raises(ValueError, match="lower start or size"):
        vssl.make_batch(config, model.views(), size=4, start=30)


def test_build_backbone_checks_its_arguments_as_a_recipe_does():
    from vssl_core.schema import RecipeValidationError

    assert vssl.build_backbone({"name": "cnn3d_small", "width": 4}).num_features >= 1
    with pytest.raises(RecipeValidationError, match="backbone.widht: unknown key; did you mean"):
        vssl.build_backbone({"name": "cnn3d_small", "widht": 4})
