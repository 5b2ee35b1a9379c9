"""One writer per run directory (issue 18, defect 2)."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time

import pytest
from kit.cli import run_cli
from kit.runs import cli_env, read_metrics, train_run

from vssl_core.hookspecs import hookimpl

HOLD = (
    "import sys, time; from pathlib import Path; from vssl_core.engine.runlock import RunLock; "
    "lock = RunLock(Path(sys.argv[1])); lock.acquire(); print('locked', flush=True); "
    "time.sleep(120)"
)


@pytest.fixture
def holder(tiny_recipe):
    """Another process holding the run directory of ``tiny_recipe``."""
    run_dir = tiny_recipe.parent / "runs" / "tiny"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_writer_is_refused_naming_the_holder(tiny_recipe, holder, capsys):
    code = run_cli(["train", str(tiny_recipe), "train.max_steps=2"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "is in use by another run" in err and f"pid {holder.pid}" in err
    assert not (tiny_recipe.parent / "runs" / "tiny" / "metrics.jsonl").exists()


def test_the_lock_of_a_killed_writer_is_released_and_reported(tiny_recipe, holder, caplog):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with caplog.at_level(logging.WARNING):
        result = train_run(tiny_recipe, "train.max_steps=2")
    assert result.status == "completed"
    assert f"pid {holder.pid}" in caplog.text and "ended without releasing it" in caplog.text


class _StartAgain:
    """At step 1, starts the same run again in this process (a second writer)."""

    def __init__(self, recipe):
        self.recipe, self.error = recipe, None

    @hookimpl
    def vssl_step_end(self, run, step, metrics):
        if step == 1:
            try:
                train_run(self.recipe, "train.max_steps=2")
            except Exception as exc:  # noqa: BLE001 (recorded for the test)
                self.error = exc


def test_two_writers_in_one_process_are_refused(tiny_recipe):
    again = _StartAgain(tiny_recipe)
    first = train_run(tiny_recipe, "train.max_steps=2", extra=[("again", again)])
    assert first.status == "completed"
    assert "already being written by this process" in str(again.error)
    assert [r["step"] for r in read_metrics(first.run_dir)] == [1, 2]


def test_the_lock_is_released_when_set_up_fails(tiny_recipe):
    train_run(tiny_recipe, "train.max_steps=2")
    with pytest.raises(Exception, match="already holds a checkpoint"):
        train_run(tiny_recipe, "train.max_steps=2")
    assert train_run(tiny_recipe, "train.max_steps=3", "resume=true").step == 3


@pytest.mark.slow
def test_a_second_cli_run_is_refused_while_the_first_trains(tiny_recipe, tmp_path):
    """Two processes, one run name: the second is refused at once; the first's rows are clean."""
    cmd = [sys.executable, "-m", "vssl_core.cli", "train", str(tiny_recipe)]
    first = subprocess.Popen(
        [*cmd, "train.max_steps=100000"], stderr=subprocess.PIPE, text=True, env=cli_env()
    )
    metrics = tiny_recipe.parent / "runs" / "tiny" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n")):
        time.sleep(0.2)
    second = subprocess.run(
        [*cmd, "resume=auto"], capture_output=True, text=True, env=cli_env(), timeout=120
    )
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=120) == 143, first.stderr.read()
    assert second.returncode == 2 and "is in use by another run" in second.stderr
    assert "Traceback" not in second.stderr
    steps = [r["step"] for r in read_metrics(metrics.parent)]
    assert steps == list(range(1, len(steps) + 1))
