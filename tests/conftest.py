"""Shared fixtures: a plugin host, tiny recipes, and an in-process CLI runner."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # tests/kit is importable as `kit`

from kit.runs import cli_env, read_metrics  # noqa: E402, F401 (shared helpers)


def pytest_sessionstart(session):
    """CI sets VSSL_REQUIRE=ffcv,decord: then a missing optional library is an error, not a
    silent skip of the tests that need it."""
    from kit.optional import installed

    # not imported: importing decord here would load its FFmpeg into this process
    for module in filter(None, os.environ.get("VSSL_REQUIRE", "").split(",")):
        if not installed(module):
            raise pytest.UsageError(
                f"VSSL_REQUIRE lists {module!r}, which is not installed; install the extra that "
                "provides it (see .ci/run)"
            )


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    """Reproducible CPU math: equality tests must not depend on the thread count."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def host():
    from vssl_core.plugins import load_plugins

    return load_plugins()


TINY = {
    "run": {"name": "tiny", "seed": 0},
    "data": {
        "dataset": {
            "name": "moving_shapes",
            "num_samples": 32,
            "num_classes": 4,
            "num_frames": 8,
            "size": 32,
        },
        "num_workers": 0,
    },
    "backbone": {
        "name": "vit_tiny",
        "img_size": 32,
        "num_frames": 4,
        "patch_size": 8,
        "tubelet_size": 2,
        "depth": 1,
    },
    "objective": {
        "name": "videomae",
        "mask_ratio": 0.75,
        "decoder_depth": 1,
        "sampling_stride": 2,
        "augmentation": "multiscale_crop",
    },
    "batch": {"global_size": 8},
    "optim": {"name": "adamw", "lr": 1e-3, "lr_scaling": "none", "betas": [0.9, 0.95]},
    "schedule": {"warmup_epochs": 1, "min_lr": 1e-5},
    "train": {"max_steps": 8},
    "checkpoint": {"every_steps": 100},
    "log": {"every_steps": 1, "progress_bar": False, "tensorboard": False},
}


@pytest.fixture
def tiny_recipe(tmp_path: Path) -> Path:
    """A VideoMAE recipe small enough for a step in tens of milliseconds."""
    path = tmp_path / "tiny.yaml"
    recipe = {**TINY, "run": {**TINY["run"], "output_root": str(tmp_path / "runs")}}
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path
