"""The suite collects without the optional extras: no test file imports an optional library at
module level (that would stop `make test` at collection where the extra is absent); tests
import them through kit.optional.import_optional, which skips, or fails under VSSL_REQUIRE."""

import ast
from pathlib import Path

import pytest
from kit.optional import EXTRA_OF, import_optional, installed

TESTS = Path(__file__).resolve().parents[1]
OPTIONAL = {*EXTRA_OF, "transformers", "torchvision"}  # the last two: dev-only / never installed


def module_level_imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) of the imports a module runs when it is imported: its top-level
    statements, including those under if/try/with, but not those inside functions or classes."""
    found = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.extend((node.lineno, a.name.split(".")[0]) for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.append((node.lineno, node.module.split(".")[0]))
            elif isinstance(node, ast.If | ast.Try | ast.With):
                for block in ("body", "orelse", "finalbody"):
                    visit(getattr(node, block, []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(ast.parse(path.read_text()).body)
    return found


def test_no_test_file_imports_an_optional_library_at_module_level():
    files = sorted(TESTS.rglob("*.py"))
    assert len(files) > 50
    offenders = [
        f"{path.relative_to(TESTS)}:{line} imports {module}"
        for path in files
        for line, module in module_level_imports(path)
        if module in OPTIONAL
    ]
    assert not offenders, "use kit.optional.import_optional instead:\n" + "\n".join(offenders)


def test_the_scan_sees_a_guarded_import(tmp_path):
    path = tmp_path / "t.py"
    path.write_text(
        "try:\n    import cv2\nexcept ImportError:\n    pass\ndef f():\n    import ffcv\n"
    )
    assert module_level_imports(path) == [(2, "cv2")]


def test_a_missing_extra_skips_unless_required(monkeypatch):
    monkeypatch.setitem(EXTRA_OF, "vssl_no_such_module_ffcv", "ffcv")
    monkeypatch.setenv("VSSL_REQUIRE", "decord")
    with pytest.raises(pytest.skip.Exception, match=r"vssl\[ffcv\]"):
        import_optional("vssl_no_such_module_ffcv")
    monkeypatch.setenv("VSSL_REQUIRE", "ffcv,decord")  # the extra is named: must import
    with pytest.raises(ModuleNotFoundError):
        import_optional("vssl_no_such_module_ffcv")


def test_a_folder_named_like_an_extra_is_not_the_extra(tmp_path, monkeypatch):
    """tests/plugins/ffcv/ is importable as a namespace package `ffcv` once pytest has put
    tests/plugins on sys.path: that must not count as ffcv installed."""
    (tmp_path / "vssl_fake_extra").mkdir()  # a folder without __init__.py
    monkeypatch.syspath_prepend(str(tmp_path))
    assert not installed("vssl_fake_extra")
    assert installed("json") and not installed("vssl_no_such_module")
