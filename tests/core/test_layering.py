"""The core never imports a plugin (plugins load through entry points, built-ins included)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_vssl_core_imports_no_plugin_package():
    plugins = {p.name for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").exists()}
    assert {"vssl_videomae", "vssl_backbones", "vssl_datasets"} <= plugins
    files = list((ROOT / "vssl_core").rglob("*.py"))
    assert len(files) > 10
    for path in files:
        assert not (_imports(path) & plugins), f"{path} imports a plugin"


def test_plugins_do_not_import_each_other():
    pkgs = [p for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").exists()]
    for pkg in pkgs:
        others = {p.name for p in pkgs} - {pkg.name}
        for path in pkg.rglob("*.py"):
            assert not (_imports(path) & others), f"{path} imports another plugin"
