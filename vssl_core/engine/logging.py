"""Built-in logging, implemented as hook plugins: metrics.jsonl, metrics.csv and TensorBoard (the
progress bar: :mod:`vssl_core.engine.progress`).

They use the same lifecycle hooks as the logger components of ``log.loggers`` (the optional
``wandb`` and ``mlflow`` loggers of the vssl_loggers plugin, or a third party's).
"""

from __future__ import annotations

import csv
import json
import logging
import threading
from pathlib import Path

from vssl_core.engine.run import RunContext
from vssl_core.engine.writes import writing
from vssl_core.hookspecs import hookimpl

log = logging.getLogger("vssl.train")


class MetricsFileLogger:
    """Appends one JSON line per logging step to <run dir>/metrics.jsonl (rank 0).

    A resumed run keeps the rows up to its checkpoint (a crash may have logged past it, and
    may have torn the last line); a fresh run starts the file anew.
    """

    def __init__(self) -> None:
        self.file = None
        self.path: Path | None = None

    @hookimpl
    def vssl_train_start(self, run: RunContext) -> None:
        if not run.is_main:
            return
        self.path = path = run.run_dir / "metrics.jsonl"
        with writing(path):
            if run.start_step and path.exists():
                kept = rows_up_to(path, run.start_step)
                path.write_text("".join(li + "\n" for li in kept))
            # a fresh start truncates: a crash before the first checkpoint left rows behind
            self.file = open(path, "a" if run.start_step else "w")

    @hookimpl
    def vssl_step_end(self, run: RunContext, step: int, metrics: dict | None) -> None:
        if self.file is not None and metrics is not None:
            with writing(self.path):
                self.file.write(json.dumps({"step": step, **metrics}) + "\n")
                self.file.flush()

    @hookimpl
    def vssl_train_end(self, run: RunContext, step: int, status: str) -> None:
        if self.file is not None:
            file, self.file = self.file, None
            with writing(self.path):
                file.close()


def rows_up_to(path: Path, step: int) -> list[str]:
    """The lines of a metrics file logged at or before ``step``. A line that does not parse
    (the last one, torn by a crash mid-write; any other, damaged) is dropped, with a warning
    naming the file and the line."""
    kept = []
    lines = path.read_text(errors="replace").splitlines()
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
            row_step = int(row["step"])
        except (ValueError, KeyError, TypeError):
            torn = "torn (a crash mid-write)" if number == len(lines) else "unreadable"
            log.warning("%s line %d is %s; dropped it: %r", path, number, torn, line[:80])
            continue
        if row_step <= step:
            kept.append(line)
    return kept


class CsvLogger:
    """<run dir>/metrics.csv (rank 0): a ``step`` column, then one column per metric in the
    order first seen; a metric that appears later (a monitor's) adds a column and the file is
    rewritten with it, so every row has every column (empty where not logged)."""

    def __init__(self) -> None:
        self.path = None
        self.rows: list[dict] = []
        self.columns: list[str] = ["step"]

    @hookimpl
    def vssl_train_start(self, run: RunContext) -> None:
        if not run.is_main:
            return
        self.path = run.run_dir / "metrics.csv"
        with writing(self.path):
            if run.start_step and self.path.exists():  # a resume: keep the rows up to its step
                self._read_up_to(run.start_step)
            self._write()

    def _read_up_to(self, step: int) -> None:
        """The rows logged at or before ``step``; a last row a kill tore mid-write is dropped
        (its step may read as an earlier one: "12,..." cut after "1"), with a warning."""
        text = self.path.read_text(errors="replace")
        if text and not text.endswith("\n"):
            log.warning("%s: the last row is torn (a crash mid-write); dropped it", self.path)
            text = text[: text.rfind("\n") + 1]
        reader = csv.DictReader(text.splitlines())
        self.columns = list(reader.fieldnames or ["step"])
        for row in reader:
            try:
                keep = int(row["step"]) <= step
            except (TypeError, ValueError):
                log.warning("%s: dropped an unreadable row: %r", self.path, row)
                continue
            if keep:
                self.rows.append(row)

    @hookimpl
    def vssl_step_end(self, run: RunContext, step: int, metrics: dict | None) -> None:
        if self.path is None or metrics is None:
            return
        row = {"step": step, **metrics}
        self.rows.append(row)
        new = [k for k in row if k not in self.columns]
        with writing(self.path):
            if new:
                self.columns += new
                self._write()
            else:
                with open(self.path, "a", newline="") as f:
                    csv.DictWriter(f, self.columns).writerow(row)

    def _write(self) -> None:
        with open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, self.columns)
            writer.writeheader()
            writer.writerows(self.rows)

    @hookimpl
    def vssl_train_end(self, run: RunContext, step: int, status: str) -> None:
        self.path = None


class TensorBoardLogger:
    """Scalars to <run dir>/tensorboard (rank 0)."""

    def __init__(self) -> None:
        self.writer = None
        self.folder: Path | None = None

    @hookimpl
    def vssl_train_start(self, run: RunContext) -> None:
        if run.is_main:
            from torch.utils.tensorboard import SummaryWriter

            _quiet_writer_thread_errors()
            self.folder = run.run_dir / "tensorboard"
            with writing(self.folder):
                self.writer = SummaryWriter(
                    log_dir=str(self.folder), purge_step=run.start_step
                )  # purge_step 0: a fresh start hides the events of a crashed earlier attempt

    @hookimpl
    def vssl_step_end(self, run: RunContext, step: int, metrics: dict | None) -> None:
        if self.writer is not None and metrics is not None:
            with writing(self.folder):  # a failed write of the writer's thread surfaces here
                for key, value in metrics.items():
                    if isinstance(value, int | float):
                        self.writer.add_scalar(f"train/{key}", value, step)

    @hookimpl
    def vssl_train_end(self, run: RunContext, step: int, status: str) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            with writing(self.folder):
                writer.close()


def _quiet_writer_thread_errors() -> None:
    """TensorBoard's writer thread keeps a failed write (a full disk) for the training thread,
    which reports it naming the folder, and also re-raises it, which Python prints as a thread
    traceback: leave that one out."""
    previous = threading.excepthook
    if getattr(previous, "vssl_quiet", False):
        return

    def hook(args) -> None:
        writer_thread = type(args.thread).__name__ == "_AsyncWriterThread"
        if not (writer_thread and isinstance(args.exc_value, OSError)):
            previous(args)

    hook.vssl_quiet = True
    threading.excepthook = hook
