"""Progress on stderr: log lines print through the bar in a terminal; elsewhere plain lines,
never carriage returns; a recipe sized for GPUs says so when it starts on a CPU."""

import io
import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

from vssl_core.data.sampler import BatchLayout
from vssl_core.engine.progress import ProgressBar, duration, gpu_sized_on_cpu


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(total=100, start=0):
    return SimpleNamespace(
        is_main=True, run_dir=Path("runs/demo"), start_step=start, total_steps=total
    )


def test_without_a_terminal_progress_is_plain_lines_at_most_every_few_seconds():
    out = io.StringIO()
    bar = ProgressBar(stream=out, every_s=3600)
    run = _run()
    bar.vssl_train_start(run=run)
    for step in range(1, 101):
        metrics = {"loss": 1.5, "lr": 0.02, "clips_per_s": 50.0} if step % 10 == 0 else None
        bar.vssl_step_end(run=run, step=step, metrics=metrics)
    bar.vssl_train_end(run=run, step=100, status="completed")
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()  # the first logging step, then (every_s is long) only the last
    assert [li.split(",")[0] for li in lines] == [
        "demo: step 10/100 (10%)",
        "demo: step 100/100 (100%)",
    ]
    assert "loss 1.5000, lr 0.02, 50.0 clips/s" in lines[-1] and "ETA 0:00:00" in lines[-1]


def test_in_a_terminal_log_lines_print_above_the_bar_not_glued_to_it(monkeypatch):
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [console])
    bar = ProgressBar()
    run = _run(total=4)
    bar.vssl_train_start(run=run)
    bar.vssl_step_end(run=run, step=1, metrics=None)
    logging.getLogger("vssl.train").warning("something happened")
    bar.vssl_step_end(run=run, step=2, metrics=None)
    bar.vssl_train_end(run=run, step=4, status="completed")
    assert root.handlers == [console]  # restored after the run
    text = term.getvalue()
    before, _, after = text.partition("WARNING vssl.train: something happened\n")
    assert before.endswith("\r"), text  # the bar was cleared first, not glued to ...
    assert "demo:" in after  # ... and it is drawn again below the line


def test_a_gpu_sized_recipe_on_a_cpu_says_so_up_front():
    small = torch.nn.Linear(2, 2)
    many = BatchLayout.from_recipe(2048, 32, 1)
    note = gpu_sized_on_cpu(torch.device("cpu"), many, small)
    assert (
        "batch layout is for 64 GPUs" in note and "torchrun" in note and "vssl list recipes" in note
    )
    big = SimpleNamespace(backbone=torch.nn.Linear(5000, 5000))  # 25M parameters
    big_note = gpu_sized_on_cpu(torch.device("cpu"), BatchLayout.from_recipe(8, None, 1), big)
    assert "25.0M-parameter backbone" in big_note
    assert gpu_sized_on_cpu(torch.device("cpu"), BatchLayout.from_recipe(16, None, 1), small) == ""
    assert gpu_sized_on_cpu(torch.device("cuda"), many, small) == ""


def test_durations_read_as_hours_or_days():
    assert duration(3725) == "1:02:05"
    assert duration(5 * 86400) == "5 days"
    assert duration(float("inf")) == "?"
