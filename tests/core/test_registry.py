import types

import pytest

from vssl_core.registry import (
    DuplicateComponentError,
    Registry,
    RegistryError,
    UnknownComponentError,
    component,
)


def _module(name: str, **objs) -> types.ModuleType:
    mod = types.ModuleType(name)
    for key, obj in objs.items():
        obj.__module__ = name
        setattr(mod, key, obj)
    return mod


def test_marked_components_register_with_their_plugin():
    @component("backbone")
    def tiny_net(width: int = 4):
        """A tiny net."""

    @component("backbone", name="big_net", aliases=["bignet"])
    def factory():
        pass

    reg = Registry()
    assert reg.add_module(_module("m1", tiny_net=tiny_net, factory=factory), plugin="p1") == 2
    assert reg.get("backbone", "tiny_net").plugin == "p1"
    assert reg.get("backbone", "tiny_net").doc == "A tiny net."
    assert reg.get("backbone", "bignet").alias_of == "big_net"
    assert reg.names("backbone") == ["big_net", "bignet", "tiny_net"]


def test_module_scan_skips_imported_components():
    @component("dataset")
    def foreign():
        pass

    mod = _module("m2")
    mod.foreign = foreign  # defined elsewhere, only imported here
    assert Registry().add_module(mod, plugin="p") == 0


def test_same_name_from_two_plugins_names_both():
    reg = Registry()
    reg.add(lambda: None, plugin="alpha", kind="objective", name="mine")
    with pytest.raises(DuplicateComponentError) as err:
        reg.add(lambda: None, plugin="beta", kind="objective", name="mine")
    assert "'alpha'" in str(err.value) and "'beta'" in str(err.value)
    assert "--no-plugin" in str(err.value)


def test_unknown_name_lists_close_matches_available_and_plugins():
    reg = Registry(loaded_plugins=["backbones"], failed_plugins={"broken": "ImportError: x"})
    for name in ("vit_tiny", "vit_small", "r3d_18"):
        reg.add(lambda: None, plugin="backbones", kind="backbone", name=name)
    with pytest.raises(UnknownComponentError) as err:
        reg.get("backbone", "vit_smal")
    text = str(err.value)
    assert "unknown backbone 'vit_smal'" in text
    assert "did you mean: vit_small" in text
    assert "available backbones: r3d_18, vit_small, vit_tiny" in text
    assert "loaded plugins: backbones" in text and "broken (ImportError: x)" in text


def test_bad_kind_is_rejected():
    with pytest.raises(ValueError, match="valid kinds"):
        component("model")
    with pytest.raises(RegistryError, match="valid kinds"):
        Registry().get("model", "x")
