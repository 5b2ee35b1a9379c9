"""The ``wandb`` (Weights & Biases) and ``mlflow`` loggers: hook plugins on the trainer's
lifecycle hooks, rank 0 only, as the built-in metrics.jsonl and TensorBoard loggers are.

Both log the resolved recipe as the run's config/parameters and every logged step's metrics
(``vssl_step_end``), and continue the same tracker run after ``resume=true``: the tracker's run
id is kept in the run directory (``wandb_run_id`` / ``mlflow_run_id``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from vssl_core import component, hookimpl

STATUS = {"completed": "FINISHED", "preempted": "KILLED", "failed": "FAILED"}


def require(package: str, logger: str) -> ModuleType:
    """The tracker's package, or an error that says how to get it."""
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise ValueError(
            f"the {logger} logger (log.loggers) needs the {package} package, which is not "
            f"installed ({exc}): pip install {package} (it is optional; vssl does not depend on "
            f"it), or remove {{name: {logger}}} from log.loggers"
        ) from None


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 1}}`` -> ``{"optim.lr": 1}`` (trackers take flat parameters)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def _saved_id(path: Path, resuming: bool) -> str | None:
    return path.read_text().strip() if resuming and path.is_file() else None


@component("logger", name="wandb")
class WandbLogger:
    """Weights & Biases: the recipe as config, metrics per logged step (mode offline: no account
    or network; sync later with `wandb sync`)."""

    def __init__(
        self,
        project: str = "vssl",
        entity: str | None = None,
        name: str | None = None,
        tags: list[str] = [],  # noqa: B006 (a recipe value; never mutated)
        mode: Literal["online", "offline", "disabled"] = "online",
    ) -> None:
        self.wandb = require("wandb", "wandb")
        self.project, self.entity, self.name, self.tags, self.mode = (
            project,
            entity,
            name,
            tags,
            mode,
        )
        self.run = None

    @hookimpl
    def vssl_train_start(self, run) -> None:
        if not run.is_main:
            return
        id_file = run.run_dir / "wandb_run_id"
        self.run = self.wandb.init(
            project=self.project,
            entity=self.entity,
            name=self.name or run.run_dir.name,
            tags=list(self.tags),
            mode=self.mode,
            dir=str(run.run_dir),
            config=flatten(run.recipe),
            id=_saved_id(id_file, run.start_step > 0),
            resume="allow",
        )
        id_file.write_text(self.run.id)

    @hookimpl
    def vssl_step_end(self, run, step: int, metrics: dict | None) -> None:
        if self.run is not None and metrics is not None:
            self.run.log(dict(metrics), step=step)

    @hookimpl
    def vssl_train_end(self, run, step: int, status: str) -> None:
        if self.run is not None:
            self.run.finish(exit_code=0 if status == "completed" else 1)
            self.run = None


@component("logger", name="mlflow")
class MlflowLogger:
    """MLflow: the recipe as parameters, metrics per logged step, the run's status at the end
    (tracking_uri None: a file store in <run dir>/mlruns)."""

    def __init__(
        self,
        experiment: str = "vssl",
        tracking_uri: str | None = None,
        run_name: str | None = None,
    ) -> None:
        self.mlflow = require("mlflow", "mlflow")
        self.experiment, self.tracking_uri, self.run_name = experiment, tracking_uri, run_name
        self.active = False

    @hookimpl
    def vssl_train_start(self, run) -> None:
        if not run.is_main:
            return
        mlflow = self.mlflow
        mlflow.set_tracking_uri(self.tracking_uri or (run.run_dir / "mlruns").resolve().as_uri())
        mlflow.set_experiment(self.experiment)
        id_file = run.run_dir / "mlflow_run_id"
        run_id = _saved_id(id_file, run.start_step > 0)
        active = mlflow.start_run(run_id=run_id, run_name=self.run_name or run.run_dir.name)
        self.active = True
        id_file.write_text(active.info.run_id)
        if run_id is None:  # parameters are immutable in MLflow: log them once
            params = flatten(run.recipe)
            for start in range(0, len(params), 100):  # MLflow's batch limit
                mlflow.log_params(dict(list(params.items())[start : start + 100]))

    @hookimpl
    def vssl_step_end(self, run, step: int, metrics: dict | None) -> None:
        if self.active and metrics is not None:
            numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
            self.mlflow.log_metrics(numbers, step=step)

    @hookimpl
    def vssl_train_end(self, run, step: int, status: str) -> None:
        if self.active:
            self.mlflow.end_run(status=STATUS.get(status, "FAILED"))
            self.active = False
