import copy
import math

import pytest
import torch
from torch import nn

from vssl_core.engine.optim import (
    ScaledLR,
    build_optimizer,
    build_scheduler,
    lr_multiplier_schedule,
    match_state_layouts,
    param_groups,
    scale_lr,
    warmup_steps,
)
from vssl_core.schema import OptimSection, ScheduleSection


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.pos_embed = nn.Parameter(torch.zeros(1, 3, 4))
        self.frozen = nn.Parameter(torch.zeros(4, 4), requires_grad=False)

    def no_weight_decay(self):
        return {"pos_embed"}


def test_no_weight_decay_on_norms_biases_and_named_params():
    net = Net()
    groups = {g["name"]: g for g in param_groups(net, 0.05)}
    ids = {name: id(p) for name, p in net.named_parameters()}
    assert {id(p) for p in groups["decay"]["params"]} == {ids["fc.weight"]}
    assert {id(p) for p in groups["no_decay"]["params"]} == {
        ids["fc.bias"],
        ids["norm.weight"],
        ids["norm.bias"],
        ids["pos_embed"],
    }
    assert groups["no_decay"]["weight_decay"] == 0.0 and groups["decay"]["weight_decay"] == 0.05


@pytest.mark.parametrize("rule,factor", [("linear", 2.0), ("sqrt", math.sqrt(2.0)), ("none", 1.0)])
def test_lr_scaling_rules(rule, factor):
    optim = OptimSection(lr=1.5e-4, lr_scaling=rule, lr_base_batch=256)
    lr = scale_lr(optim, ScheduleSection(min_lr=1e-5), global_batch=512)
    assert lr.peak == pytest.approx(1.5e-4 * factor) and lr.min_lr == pytest.approx(1e-5 * factor)


def test_warmup_from_zero_then_cosine_to_min_lr_per_step():
    net = Net()
    lr = scale_lr(OptimSection(lr=1.0, lr_scaling="none"), ScheduleSection(min_lr=0.1), 256)
    opt = build_optimizer(net, OptimSection(), lr.peak, torch.device("cpu"))
    sched = build_scheduler(
        opt, lr_multiplier_schedule(ScheduleSection(min_lr=0.1), lr, 10, 110), 110
    )
    lrs = []
    for _ in range(110):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.0)
    assert lrs[5] == pytest.approx(0.5)  # linear warmup
    assert lrs[10] == pytest.approx(1.0)  # peak after warmup
    assert lrs[60] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[109] == pytest.approx(0.1, abs=1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))


def test_sgd_uses_its_own_settings():
    opt = build_optimizer(
        Net(), OptimSection(name="sgd", momentum=0.8, nesterov=True), 0.1, torch.device("cpu")
    )
    assert isinstance(opt, torch.optim.SGD)
    assert opt.param_groups[0]["momentum"] == 0.8 and opt.param_groups[0]["nesterov"]


def test_optimizer_state_takes_the_layout_of_its_parameter():
    """Adam's moments saved from an NCDHW run and loaded for NDHWC weights: fused AdamW on a GPU
    needs them in the weights' strides; the values stay."""
    torch.manual_seed(0)
    ncdhw = nn.Conv3d(3, 8, 3)
    saved = torch.optim.AdamW(ncdhw.parameters(), lr=1e-3)
    ncdhw(torch.randn(2, 3, 4, 6, 6)).square().sum().backward()
    saved.step()

    ndhwc = nn.Conv3d(3, 8, 3)
    ndhwc.load_state_dict(ncdhw.state_dict())
    ndhwc.weight.data = ndhwc.weight.data.contiguous(memory_format=torch.channels_last_3d)
    loaded = torch.optim.AdamW(ndhwc.parameters(), lr=1e-3, fused=True)
    loaded.load_state_dict(copy.deepcopy(saved.state_dict()))  # no shared step counter
    moments = loaded.state[ndhwc.weight]
    assert moments["exp_avg"].stride() != ndhwc.weight.stride()  # what load_state_dict leaves
    before = {k: v.clone() for k, v in moments.items()}
    match_state_layouts(loaded)
    for key in ("exp_avg", "exp_avg_sq"):
        assert loaded.state[ndhwc.weight][key].stride() == ndhwc.weight.stride()
        assert torch.equal(loaded.state[ndhwc.weight][key], before[key])

    # one more step of each: the fused step on NDHWC weights now matches the plain one
    x = torch.randn(2, 3, 4, 6, 6)
    for model, opt in ((ncdhw, saved), (ndhwc, loaded)):
        opt.zero_grad()
        model(x).square().sum().backward()
        opt.step()
    torch.testing.assert_close(ndhwc.weight, ncdhw.weight, rtol=1e-6, atol=1e-7)


def test_a_run_cut_short_keeps_the_warmups_share_and_still_decays():
    # sigma.yaml: 8 epochs of 32 steps, 1 warmup epoch; train.max_steps=20 would warm up forever
    assert warmup_steps(1, 8, 32, 256) == (32, "")
    steps, note = warmup_steps(1, 8, 32, 20)
    assert steps == 2 and "shortened with the run: 20 of the recipe's 256 steps" in note
    assert warmup_steps(1, 1, 4, 8) == (4, "")  # longer than the recipe's epochs: as written
    assert warmup_steps(0, 8, 32, 20) == (0, "")
    assert warmup_steps(8, 8, 32, 20)[0] == 19  # the whole schedule is warmup: still one step down
    lr = ScaledLR(peak=1.0, min_lr=0.0, warmup_start=0.0, factor=1.0, rule="none")
    schedule = ScheduleSection(warmup_epochs=1, decay="cosine")
    multiplier = lr_multiplier_schedule(schedule, lr, steps, 20, 32)
    values = [multiplier(s / 20) for s in range(20)]
    assert max(values) == pytest.approx(1.0) and values[-1] < 0.05  # peaks, then decays
