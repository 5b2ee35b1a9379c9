"""fp16 with a loss scaler (GPUs without bf16), tested on the CPU, where torch runs fp16
autocast and GradScaler too."""

import pytest
import torch
from kit import faults
from kit.runs import read_metrics

from vssl_core.config import load_config
from vssl_core.engine.checkpoint import load_checkpoint
from vssl_core.engine.precision import LossScaling, autocast_dtype
from vssl_core.engine.trainer import train
from vssl_core.plugins import load_plugins

CPU = torch.device("cpu")


def run(recipe, *overrides, extra=()):
    host = load_plugins(extra=extra)
    return train(load_config(recipe, list(overrides), host), host)


def test_precisions_map_to_autocast_dtypes():
    cuda = torch.device("cuda")
    assert autocast_dtype(CPU, "auto") is None and autocast_dtype(cuda, "auto") == torch.bfloat16
    assert autocast_dtype(CPU, "fp16") == torch.float16 and autocast_dtype(CPU, "fp32") is None
    with pytest.raises(ValueError, match="choose one of auto, bf16, fp16, fp32"):
        autocast_dtype(CPU, "fp8")


def test_the_scaler_skips_an_overflowing_step_and_shrinks_the_scale():
    layer = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    scaling = LossScaling(CPU, "fp16")
    start = scaling.scale
    before = layer.weight.detach().clone()
    with scaling.autocast():
        loss = layer(torch.full((2, 4), 1e30)).float().sum()  # inf in fp16
    scaling.backward(loss)
    scaling.step(opt)
    assert torch.equal(layer.weight, before)  # the step was skipped
    assert scaling.scale == start / 2  # GradScaler's backoff
    opt.zero_grad()
    with scaling.autocast():
        loss = layer(torch.full((1, 4), 0.25)).float().sum()  # x 32768 still fits in fp16
    scaling.backward(loss)
    scaling.unscale_(opt)
    torch.testing.assert_close(layer.weight.grad, torch.full((1, 4), 0.25))  # true gradients
    scaling.step(opt)
    assert not torch.equal(layer.weight, before)
    assert LossScaling(CPU, "bf16").state_dict() is None


def test_an_fp16_run_learns_saves_its_scale_and_resumes_to_the_same_weights(tiny_recipe):
    full = run(tiny_recipe, "run.name=full", "train.precision=fp16", "train.grad_clip=1.0")
    losses = [r["loss"] for r in read_metrics(full.run_dir)]
    assert all(map(torch.isfinite, torch.tensor(losses))) and losses[-1] < losses[0]
    state = load_checkpoint(full.run_dir / "checkpoints" / "last.pt")
    assert state["scaler"]["scale"] > 0 and "_growth_tracker" in state["scaler"]
    run(
        tiny_recipe,
        "run.name=cut",
        "train.precision=fp16",
        "train.grad_clip=1.0",
        extra=[("sigterm", faults.SigtermAt(3))],
    )
    resumed = run(
        tiny_recipe, "run.name=cut", "resume=true", "train.precision=fp16", "train.grad_clip=1.0"
    )
    a = state["model"]
    b = load_checkpoint(resumed.run_dir / "checkpoints" / "last.pt")["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
