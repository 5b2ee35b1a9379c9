"""A wheel installed outside the checkout runs the documented commands from an empty folder:
the recipes ship with the package and are found by name (sigma.yaml, base/*.yaml from a recipe
of one's own, eval/synthetic_knn.yaml, the SEVERE miniature, the zoo).

The wheel is built from a copy of the checkout's files and installed, without dependencies, into
a fresh virtual environment that borrows them (torch...) from the test's own environment through
a .pth line; the checkout's own vssl (an editable install) is not on that path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # builds and installs a wheel: about a minute in all


def _tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [f for f in out.stdout.split("\0") if f and not f.startswith("tests/")]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of a copy of the checkout (git's files, links kept as links)."""
    if not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout (its file list)")
    src = tmp_path_factory.mktemp("src")
    for name in _tracked_files():
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_symlink():
            target.symlink_to(os.readlink(ROOT / name))
        elif (ROOT / name).is_file():
            shutil.copy2(ROOT / name, target)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(dist), str(src)],
        check=True,
    )  # fmt: skip
    (found,) = dist.glob("vssl-*.whl")
    return found


def test_the_wheel_carries_every_recipe(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    recipes = [f for f in _tracked_files() if f.startswith("recipes/") and f.endswith(".yaml")]
    assert len(recipes) > 50
    missing = [f for f in recipes if f"vssl_recipes/{f}" not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert "vssl_recipes/plugin.py" in names


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> dict[str, str]:
    """A fresh venv holding the wheel; the environment to run its `vssl` in."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", str(wheel)],
        check=True,
    )  # fmt: skip
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    # the dependencies, from this environment (after the venv's own site-packages)
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", OMP_NUM_THREADS="1")
    where = subprocess.run(
        [str(python), "-c", "import vssl_core, vssl_recipes.plugin as p; "
         "print(vssl_core.__file__); print(p.RECIPES)"],
        capture_output=True, text=True, env=env, check=True, cwd=venv,
    ).stdout.split()  # fmt: skip
    assert all(w.startswith(str(venv)) for w in where), where  # not the checkout's
    return env


def _vssl(env, cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["vssl", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"vssl {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def test_the_documented_commands_run_from_an_empty_folder(installed, tmp_path):
    empty = tmp_path / "anywhere"
    empty.mkdir()
    short = ["train.max_steps=2", "log.progress_bar=false", "log.tensorboard=false"]
    assert "sigma.yaml" in _vssl(installed, empty, "list", "recipes")
    assert "completed at step 2" in _vssl(installed, empty, "train", "sigma.yaml", *short)
    assert ": ok" in _vssl(installed, empty, "validate", "recipes/sigma.yaml")  # a checkout's
    (empty / "mine.yaml").write_text(
        "defaults: [base/synthetic.yaml, base/cpu.yaml, rotation/pretrain.yaml]\n"
        "run: {name: mine}\n"
        "backbone: {name: cnn3d_small, img_size: 64, num_frames: 8, width: 16}\n"
        "batch: {global_size: 16}\n"
    )
    assert "completed at step 2" in _vssl(installed, empty, "train", "mine.yaml", *short)
    ckpt = "runs/mine/checkpoints/last.pt"
    out = _vssl(installed, empty, "eval", "eval/synthetic_knn.yaml", f"checkpoint={ckpt}",
                "data.dataset.num_samples=32", "eval.test_dataset.num_samples=8",
                "eval.test_clips=1")  # fmt: skip
    assert "top1" in out
    out = _vssl(installed, empty, "severe", "--synthetic", "--settings", "ucf101_1k", ckpt,
                "train.max_steps=1", "eval.test_dataset.num_samples=8", "eval.test_clips=1")  # fmt: skip
    assert "ucf101_1k  top1" in out and (empty / "runs/severe/mine-synthetic/report.md").is_file()
    zoo = _vssl(installed, empty, "config", "--gpus", "64", "zoo/sigma_vitb_k400.yaml",
                "batch.per_rank=10")  # fmt: skip
    assert "# on 64 GPU(s): global batch 640 = 10 per rank x 64 rank(s)" in zoo
