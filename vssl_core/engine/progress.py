"""Training progress on stderr (rank 0): a tqdm bar in a terminal, plain lines elsewhere.

In a terminal, log records print through the bar: above it, with the bar redrawn below, never
glued to it or leaving stale copies of it. Without a terminal (a log file, a job scheduler's
output, a pipe), a bar's carriage returns would turn the run into one long line; there the bar
is replaced by a plain line at logging steps, at most one per ``every_s`` seconds and always at
the first and the last: ``name: step 40/100 (40%), loss 1.2345, lr 0.02, 55.2 clips/s, 0:00:20
elapsed, ETA 0:00:30``.

Also here: the words a run says up front when its recipe is sized for GPUs and it trains on a
CPU, and the ETA after its first step when that is long.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import TextIO

import torch
from tqdm import tqdm

from vssl_core.data.sampler import BatchLayout
from vssl_core.engine.run import RunContext
from vssl_core.hookspecs import hookimpl

log = logging.getLogger("vssl.train")

SHOWN = {"loss": ".4f", "lr": ".3g", "clips_per_s": ".1f"}  # metric -> format, bar and lines
LONG_RUN_S = 3600.0  # a projected run longer than this gets its ETA said after the first step
# on a CPU, a recipe with this many accumulation steps per optimizer step, or a backbone this
# large, was made for GPUs (the CPU recipes: one step per batch, backbones under 1M parameters)
GPU_SIZED_ACCUM = 4
GPU_SIZED_PARAMS = 20_000_000


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def duration(seconds: float) -> str:
    """h:mm:ss, or 'N days' past two days."""
    if not math.isfinite(seconds):
        return "?"
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class _ThroughBar(logging.Handler):
    """Writes records with ``tqdm.write``: the bar is cleared, the line printed, the bar redrawn."""

    def __init__(self, console: logging.StreamHandler) -> None:
        super().__init__(console.level)
        self.stream = console.stream
        self.setFormatter(console.formatter)
        for f in console.filters:
            self.addFilter(f)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


def _console_handlers(logger: logging.Logger) -> list[logging.StreamHandler]:
    return [
        h
        for h in logger.handlers
        if type(h) is logging.StreamHandler and h.stream in (sys.stderr, sys.stdout)
    ]


class ProgressBar:
    """The progress of a run on stderr (rank 0): a bar in a terminal, plain lines elsewhere."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 30.0) -> None:
        self.stream = stream
        self.every_s = every_s
        self.bar: tqdm | None = None
        self.plain = False
        self._swapped: list[tuple[logging.Logger, logging.StreamHandler, logging.Handler]] = []

    # ---------------------------------------------------------------------------- hooks
    @hookimpl
    def vssl_train_start(self, run: RunContext) -> None:
        if not run.is_main:
            return
        stream = self.stream or sys.stderr
        self.name, self.start, self.total = run.run_dir.name, run.start_step, run.total_steps
        self.t0 = time.monotonic()
        self.last_line = -math.inf
        self.first_step_said = False
        if is_terminal(stream):
            self.bar = tqdm(
                total=run.total_steps,
                initial=run.start_step,
                desc=self.name,
                unit="step",
                file=stream,
                dynamic_ncols=True,
            )
            self._print_through_bar()
        else:
            self.plain = True
            self.out = stream

    @hookimpl
    def vssl_step_end(self, run: RunContext, step: int, metrics: dict | None) -> None:
        if self.bar is None and not self.plain:
            return
        if step > self.start and not self.first_step_said:
            self.first_step_said = True
            self._say_long_eta(run, step)
        if self.bar is not None:
            self.bar.update(max(step - self.bar.n, 0))  # a monitor's step-0 values advance nothing
            if metrics is not None:  # a window of skipped steps has no loss
                self.bar.set_postfix(
                    {
                        k.replace("_per_", "_"): f"{metrics[k]:{f}}"
                        for k, f in SHOWN.items()
                        if k in metrics
                    },
                    refresh=False,
                )
            return
        now = time.monotonic()
        due = now - self.last_line >= self.every_s or step == self.total
        if metrics is not None and step > self.start and due:
            self.last_line = now
            print(self.line(step, metrics, now - self.t0), file=self.out, flush=True)

    @hookimpl
    def vssl_train_end(self, run: RunContext, step: int, status: str) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self._restore_handlers()
        self.plain = False

    # ---------------------------------------------------------------------------- parts
    def line(self, step: int, metrics: dict, elapsed: float) -> str:
        """One plain progress line (no carriage return, no bar)."""
        done = step - self.start
        rate = done / elapsed if elapsed > 0 else math.inf
        eta = (self.total - step) / rate if rate > 0 else math.inf
        shown = ", ".join(
            f"{metrics[k]:{f}} clips/s" if k == "clips_per_s" else f"{k} {metrics[k]:{f}}"
            for k, f in SHOWN.items()
            if k in metrics
        )
        percent = 100 * step / max(self.total, 1)
        return (
            f"{self.name}: step {step}/{self.total} ({percent:.0f}%)"
            + (f", {shown}" if shown else "")
            + f", {duration(elapsed)} elapsed, ETA {duration(eta)}"
        )

    def _say_long_eta(self, run: RunContext, step: int) -> None:
        """After the first step: what the whole run takes at this pace, when that is long."""
        took = time.monotonic() - self.t0
        remaining = took / (step - self.start) * (self.total - step)
        if remaining > LONG_RUN_S:
            log.warning(
                "the first step took %s: the %d steps left need ~%s at this pace",
                duration(took),
                self.total - step,
                duration(remaining),
            )

    def _print_through_bar(self) -> None:
        """Swap the console handlers of the root and vssl loggers for ones writing through the
        bar, until the run ends (a file handler, like train.log's, is left alone)."""
        for logger in (logging.getLogger(), logging.getLogger("vssl")):
            for console in _console_handlers(logger):
                through = _ThroughBar(console)
                logger.removeHandler(console)
                logger.addHandler(through)
                self._swapped.append((logger, console, through))

    def _restore_handlers(self) -> None:
        for logger, console, through in self._swapped:
            logger.removeHandler(through)
            logger.addHandler(console)
        self._swapped = []


def gpu_sized_on_cpu(device: torch.device, layout: BatchLayout, model: torch.nn.Module) -> str:
    """What to say up front when a recipe made for GPUs starts training on a CPU ("" if not):
    many accumulation steps per optimizer step (the batch layout of several GPUs), or a large
    backbone."""
    if device.type != "cpu":
        return ""
    backbone = getattr(model, "backbone", model)
    params = sum(p.numel() for p in backbone.parameters())
    why = []
    if layout.accum_steps >= GPU_SIZED_ACCUM:
        ranks = layout.accum_steps * layout.world_size
        why.append(f"its batch layout is for {ranks} GPUs ({layout.describe()})")
    if params >= GPU_SIZED_PARAMS:
        why.append(f"a {params / 1e6:.1f}M-parameter backbone")
    if not why:
        return ""
    return (
        f"this recipe is sized for GPUs and trains on a CPU: {'; '.join(why)}. Expect hours to "
        "days (the ETA follows the first step). Train it on GPUs with torchrun "
        "(docs/distributed.md), or a CPU recipe on the embedded data (`vssl list recipes`); "
        "train.max_steps=N runs a few steps to try it"
    )
