"""Objectives know the run: its length and position reach them through the interface
(``Objective.run``, ``Objective.run_step``), across resume, DDP and torch.compile."""

import math
import subprocess
import sys

import pytest
import torch
from kit import byol, faults
from kit.runs import cli_env, read_metrics

from vssl_core.config import load_config
from vssl_core.engine.checkpoint import load_checkpoint
from vssl_core.engine.trainer import train
from vssl_core.hookspecs import hookimpl
from vssl_core.interfaces import Batch, Objective, ObjectiveOutput, RunInfo, ViewSpec
from vssl_core.nn.schedules import cosine_ramp, linear_ramp
from vssl_core.plugins import load_plugins

BYOL = ("objective={name: byol, dim: 16, base_momentum: 0.9}",)


def run(recipe, *overrides, extra=()):
    host = load_plugins(extra=[("byol", byol), *extra])
    return train(load_config(recipe, list(overrides), host), host)


def weights(run_dir):
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


class _RunSeen:
    """Records what the objective itself holds when training starts."""

    def __init__(self):
        self.seen = []

    @hookimpl
    def vssl_train_start(self, run):
        self.seen.append((run.model.run, int(run.model.run_step)))


def test_byol_cosine_momentum_needs_no_hook_and_resumes_bit_exactly(tiny_recipe):
    seen = _RunSeen()
    full = run(tiny_recipe, "run.name=full", *BYOL, extra=[("seen", seen)])
    assert full.status == "completed" and full.step == 8
    run(tiny_recipe, "run.name=cut", *BYOL, extra=[("sigterm", faults.SigtermAt(3))])
    resumed = run(tiny_recipe, "run.name=cut", "resume=true", *BYOL, extra=[("seen", seen)])
    assert resumed.status == "completed" and resumed.step == 8
    # 32 videos, 8 per step: 4 steps per epoch, 8 steps; the resume starts after step 4
    assert seen.seen == [(RunInfo(8, 4, 0), 0), (RunInfo(8, 4, 4), 4)]
    a, b = weights(full.run_dir), weights(resumed.run_dir)
    assert a.keys() == b.keys() and any(k.startswith("target_backbone.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [r["loss"] for r in read_metrics(resumed.run_dir)] == [
        r["loss"] for r in read_metrics(full.run_dir)
    ]


def test_the_byol_momentum_follows_the_cosine_over_the_whole_run(tiny_recipe, host):
    model = byol.byol(host.registry.get("backbone", "cnn3d_small").factory(img_size=32))
    model.begin_run(RunInfo(total_steps=8, steps_per_epoch=4))
    for step in range(1, 9):
        model.after_step(step)
    expected = [1 - 0.1 * (math.cos(math.pi * k / 8) + 1) / 2 for k in range(1, 9)]
    assert model.momenta == pytest.approx(expected, abs=1e-12)
    assert model.momenta[-1] == 1.0


def test_run_info_derives_epochs_and_fractions():
    run = RunInfo(total_steps=10, steps_per_epoch=4, start_step=6)
    assert run.epochs == 2.5 and run.epoch(0) == 0 and run.epoch(4) == 1 and run.epoch(9) == 2
    assert run.fraction(5) == 0.5
    for bad in (
        {"total_steps": 0, "steps_per_epoch": 1},
        {"total_steps": 4, "steps_per_epoch": 2, "start_step": 5},
    ):
        with pytest.raises(ValueError, match="RunInfo"):
            RunInfo(**bad)


def test_ramps_agree_on_floats_and_tensors():
    for f in (0.0, 0.25, 0.5, 1.0, 1.5, -0.1):
        for ramp in (cosine_ramp, linear_ramp):
            as_float = ramp(0.99, 1.0, f)
            as_tensor = ramp(0.99, 1.0, torch.tensor(f, dtype=torch.float64))
            assert float(as_tensor) == pytest.approx(as_float, abs=1e-12)
    assert cosine_ramp(0.99, 1.0, 0.0) == 0.99 and cosine_ramp(0.99, 1.0, 1.0) == 1.0


class _Ramped(Objective):
    """A loss weight that falls from 1 to 0 over the run, computed inside forward."""

    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Linear(3, 1)

    def views(self) -> ViewSpec:
        return ViewSpec(frames=1, crop_size=1)

    def forward(self, batch: Batch) -> ObjectiveOutput:
        weight = cosine_ramp(1.0, 0.0, self.run_fraction())
        return ObjectiveOutput(self.backbone(batch.clips[0]).sum() * weight)


def test_a_compiled_forward_reads_the_step_without_recompiling():
    compiles = []

    def counting_backend(gm, example_inputs):
        compiles.append(gm)
        return gm.forward

    model = _Ramped()
    model.begin_run(RunInfo(total_steps=4, steps_per_epoch=2))
    compiled = torch.compile(model, backend=counting_backend)
    x = torch.ones(1, 3)
    batch = Batch(clips=[x], label=torch.zeros(1), index=torch.zeros(1), keys=torch.zeros(1))
    with torch.no_grad():
        base = model.backbone(x).sum()
        got = []
        for step in range(5):
            model.set_run_step(step)
            got.append(compiled(batch).loss)
    assert len(compiles) == 1  # the step is a buffer's value, not a guarded constant
    for step, loss in enumerate(got):
        expected = base * (math.cos(math.pi * step / 4) + 1) / 2
        torch.testing.assert_close(loss, expected)


def test_the_run_is_unknown_before_begin_run():
    with pytest.raises(RuntimeError, match="known once training starts"):
        _Ramped().run_fraction()
    assert "run_step" not in _Ramped().state_dict()  # checkpoints are unchanged


@pytest.mark.slow
def test_byol_under_two_ddp_ranks_matches_one_rank(tiny_recipe, tmp_path):
    """DDP wraps the objective; it still reads its own run (the momentum schedule) and two
    ranks end where one rank with the same global batch does."""

    def train_cli(nproc, name):
        launch = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
        cmd = [sys.executable, *(launch if nproc > 1 else []), "-m", "vssl_core.cli"]
        cmd += ["-p", "kit.byol", "train", str(tiny_recipe), f"run.name={name}", *BYOL]
        cmd += ["batch.per_rank=4"]
        out = subprocess.run(
            cmd, capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=300
        )
        assert out.returncode == 0, out.stdout + out.stderr
        return tmp_path / "runs" / name

    one, two = train_cli(1, "one"), train_cli(2, "two")
    l1 = [r["loss"] for r in read_metrics(one)]
    l2 = [r["loss"] for r in read_metrics(two)]
    assert len(l1) == 8 and l2 == pytest.approx(l1, rel=1e-4)
    a, b = weights(one), weights(two)
    for k in a:
        if k.startswith("target_"):
            torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
