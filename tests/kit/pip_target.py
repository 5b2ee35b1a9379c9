"""Install a plugin package the way a user does (pip), but into a private folder, and run the
`vssl` command line with that folder on the path: vssl itself and the environment stay untouched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def pip_install_target(source: Path, workdir: Path) -> Path:
    """``pip install --no-deps --no-build-isolation --target workdir/site`` of a copy of
    ``source`` (pip builds in the source tree; the copy keeps the repository clean)."""
    copy = workdir / "src" / source.name
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    site = workdir / "site"
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    done = subprocess.run([*cmd, "--target", str(site), str(copy)], capture_output=True, text=True)
    assert done.returncode == 0, f"pip install {source.name} failed:\n{done.stdout}{done.stderr}"
    return site


def env_with(site: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(site), OMP_NUM_THREADS="1")


def run_vssl(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess:
    """``vssl ARGS`` in a fresh process that sees the packages installed in ``site``."""
    return subprocess.run(
        [sys.executable, "-m", "vssl_core.cli", *args],
        capture_output=True,
        text=True,
        env=env_with(site),
        cwd=cwd,
    )
