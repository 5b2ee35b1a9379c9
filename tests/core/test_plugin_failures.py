"""A plugin that fails to load points to the cause: the exception with its file and line."""

import sys
from importlib import metadata

import pytest

from vssl_core.plugins import VsslPluginWarning, load_plugins


@pytest.fixture
def broken_package(tmp_path, monkeypatch):
    """A plugin package whose objective module imports something that is not installed."""
    pkg = tmp_path / "vssl_broken_demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "plugin.py").write_text("from vssl_broken_demo import objective  # noqa\n")
    (pkg / "objective.py").write_text('"""An objective."""\n\nimport not_installed_anywhere\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    yield pkg
    for name in [m for m in sys.modules if m.startswith("vssl_broken_demo")]:
        del sys.modules[name]


def test_an_import_failure_names_the_plugins_file_and_line(broken_package):
    ep = metadata.EntryPoint("broken", "vssl_broken_demo.plugin", "vssl")
    with pytest.warns(VsslPluginWarning) as caught:
        host = load_plugins(extra=[("broken", ep)])
    text = str(caught[0].message)
    where = f"{broken_package / 'objective.py'}:3: import not_installed_anywhere"
    assert "ModuleNotFoundError: No module named 'not_installed_anywhere'" in text
    assert f"(at {where})" in text
    assert where in host.registry.failed_plugins["broken"]  # `vssl plugins`, "not found" errors


def test_a_syntax_error_names_its_position(broken_package):
    (broken_package / "objective.py").write_text("def f(:\n")
    ep = metadata.EntryPoint("broken", "vssl_broken_demo.plugin", "vssl")
    with pytest.warns(VsslPluginWarning, match=r"SyntaxError: .*objective\.py:1\)"):
        load_plugins(extra=[("broken", ep)])
