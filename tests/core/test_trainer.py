"""The trainer on tiny VideoMAE runs: resume equality, SIGTERM, non-finite losses, logs."""

import subprocess
import sys

import pytest
import torch
from conftest import cli_env, read_metrics
from kit import faults

from vssl_core.config import load_config
from vssl_core.engine.checkpoint import load_checkpoint
from vssl_core.engine.trainer import TrainingError, train
from vssl_core.plugins import load_plugins


def run(recipe, *overrides, extra=()):
    host = load_plugins(extra=extra)
    return train(load_config(recipe, list(overrides), host), host)


def weights(run_dir):
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


def test_a_run_logs_metrics_and_saves_a_complete_checkpoint(tiny_recipe):
    result = run(tiny_recipe, "log.tensorboard=true")
    assert result.status == "completed" and result.step == 8
    rows = read_metrics(result.run_dir)
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert all({"loss", "lr", "clips_per_s"} <= set(r) for r in rows)
    assert (result.run_dir / "recipe.yaml").read_text().count("mask_ratio: 0.75") == 1
    assert list((result.run_dir / "tensorboard").glob("events.out.tfevents.*"))
    state = load_checkpoint(result.run_dir / "checkpoints" / "last.pt")
    assert state["step"] == 8 and state["data_position"] == {"epoch": 2, "step_in_epoch": 0}
    assert {"model", "optimizer", "scheduler", "rng", "recipe"} <= set(state)


def test_an_existing_run_is_never_overwritten(tiny_recipe):
    run(tiny_recipe, "train.max_steps=2")
    with pytest.raises(TrainingError, match="already holds a checkpoint.*resume=true"):
        run(tiny_recipe, "train.max_steps=2")


def test_sigterm_saves_and_resume_ends_with_identical_weights(tiny_recipe):
    full = run(tiny_recipe, "run.name=full")
    stopped = run(tiny_recipe, "run.name=split", extra=[("sigterm", faults.SigtermAt(3))])
    # the signal arrives during step 3's hooks; step 4 is in flight, finishes, then the save
    assert stopped.status == "preempted" and stopped.step == 4
    assert load_checkpoint(stopped.run_dir / "checkpoints" / "last.pt")["step"] == 4
    resumed = run(tiny_recipe, "run.name=split", "resume=true")
    assert resumed.status == "completed" and resumed.step == 8
    a, b = weights(full.run_dir), weights(resumed.run_dir)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    losses_full = [r["loss"] for r in read_metrics(full.run_dir)]
    losses_split = [r["loss"] for r in read_metrics(resumed.run_dir)]
    assert losses_split == losses_full  # metrics.jsonl is appended, one row per step


def test_gradient_accumulation_matches_one_big_batch(tiny_recipe):
    big = run(tiny_recipe, "run.name=big", "batch.per_rank=8")
    accum = run(tiny_recipe, "run.name=accum", "batch.per_rank=2")
    la = [r["loss"] for r in read_metrics(big.run_dir)]
    lb = [r["loss"] for r in read_metrics(accum.run_dir)]
    assert lb == pytest.approx(la, rel=1e-4)


def test_non_finite_loss_stops_with_the_step_or_is_skipped(tiny_recipe):
    extra = [("faults", faults)]
    with pytest.raises(TrainingError, match="non-finite loss .* at step 3"):
        run(tiny_recipe, "objective={name: nan_after, nan_at_call: 3}", extra=extra)
    result = run(
        tiny_recipe,
        "run.name=skip",
        "objective={name: nan_after, nan_at_call: 3}",
        "train.nonfinite_loss=skip",
        extra=extra,
    )
    assert result.status == "completed"
    rows = read_metrics(result.run_dir)
    assert rows[-1]["skipped_steps"] == 1
    assert all(torch.isfinite(v).all() for v in weights(result.run_dir).values())


@pytest.mark.slow
def test_sigterm_to_a_real_process_checkpoints_and_exits_cleanly(tiny_recipe, tmp_path):
    cmd = [sys.executable, "-m", "vssl_core.cli", "-p", "kit.sigterm3", "train", str(tiny_recipe)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "preempted at step 4" in out.stdout
    assert "SIGTERM: checkpoint saved at step 4" in out.stderr
    assert load_checkpoint(tmp_path / "runs" / "tiny" / "checkpoints" / "last.pt")["step"] == 4
