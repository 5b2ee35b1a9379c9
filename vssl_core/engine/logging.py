"""Built-in logging, implemented as hook plugins: metrics.jsonl, metrics.csv and TensorBoard (the
progress bar: :mod:`vssl_core.engine.progress`).

They use the same lifecycle hooks as the logger components of ``log.loggers`` (the optional
``wandb`` and ``mlflow`` loggers of the vssl_loggers plugin, or a third party's).
"""

from __future__ import annotations

import csv
import json

from vssl_core.engine.run import RunContext
from vssl_core.hookspecs import hookimpl


class MetricsFileLogger:
    """Appends one JSON line per logging step to <run dir>/metrics.jsonl (rank 0)."""

    def __init__(self) -> None:
        self.file = None

    @hookimpl
    def vssl_train_start(self, run: RunContext) -> None:
        if not run.is_main:
            return
        path = run.run_dir / "metrics.jsonl"
        if run.start_step and path.exists():  # a crash may have logged past the checkpoint
            kept = [
                li
                for li in path.read_text().splitlines()
                if json.loads(li)["step"] <= run.start_step
            ]
            path.write_text("".join(li + "\n" for li in kept))
        self.file = open(path, "a")

    @hookimpl
    def vssl_step_end(self, run: RunContext, step: int, metrics: dict | None) -> None:
        if self.file is not None and metrics is not None:
            self.file.write(json.dumps({"step": step, **metrics}) + "\n")
            self.file.flush()

    @hookimpl
    def vssl_train_end(self, run: RunContext, step: int, status: str) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


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
        if run.start_step and self.path.exists():  # a resume: keep the rows up to its step
            with open(self.path, newline="") as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or ["step"])
                self.rows = [r for r in reader if int(r["step"]) <= run.start_step]
        self._write()

    @hookimpl
    def vssl_step_end(self, run: RunContext, step: int, metrics: dict | None) -> None:
        if self.path is None or metrics is None:
            return
        row = {"step": step, **metrics}
        self.rows.append(row)
        new = [k for k in row if k not in self.columns]
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

    @hookimpl
    def vssl_train_start(self, run: RunContext) -> None:
        if run.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(
                log_dir=str(run.run_dir / "tensorboard"), purge_step=run.start_step or None
            )

    @hookimpl
    def vssl_step_end(self, run: RunContext, step: int, metrics: dict | None) -> None:
        if self.writer is not None and metrics is not None:
            for key, value in metrics.items():
                if isinstance(value, int | float):
                    self.writer.add_scalar(f"train/{key}", value, step)

    @hookimpl
    def vssl_train_end(self, run: RunContext, step: int, status: str) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
