"""Faults that printed a raw traceback (issue 18, defect 8): each is one message, exit 2."""

from __future__ import annotations

import os

import pytest
import torch
from kit import faults
from kit.cli import run_cli

from vssl_core.config import load_config
from vssl_core.data.failures import DataLoadingError
from vssl_core.engine.trainer import train
from vssl_core.plugins import load_plugins


def refused(capsys, *argv: str) -> str:
    code = run_cli(list(argv))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err, err
    return err


def test_resuming_into_a_different_model_names_the_change(tiny_recipe, capsys):
    assert run_cli(["train", str(tiny_recipe), "train.max_steps=2"]) == 0
    err = refused(capsys, "train", str(tiny_recipe), "resume=true", "backbone.depth=2")
    assert "does not fit the model this recipe builds" in err
    assert "backbone.depth: 1 -> 2" in err and "recipe.yaml" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_asking_for_a_missing_gpu_is_one_message(tiny_recipe, capsys):
    err = refused(capsys, "train", str(tiny_recipe), "train.device=cuda")
    assert err.startswith("error: train.device=cuda but no CUDA device is visible")


def test_prefetch_factor_zero_is_refused_before_anything_runs(tiny_recipe, capsys):
    err = refused(capsys, "train", str(tiny_recipe), "data.num_workers=1", "data.prefetch_factor=0")
    assert "data.prefetch_factor: must be >= 1" in err


def test_a_killed_loader_worker_is_one_message(tiny_recipe):
    host = load_plugins(extra=[("kill", faults.KillLoaderWorkerAt(2))])
    config = load_config(tiny_recipe, ["data.num_workers=1", "checkpoint.every_steps=2"], host)
    with pytest.raises(DataLoadingError, match=r"data-loader worker \(pid \d+\) died") as err:
        train(config, host)
    assert "out-of-memory" in str(err.value) and "resume=true" in str(err.value)


def test_an_unsafe_sigma_teacher_file_is_one_message(tiny_recipe, tmp_path, capsys):
    evil = tmp_path / "dino.pth"
    torch.save({"model": {}, "hook": os.system}, evil)  # unpickling it would import os.system
    sigma = (
        "objective={name: sigma, target: dino, teacher: dino_s, decoder_depth: 1, "
        f"num_prototypes: 16, teacher_weights: {evil}}}"
    )
    err = refused(capsys, "info", str(tiny_recipe), sigma)
    assert f"sigma teacher_weights {str(evil)!r}" in err and "posix.system" in err


def test_decode_failures_in_workers_print_the_message_not_the_worker_traceback(tiny_recipe, capsys):
    err = refused(
        capsys,
        "-p",
        "kit.faults",
        "train",
        str(tiny_recipe),
        "data.dataset={name: broken_every, every: 2}",
        "data.max_failed_fraction=0.0",
        "data.num_workers=1",
        "train.max_steps=3",
    )
    first = err.splitlines()[0]
    assert first.startswith("error: ") and "failed to decode" in first, err
    assert "Caught DataLoadingError" not in err and "vssl data check" in first
    assert "in data-loader worker 0" in first
