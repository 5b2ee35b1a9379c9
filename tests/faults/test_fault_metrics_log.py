"""metrics.jsonl after crashes (issue 18, defect 5)."""

from __future__ import annotations

import logging

import pytest
from kit.runs import read_metrics, train_run

from vssl_core.hookspecs import hookimpl


def test_a_torn_last_line_is_dropped_with_a_warning(tiny_recipe, caplog):
    first = train_run(tiny_recipe, "train.max_steps=4", "checkpoint.every_steps=2")
    metrics = first.run_dir / "metrics.jsonl"
    with open(metrics, "a") as f:
        f.write('{"step": 5, "loss": 1.2')  # the process died mid-write
    with caplog.at_level(logging.WARNING):
        resumed = train_run(tiny_recipe, "train.max_steps=6", "resume=true")
    assert resumed.status == "completed"
    assert [r["step"] for r in read_metrics(first.run_dir)] == [1, 2, 3, 4, 5, 6]
    assert f"{metrics} line 5 is torn" in caplog.text


class _CrashAt:
    def __init__(self, step):
        self.step = step

    @hookimpl
    def vssl_step_end(self, run, step, metrics):
        if step == self.step:
            raise RuntimeError("simulated crash")


def test_a_fresh_start_after_a_crash_before_any_checkpoint_starts_the_log_anew(tiny_recipe):
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_run(tiny_recipe, "train.max_steps=4", extra=[("crash", _CrashAt(3))])
    again = train_run(tiny_recipe, "train.max_steps=4")
    assert [r["step"] for r in read_metrics(again.run_dir)] == [1, 2, 3, 4]


def test_a_torn_last_csv_row_is_dropped_not_kept_as_an_early_step(tiny_recipe, caplog):
    import csv

    first = train_run(tiny_recipe, "log.csv=true", "train.max_steps=4", "checkpoint.every_steps=2")
    table = first.run_dir / "metrics.csv"
    with open(table, "a") as f:
        f.write("1")  # the kill cut "12,0.93,..." after its first digit
    with caplog.at_level(logging.WARNING):
        train_run(tiny_recipe, "log.csv=true", "train.max_steps=6", "resume=true")
    with open(table, newline="") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4, 5, 6]
    assert f"{table}: the last row is torn" in caplog.text


def test_a_full_disk_under_metrics_csv_names_it(tiny_recipe, capsys, monkeypatch):
    import csv
    import errno

    from kit.cli import run_cli

    def full(self, row):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(csv.DictWriter, "writerow", full)
    code = run_cli(["train", str(tiny_recipe), "log.csv=true", "train.max_steps=2"])
    err = capsys.readouterr().err
    table = tiny_recipe.parent / "runs" / "tiny" / "metrics.csv"
    assert code == 2 and f"could not write {table}: [Errno 28]" in err and "Traceback" not in err
