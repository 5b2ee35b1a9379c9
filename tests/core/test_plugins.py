import subprocess
import sys
import types
from pathlib import Path

import pytest

from vssl_core import component, hookimpl
from vssl_core.plugins import VsslPluginWarning, load_plugins
from vssl_core.registry import DuplicateComponentError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "vssl_hello_plugin"


def test_builtins_load_through_the_entry_point_group(host):
    names = {p.name: p for p in host.plugins}
    for builtin in ("backbones", "datasets", "videomae"):
        assert names[builtin].status == "loaded"
        assert names[builtin].distribution == "vssl"
    assert host.registry.get("objective", "videomae").plugin == "videomae"
    assert host.registry.get("dataset", "moving_shapes").plugin == "datasets"


def _plugin_module(name: str, comp_name: str) -> types.ModuleType:
    mod = types.ModuleType(name)

    @component("dataset", name=comp_name)
    def make():
        pass

    make.__module__ = name
    mod.make = make

    @hookimpl
    def vssl_register_components(registry, plugin):
        registry.add_module(mod, plugin)

    mod.vssl_register_components = vssl_register_components
    return mod


def test_duplicate_names_across_plugins_is_an_error_naming_both():
    with pytest.raises(DuplicateComponentError) as err:
        load_plugins(
            extra=[("one", _plugin_module("one", "same")), ("two", _plugin_module("two", "same"))]
        )
    assert "'one'" in str(err.value) and "'two'" in str(err.value)


def test_a_plugin_failing_to_register_is_reported_and_the_rest_works():
    bad = types.ModuleType("bad")

    @hookimpl
    def vssl_register_components(registry, plugin):
        raise RuntimeError("boom")

    bad.vssl_register_components = vssl_register_components
    with pytest.warns(VsslPluginWarning, match=r"'bad'.*RuntimeError: boom"):
        host = load_plugins(extra=[("bad", bad)])
    info = {p.name: p for p in host.plugins}["bad"]
    assert info.status == "failed" and "boom" in info.reason
    assert "videomae" in host.registry.names("objective")


def test_unknown_hook_name_rejects_the_plugin():
    typo = types.ModuleType("typo")

    @hookimpl
    def vssl_step_ended(run, step, metrics):
        pass

    typo.vssl_step_ended = vssl_step_ended
    with pytest.warns(VsslPluginWarning, match="unknown hook 'vssl_step_ended'"):
        host = load_plugins(extra=[("typo", typo)])
    assert {p.name: p.status for p in host.plugins}["typo"] == "failed"


def test_blocked_plugin_is_not_loaded():
    host = load_plugins(blocked=["videomae"])
    assert {p.name: p.status for p in host.plugins}["videomae"] == "blocked"
    assert "videomae" not in host.registry.names("objective")


def test_autoload_disabled_loads_only_named(monkeypatch):
    monkeypatch.setenv("VSSL_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("VSSL_PLUGINS", "backbones")
    host = load_plugins()
    assert host.registry.names("objective") == []
    assert "vit_tiny" in host.registry.names("backbone")


@pytest.fixture(scope="module")
def installed_hello(tmp_path_factory) -> Path:
    """pip-installs the fixture plugin package into a private folder (vssl itself untouched)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(FIXTURE),
        ],
        check=True,
    )
    return target


def _vssl(args, site: Path, cwd: Path):
    import os

    env = dict(os.environ, PYTHONPATH=str(site), OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "vssl_core.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
    )


@pytest.mark.slow
def test_third_party_plugin_is_listed_and_trains_from_its_recipe(installed_hello, tmp_path):
    listed = _vssl(["list", "objective"], installed_hello, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "frame_order_regression" in listed.stdout and "[hello]" in listed.stdout
    plugins = _vssl(["plugins"], installed_hello, tmp_path)
    assert "hello" in plugins.stdout and "vssl-hello-plugin" in plugins.stdout
    # the recipe ships inside the plugin and is found through its recipe search path hook
    run = _vssl(["train", "hello.yaml", f"run.output_root={tmp_path}"], installed_hello, tmp_path)
    assert run.returncode == 0, run.stderr
    assert "completed at step 4" in run.stdout
    assert (tmp_path / "hello" / "checkpoints" / "last.pt").is_file()


@pytest.mark.slow
def test_a_plugin_that_fails_to_import_is_a_warning_and_listed_as_failed(installed_hello, tmp_path):
    env_site = tmp_path / "site"
    import shutil

    shutil.copytree(installed_hello, env_site)
    (env_site / "vssl_hello_plugin" / "plugin.py").write_text("import not_a_real_module\n")
    out = _vssl(["plugins"], env_site, tmp_path)
    assert out.returncode == 0
    assert "plugin 'hello'" in out.stderr and "ModuleNotFoundError" in out.stderr
    line = next(li for li in out.stdout.splitlines() if li.startswith("hello"))
    assert "failed" in line and "not_a_real_module" in line
    listed = _vssl(["list", "objective"], env_site, tmp_path)
    assert listed.returncode == 0 and "videomae" in listed.stdout
    # its recipe is not found: the error says which plugin failed, where and why
    run = _vssl(["train", "hello.yaml"], env_site, tmp_path)
    assert run.returncode == 2 and "recipe 'hello.yaml' not found" in run.stderr
    assert (
        "plugins that failed to load (one may provide it): hello (ModuleNotFoundError" in run.stderr
    )
    assert (
        f"{env_site / 'vssl_hello_plugin' / 'plugin.py'}:1: import not_a_real_module" in run.stderr
    )
