"""The wandb and mlflow loggers on tiny runs, against stand-ins of the two packages that record
every call (vssl does not depend on them); without the package, a clear error before training."""

import sys
import types

import pytest
from kit import faults

from vssl_core.config import load_config
from vssl_core.engine.trainer import train
from vssl_core.plugins import load_plugins


def run(recipe, *overrides, extra=()):
    host = load_plugins(extra=extra)
    return train(load_config(recipe, list(overrides), host), host)


class FakeWandb(types.ModuleType):
    """wandb.init(...) -> a run with .id, .log(metrics, step=), .finish(exit_code=)."""

    def __init__(self):
        super().__init__("wandb")
        self.calls = []

    def init(self, **kwargs):
        self.calls.append(("init", kwargs))
        calls = self.calls

        class Run:
            id = kwargs["id"] or "run123"

            def log(self, metrics, step):
                calls.append(("log", step, metrics))

            def finish(self, exit_code):
                calls.append(("finish", exit_code))

        return Run()


class FakeMlflow(types.ModuleType):
    def __init__(self):
        super().__init__("mlflow")
        self.calls = []

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def record(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            if name == "start_run":
                info = types.SimpleNamespace(run_id=kwargs.get("run_id") or "abc")
                return types.SimpleNamespace(info=info)

        return record


def test_wandb_logs_the_recipe_and_every_logged_step_and_continues_after_resume(
    tiny_recipe, monkeypatch
):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    logger = "log.loggers=[{name: wandb, project: p, mode: offline}]"
    cut = run(tiny_recipe, logger, extra=[("sigterm", faults.SigtermAt(3))])
    assert cut.status == "preempted"
    (kind, first), *_ = fake.calls
    assert kind == "init" and first["project"] == "p" and first["mode"] == "offline"
    assert first["id"] is None and first["config"]["optim.lr"] == 0.001
    assert first["dir"] == str(cut.run_dir) and first["name"] == "tiny"
    assert [c[1] for c in fake.calls if c[0] == "log"] == [1, 2, 3, 4]
    assert ("finish", 1) in fake.calls  # pre-empted: not a success
    assert (cut.run_dir / "wandb_run_id").read_text() == "run123"
    fake.calls.clear()
    run(tiny_recipe, logger, "resume=true")
    assert fake.calls[0][1]["id"] == "run123" and fake.calls[0][1]["resume"] == "allow"
    assert [c[1] for c in fake.calls if c[0] == "log"] == [5, 6, 7, 8]
    assert fake.calls[-1] == ("finish", 0)


def test_mlflow_logs_params_once_metrics_per_step_and_the_status(tiny_recipe, monkeypatch):
    fake = FakeMlflow()
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    result = run(tiny_recipe, "log.loggers=[{name: mlflow, experiment: e}]")
    names = [c[0] for c in fake.calls]
    assert names[:4] == ["set_tracking_uri", "set_experiment", "start_run", "log_params"]
    assert fake.calls[0][1][0] == (result.run_dir / "mlruns").resolve().as_uri()
    params = {k: v for c in fake.calls if c[0] == "log_params" for k, v in c[1][0].items()}
    assert params["backbone.name"] == "vit_tiny" and params["train.max_steps"] == 8
    steps = [c[2]["step"] for c in fake.calls if c[0] == "log_metrics"]
    assert steps == list(range(1, 9))
    assert fake.calls[-1] == ("end_run", (), {"status": "FINISHED"})


def test_a_missing_package_stops_before_training_with_the_install_line(tiny_recipe, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import fails
    with pytest.raises(ValueError, match="needs the wandb package.*pip install wandb"):
        run(tiny_recipe, "log.loggers=[{name: wandb}]")
    assert not (tiny_recipe.parent / "runs" / "tiny" / "checkpoints").exists()


def test_logger_arguments_are_checked_as_recipe_keys(tiny_recipe):
    from vssl_core.schema import RecipeValidationError

    with pytest.raises(RecipeValidationError, match=r"log.loggers\[0\].projct: unknown key"):
        run(tiny_recipe, "log.loggers=[{name: wandb, projct: p}]")
    with pytest.raises(RecipeValidationError, match=r"log.loggers\[0\].name: unknown logger"):
        run(tiny_recipe, "log.loggers=[{name: neptune}]")
