"""Optimizers with parameter groups, learning-rate scaling and fvcore warmup+decay schedules."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from fvcore.common.param_scheduler import (
    CompositeParamScheduler,
    ConstantParamScheduler,
    CosineParamScheduler,
    LinearParamScheduler,
    ParamScheduler,
)
from torch import nn

from vssl_core.schema import OptimSection, ScheduleSection


@dataclass(frozen=True)
class ScaledLR:
    peak: float
    min_lr: float
    warmup_start: float
    factor: float
    rule: str

    def describe(self, base: float, global_batch: int, base_batch: int) -> str:
        how = {
            "linear": f"x {global_batch}/{base_batch}",
            "sqrt": f"x sqrt({global_batch}/{base_batch})",
            "none": "(no scaling)",
        }[self.rule]
        return f"lr {self.peak:.4g} = base lr {base:.4g} {how}; min lr {self.min_lr:.4g}"


def scale_lr(optim: OptimSection, schedule: ScheduleSection, global_batch: int) -> ScaledLR:
    """Scale lr, min lr and warmup start by the batch-size rule (linear: as VideoMAE and MoCo)."""
    ratio = global_batch / optim.lr_base_batch
    factor = {"linear": ratio, "sqrt": math.sqrt(ratio), "none": 1.0}[optim.lr_scaling]
    return ScaledLR(
        optim.lr * factor,
        schedule.min_lr * factor,
        schedule.warmup_start_lr * factor,
        factor,
        optim.lr_scaling,
    )


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: decayed weights, and no decay on norms, biases and what the model names
    in ``no_weight_decay()`` (position embeddings, mask/cls tokens)."""
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim <= 1 or name.endswith(".bias") or name in skip:
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay, "name": "decay"},
        {"params": no_decay, "weight_decay": 0.0, "name": "no_decay"},
    ]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, optim: OptimSection, lr: float, device: torch.device):
    groups = param_groups(model, optim.weight_decay)
    if optim.name == "adamw":
        return torch.optim.AdamW(
            groups,
            lr=lr,
            betas=tuple(optim.betas or (0.9, 0.999)),
            eps=optim.eps or 1e-8,
            fused=device.type == "cuda",  # one kernel for all parameters; CPU uses the foreach path
        )
    if optim.name == "sgd":
        return torch.optim.SGD(
            groups,
            lr=lr,
            momentum=0.9 if optim.momentum is None else optim.momentum,
            nesterov=bool(optim.nesterov),
        )
    raise ValueError(f"unknown optimizer {optim.name!r}")


def lr_multiplier_schedule(
    schedule: ScheduleSection, lr: ScaledLR, warmup_steps: int, total_steps: int
) -> ParamScheduler:
    """The lr as a fraction of the peak over training progress in [0, 1) (fvcore schedulers)."""
    end = lr.min_lr / lr.peak if lr.peak > 0 else 0.0
    decay: ParamScheduler = {
        "cosine": CosineParamScheduler(1.0, end),
        "linear": LinearParamScheduler(1.0, end),
        "constant": ConstantParamScheduler(1.0),
    }[schedule.decay]
    warm = min(warmup_steps / total_steps, 1.0) if total_steps else 0.0
    if warm <= 0:
        return decay
    start = lr.warmup_start / lr.peak if lr.peak > 0 else 0.0
    if warm >= 1:
        return LinearParamScheduler(start, 1.0)
    return CompositeParamScheduler(
        [LinearParamScheduler(start, 1.0), decay],
        lengths=[warm, 1 - warm],
        interval_scaling=["rescaled", "rescaled"],
    )


def build_scheduler(optimizer: torch.optim.Optimizer, multiplier: ParamScheduler, total_steps: int):
    """A LambdaLR stepping per optimizer step; its state is the step count (saved in checkpoints)."""

    def at(step: int) -> float:
        return multiplier(min(step / max(total_steps, 1), 1 - 1e-9))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, at)
