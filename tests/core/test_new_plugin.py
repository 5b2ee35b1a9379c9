"""`vssl new-plugin`: the package it writes installs with pip, is listed, trains from its recipe,
and its own tests pass; bad names and existing folders are clear errors."""

import ast
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import tomllib
from kit.pip_target import env_with, pip_install_target, run_vssl

from vssl_core.cli.main import main
from vssl_core.cli.new_plugin_cmd import check_name, plugin_files

NAME = "arrow_gen"  # a name no built-in uses


def test_writes_a_complete_package(tmp_path, capsys):
    assert main(["new-plugin", NAME, "--dir", str(tmp_path)]) == 0
    root = tmp_path / f"vssl_{NAME}"
    written = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert written == [
        "README.md",
        "pyproject.toml",
        f"tests/test_{NAME}.py",
        f"vssl_{NAME}/__init__.py",
        f"vssl_{NAME}/objective.py",
        f"vssl_{NAME}/plugin.py",
        f"vssl_{NAME}/recipes/{NAME}/synthetic.yaml",
    ]
    out = capsys.readouterr().out
    assert f"pip install -e {root}" in out and f"vssl train {NAME}/synthetic.yaml" in out
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "vssl-arrow-gen"
    assert meta["project"]["entry-points"]["vssl"] == {NAME: f"vssl_{NAME}.plugin"}
    for path in root.rglob("*"):
        if path.is_file():
            assert "{{" not in path.read_text(), f"placeholder left in {path}"
        if path.suffix == ".py":
            ast.parse(path.read_text(), filename=str(path))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "Arrow-Time",
            "lowercase letters, digits and underscores, starting with a letter, e.g. 'arrow_time'",
        ),
        ("9lives", "starting with a letter"),
        ("vssl_arrow", "without the vssl_ prefix ('arrow')"),
        ("rotation", "package 'vssl_rotation' is already importable"),
    ],
)
def test_a_bad_name_is_a_clear_error(name, message, tmp_path, capsys):
    assert main(["new-plugin", name, "--dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_name_in_use_by_a_plugin_or_an_objective_is_refused():
    from vssl_core import component
    from vssl_core.plugins import PluginInfo
    from vssl_core.registry import Registry

    registry = Registry()
    registry.add(component("objective", name="taken")(lambda backbone: None), plugin="other")
    host = SimpleNamespace(registry=registry, plugins=[PluginInfo("mine", "d", "1", "loaded")])
    with pytest.raises(
        ValueError, match="objective 'taken' is already registered by plugin 'other'"
    ):
        check_name("taken", host)
    with pytest.raises(ValueError, match="a plugin of that name exists"):
        check_name("mine", host)
    check_name("free", host)


def test_an_existing_folder_needs_force_and_force_keeps_other_files(tmp_path, capsys):
    root = tmp_path / f"vssl_{NAME}"
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_mine.py").write_text("# mine\n")
    (root / "pyproject.toml").write_text("stale")
    assert main(["new-plugin", NAME, "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"folder {root} already exists" in err and "pass --force" in err
    assert (root / "pyproject.toml").read_text() == "stale"
    assert main(["new-plugin", NAME, "--dir", str(tmp_path), "--force"]) == 0
    assert (root / "pyproject.toml").read_text() == plugin_files(NAME)[Path("pyproject.toml")]
    assert (root / "tests" / "test_mine.py").read_text() == "# mine\n"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """A generated plugin, pip-installed into a private folder: (its source folder, the site)."""
    work = tmp_path_factory.mktemp("new_plugin")
    assert main(["new-plugin", NAME, "--dir", str(work)]) == 0
    source = work / f"vssl_{NAME}"
    return source, pip_install_target(source, work)


@pytest.mark.slow
def test_the_installed_plugin_is_listed_and_trains_from_its_recipe(installed, tmp_path):
    _, site = installed
    listed = run_vssl(["list", "objective"], site, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert any(line.split()[:2] == [NAME, f"[{NAME}]"] for line in listed.stdout.splitlines()), (
        listed.stdout
    )
    args = ["train", f"{NAME}/synthetic.yaml", "train.max_steps=2", "log.every_steps=1"]
    run = run_vssl([*args, f"run.output_root={tmp_path}", "log.progress_bar=false"], site, tmp_path)
    assert run.returncode == 0, run.stderr
    assert "completed at step 2" in run.stdout
    assert (tmp_path / NAME / "checkpoints" / "last.pt").is_file()


@pytest.mark.slow
def test_the_generated_tests_pass(installed, tmp_path):
    source, site = installed
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(source / "tests")],
        capture_output=True,
        text=True,
        env=env_with(site),
        cwd=tmp_path,  # not the source folder: the installed copy is what is tested
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
