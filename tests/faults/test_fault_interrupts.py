"""Ctrl-C, SIGTERM at start-up, and schedulers that resubmit the same command (issue 18,
defects 8 and 9)."""

from __future__ import annotations

import signal
import subprocess
import sys

import torch
from kit import faults
from kit.cli import run_cli
from kit.runs import cli_env, last_weights, same_weights, train_run


def test_ctrl_c_saves_a_checkpoint_and_resumes_exactly(tiny_recipe):
    full = train_run(tiny_recipe, "run.name=full")
    cut = train_run(tiny_recipe, "run.name=cut", extra=[("int", faults.SignalAt(3, signal.SIGINT))])
    assert cut.status == "preempted" and cut.step == 4 and cut.exit_code == 130
    resumed = train_run(tiny_recipe, "run.name=cut", "resume=true")
    a, b = last_weights(full.run_dir), last_weights(resumed.run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ctrl_c_twice_stops_without_saving_and_says_so(tiny_recipe, capsys):
    plugin = "kit.sigint_twice2"
    code = run_cli(["-p", plugin, "train", str(tiny_recipe), "checkpoint.every_steps=100"])
    err = capsys.readouterr().err
    assert code == 130 and "interrupted" in err and "Traceback" not in err
    assert run_cli(["train", str(tiny_recipe), "resume=auto"]) == 0  # the lock was released


def test_resume_auto_starts_fresh_then_continues(tiny_recipe):
    full = train_run(tiny_recipe, "run.name=full")
    sigterm = [("term", faults.SigtermAt(3))]
    first = train_run(tiny_recipe, "run.name=auto", "resume=auto", extra=sigterm)
    assert first.status == "preempted" and first.exit_code == 143
    second = train_run(tiny_recipe, "run.name=auto", "resume=auto")
    assert second.status == "completed" and second.step == 8
    a, b = last_weights(full.run_dir), last_weights(second.run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sigterm_during_start_up_is_reported(tiny_recipe, tmp_path):
    cmd = [sys.executable, "-m", "vssl_core.cli", "-p", "kit.faults", "train", str(tiny_recipe)]
    cmd += ["data.dataset={name: sigterm_on_build}"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(), cwd=tmp_path)
    assert out.returncode == 143, out.stderr
    assert "SIGTERM during start-up" in out.stderr and "resume=auto" in out.stderr
    assert "Traceback" not in out.stderr


def test_resume_auto_on_a_finished_run_changes_nothing(tiny_recipe):
    """A scheduler may rerun the command after the run finished: it ends at once, same weights."""
    done = train_run(tiny_recipe, "train.max_steps=2", "resume=auto")
    before = last_weights(done.run_dir)
    again = train_run(tiny_recipe, "train.max_steps=2", "resume=auto")
    assert again.status == "completed" and again.step == 2
    assert same_weights(before, last_weights(again.run_dir))
