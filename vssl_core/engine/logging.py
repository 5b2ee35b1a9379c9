"""Built-in logging, implemented as hook plugins: metrics.jsonl and TensorBoard (the progress
bar: :mod:`vssl_core.engine.progress`).

They use the same lifecycle hooks a third-party logger (W&B, MLflow...) would implement.
"""

from __future__ import annotations

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
