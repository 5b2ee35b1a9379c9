"""SEVERE's step schedules: ``schedule.decay: multistep`` (torch's MultiStepLR on epochs, with an
optional warm-up as SlowFast's Charades schedule), and its misuse errors."""

import json

import pytest
import torch

from vssl_core.cli.main import main
from vssl_core.engine.optim import build_scheduler, lr_multiplier_schedule, scale_lr
from vssl_core.schema import OptimSection, ScheduleSection


def lrs(schedule: ScheduleSection, steps_per_epoch: int, total: int, base: float = 1.0) -> list:
    """The lr the optimizer uses at every step 0..total-1."""
    optim = OptimSection(lr=base, lr_scaling="none")
    lr = scale_lr(optim, schedule, 256)
    warmup = round(schedule.warmup_epochs * steps_per_epoch)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr.peak)
    multiplier = lr_multiplier_schedule(schedule, lr, warmup, total, steps_per_epoch)
    sched = build_scheduler(opt, multiplier, total)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_multistep_multiplies_by_gamma_at_each_milestone_epoch():
    # SEVERE's UCF 10^3: 16 epochs, MultiStepLR([6, 10, 14], 0.3), stepped per epoch
    got = lrs(ScheduleSection(decay="multistep", milestones=[6, 10, 14], gamma=0.3), 10, 160)
    want = [0.3 ** sum(step // 10 >= m for m in (6, 10, 14)) for step in range(160)]
    assert got == pytest.approx(want, rel=1e-9)
    assert got[59] == 1.0 and got[60] == pytest.approx(0.3) and got[159] == pytest.approx(0.027)


def test_multistep_after_a_warmup_counts_milestones_from_the_start():
    # SEVERE's Charades: 4 warm-up epochs from 1e-4 to 0.0375, x0.1 at epochs 41 and 49 of 57
    s = ScheduleSection(
        warmup_epochs=4, warmup_start_lr=1e-4, decay="multistep", milestones=[41, 49], gamma=0.1
    )
    got = lrs(s, 2, 114, base=0.0375)
    assert got[0] == pytest.approx(1e-4)
    assert got[4] == pytest.approx(1e-4 + (0.0375 - 1e-4) * 0.5)  # halfway through warm-up
    assert got[8] == got[81] == pytest.approx(0.0375)
    assert got[82] == got[97] == pytest.approx(0.00375)
    assert got[98] == got[113] == pytest.approx(0.000375)


def test_a_milestone_past_the_end_never_fires_and_gamma_defaults_to_a_tenth():
    got = lrs(ScheduleSection(decay="multistep", milestones=[2, 50]), 5, 20)
    assert got[:10] == [1.0] * 10 and got[10:] == pytest.approx([0.1] * 10)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (ScheduleSection(decay="cosine", milestones=[3]), "decay: multistep only"),
        (ScheduleSection(decay="constant", gamma=0.5), "decay: multistep only"),
        (ScheduleSection(decay="multistep"), "needs schedule.milestones"),
        (ScheduleSection(decay="multistep", milestones=[5, 3]), "increasing"),
        (ScheduleSection(decay="multistep", milestones=[0, 3]), "increasing epochs > 0"),
        (ScheduleSection(decay="multistep", milestones=[3], gamma=1.5), r"\(0, 1\]"),
        (ScheduleSection(decay="multistep", milestones=[3], min_lr=1e-5), "remove min_lr"),
    ],
)
def test_schedule_misuse_is_an_error_that_names_the_fix(schedule, message):
    lr = scale_lr(OptimSection(lr_scaling="none"), schedule, 256)
    with pytest.raises(ValueError, match=message):
        lr_multiplier_schedule(schedule, lr, 0, 100, 10)


@pytest.mark.slow
def test_the_trainer_steps_the_lr_at_the_milestone_epoch(tiny_recipe, tmp_path):
    """Through `vssl train`: 32 samples / batch 16 = 2 steps per epoch, milestone epoch 1."""
    recipe = tiny_recipe
    overrides = [
        f"run.output_root={tmp_path}",
        "train.max_steps=4",
        "log.every_steps=1",
        "log.progress_bar=false",
        "log.tensorboard=false",
        "batch.global_size=16",
        "optim.lr_scaling=none",
        "schedule.warmup_epochs=0",
        "schedule.decay=multistep",
        "schedule.milestones=[1]",
        "schedule.gamma=0.5",
        "schedule.min_lr=0.0",
    ]
    assert main(["train", str(recipe), *overrides]) == 0
    logged = [json.loads(line)["lr"] for line in (tmp_path / "tiny" / "metrics.jsonl").open()]
    peak = logged[0]  # the lr after step 1, for step 2
    assert logged[1:] == pytest.approx([peak * 0.5] * 3), logged
