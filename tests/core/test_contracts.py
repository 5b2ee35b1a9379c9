"""The backbone, head and objective contracts are checked when a component is built (and the
backbone's by `vssl validate`): one message naming the member and the plugin."""

import pytest
import torch
import yaml
from torch import nn

from vssl_core import component, hookimpl
from vssl_core.build import build, build_objective
from vssl_core.cli.main import main
from vssl_core.contracts import ContractError, check_backbone_statically
from vssl_core.interfaces import Backbone, Objective, ObjectiveOutput, ViewSpec
from vssl_core.plugins import load_plugins


@component("backbone")
class no_features(Backbone):
    """Forgets num_features."""

    def __init__(self, img_size: int = 16) -> None:
        super().__init__()
        self.input_size = (4, img_size, img_size)
        self.fc = nn.Linear(3, 8)

    def forward(self, clip_BCTHW):
        return self.fc(clip_BCTHW.mean(dim=(2, 3, 4)))


@component("backbone", capabilities=("token_mask",))
class claims_masking(Backbone):
    """Declares token_mask but has nothing of it."""

    def __init__(self) -> None:
        super().__init__()
        self.num_features, self.input_size = 8, (4, 16, 16)
        self.fc = nn.Linear(3, 8)

    def forward(self, clip_BCTHW):
        return self.fc(clip_BCTHW.mean(dim=(2, 3, 4)))


@component("head")
def wrong_width(in_features: int, num_outputs: int) -> nn.Module:
    """Ignores num_outputs."""
    return nn.Linear(in_features, num_outputs + 1)


@component("objective")
class forgets_super(Objective):
    """Does not call super().__init__() first... it calls nn.Module's."""

    def __init__(self, backbone: nn.Module) -> None:
        nn.Module.__init__(self)
        self.backbone = backbone

    def views(self) -> ViewSpec:
        return ViewSpec(frames=4, crop_size=16)

    def forward(self, batch) -> ObjectiveOutput:
        return ObjectiveOutput(self.backbone(batch.clips[0]).sum())


class Plugin:
    @hookimpl
    def vssl_register_components(self, registry, plugin):
        for obj in (no_features, claims_masking, wrong_width, forgets_super):
            registry.add(obj, plugin)


vssl_register_components = Plugin().vssl_register_components  # `vssl -p core.test_contracts`


@pytest.fixture(scope="module")
def broken_host():
    return load_plugins(extra=[("broken_parts", Plugin())])


def test_a_backbone_without_num_features_fails_at_build_naming_it_and_its_plugin(broken_host):
    with pytest.raises(ContractError) as err:
        build(broken_host.registry, "backbone", {"name": "no_features"})
    text = str(err.value)
    assert "backbone 'no_features' (plugin 'broken_parts'" in text
    assert "it has no `num_features`" in text and "docs/reference/api.md" in text


def test_vssl_validate_reports_the_missing_attribute(broken_host, tiny_recipe, capsys):
    recipe = yaml.safe_load(tiny_recipe.read_text())
    recipe["backbone"] = {"name": "no_features"}
    recipe["objective"] = {"name": "rotation"}
    path = tiny_recipe.with_name("broken.yaml")
    path.write_text(yaml.safe_dump(recipe))
    assert main(["-p", "core.test_contracts", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "backbone: backbone 'no_features'" in err and "`num_features`" in err
    assert "Traceback" not in err


def test_a_declared_capability_brings_its_contract(broken_host):
    with pytest.raises(ContractError) as err:
        build(broken_host.registry, "backbone", {"name": "claims_masking"})
    text = str(err.value)
    assert "its mark declares capabilities ['token_mask']" in text
    assert (
        "[token_mask] `forward_features` is not implemented as needed" in text
        and "`grid_size`" in text
    )


def test_a_head_of_the_wrong_width_fails_at_build(broken_host):
    with pytest.raises(ContractError, match=r"returned \[2, 6\], not \[2, 5\]"):
        build(broken_host.registry, "head", {"name": "wrong_width"}, in_features=8, num_outputs=5)
    head = build(
        broken_host.registry, "head", {"name": "linear_head"}, in_features=8, num_outputs=5
    )
    assert head.training  # the check put it back in training mode


def test_an_objective_that_skips_objective_init_is_named(broken_host):
    recipe = {
        "backbone": {"name": "cnn3d_small", "img_size": 16, "num_frames": 4, "width": 4},
        "objective": {"name": "forgets_super"},
    }
    with pytest.raises(ContractError, match="(?s)forgets_super.*does not call super"):
        build_objective(broken_host.registry, recipe)


def test_every_registered_backbone_meets_its_contract_on_the_meta_device(host):
    names = [
        n for n in host.registry.names("backbone") if not host.registry.get("backbone", n).alias_of
    ]
    assert len(names) >= 7
    for name in names:
        with torch.device("meta"):
            obj = host.registry.get("backbone", name).factory()
        assert check_backbone_statically(host.registry, {"name": name}) is None, name
        assert obj.num_features >= 1
