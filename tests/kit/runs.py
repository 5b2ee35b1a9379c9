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
