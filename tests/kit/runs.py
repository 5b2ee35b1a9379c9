"""Helpers for tests that read runs or start vssl in a subprocess (import them from here, not
from ``conftest``: with several conftest.py files, ``import conftest`` is ambiguous)."""

from __future__ import annotations

import json
import os
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def cli_env() -> dict[str, str]:
    """The environment for a vssl subprocess: tests/ importable (fault plugins), one thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def train_run(recipe: Path, *overrides: str, extra=()):
    """``vssl train RECIPE OVERRIDES`` in this process, with ``extra`` plugins loaded."""
    from vssl_core.config import load_config
    from vssl_core.engine.trainer import train
    from vssl_core.plugins import load_plugins

    host = load_plugins(extra=list(extra))
    return train(load_config(recipe, list(overrides), host), host)


def last_weights(run_dir: Path) -> dict:
    from vssl_core.engine.checkpoint import load_checkpoint

    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


def same_weights(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def run_group(cmd: list[str], timeout: float, **kw):
    """``subprocess.run`` in a process group of its own, killing what is left of the group when
    it ends (a torchrun rank that outlives torchrun must not outlive the test)."""
    import signal
    import subprocess

    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kw
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
