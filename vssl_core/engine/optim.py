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
    """Decayed weights, and no decay on norms, biases and what the model names in
    ``no_weight_decay()`` (position embeddings, mask/cls tokens).

    A model with an ``lr_scale(name) -> float`` method (layer-wise lr decay) gets one group per
    (decay, scale), each with its ``lr_scale``; groups come in descending scale, so group 0
    carries the full lr that the trainer logs.
    """
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    scale_of = getattr(model, "lr_scale", None)
    buckets: dict[tuple[float, bool], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = not (p.ndim <= 1 or name.endswith(".bias") or name in skip)
        scale = float(scale_of(name)) if callable(scale_of) else 1.0
        buckets.setdefault((scale, decay), []).append(p)
    groups = []
    for (scale, decay), params in sorted(buckets.items(), key=lambda kv: (-kv[0][0], not kv[0][1])):
        name = "decay" if decay else "no_decay"
        groups.append(
            {
                "params": params,
                "weight_decay": weight_decay if decay else 0.0,
                "name": name if scale == 1.0 else f"{name}_x{scale:.4g}",
                "lr_scale": scale,
            }
        )
    return groups


def build_optimizer(model: nn.Module, optim: OptimSection, lr: float, device: torch.device):
    groups = param_groups(model, optim.weight_decay)
    for g in groups:  # the scheduler scales each group's own initial lr
        g["lr"] = lr * g["lr_scale"]
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


class MultiStepMultiplier(ParamScheduler):
    """1.0, times ``gamma`` at each milestone passed; milestones are fractions of training
    (torch's MultiStepLR, on the trainer's progress scale)."""

    def __init__(self, milestones: list[float], gamma: float) -> None:
        self.milestones, self.gamma = sorted(milestones), gamma

    def __call__(self, where: float) -> float:
        passed = sum(where + 1e-12 >= m for m in self.milestones)
        return self.gamma**passed


def match_state_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give each per-parameter state tensor (momentum, Adam's moments) its parameter's strides.

    ``load_state_dict`` keeps the checkpoint's strides. A run resumed in the other memory layout
    (``train.channels_last``) would then hold NCDHW moments for NDHWC weights, and fused AdamW
    on a GPU walks the weights, gradients and moments as one flat memory order each: it
    requires their strides to agree.
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for key, value in state.items():
                if (
                    torch.is_tensor(value)
                    and value.shape == param.shape
                    and value.stride() != param.stride()
                ):
                    state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def _check_schedule(schedule: ScheduleSection) -> None:
    """Keys that only one decay uses are errors with the others (nothing is silently ignored)."""
    if schedule.decay != "multistep":
        if schedule.milestones or schedule.gamma is not None:
            raise ValueError(
                f"schedule.milestones and schedule.gamma are used by decay: multistep only, but "
                f"decay is {schedule.decay!r}; remove them or set schedule.decay: multistep"
            )
        return
    ms = list(schedule.milestones)
    if not ms:
        raise ValueError(
            "schedule.decay: multistep needs schedule.milestones, the epochs at which the lr is "
            "multiplied by gamma (e.g. [6, 10, 14]); or use schedule.decay: constant"
        )
    if any(m <= 0 for m in ms) or sorted(set(ms)) != ms:
        raise ValueError(f"schedule.milestones {ms}: need increasing epochs > 0, e.g. [6, 10, 14]")
    if schedule.gamma is not None and not 0 < schedule.gamma <= 1:
        raise ValueError(f"schedule.gamma must be in (0, 1], got {schedule.gamma}")
    if schedule.min_lr:
        raise ValueError(
            f"schedule.min_lr ({schedule.min_lr}) is the end of a cosine or linear decay; "
            "multistep ends at lr x gamma^len(milestones): remove min_lr"
        )


def warmup_steps(
    warmup_epochs: float, epochs: int, steps_per_epoch: int, total_steps: int
) -> tuple[int, str]:
    """The warmup's length in steps, and a note when it differs from ``warmup_epochs``.

    The rule: the warmup lasts ``warmup_epochs`` epochs, except in a run that ``train.max_steps``
    cuts short of the recipe's ``epochs``: there the whole schedule shrinks with the run, warmup
    included, so the warmup keeps its share of the run (``warmup_epochs / epochs``) and the lr
    still peaks and decays. A cut-short run would otherwise spend all of its steps warming up.
    """
    full = round(warmup_epochs * steps_per_epoch)
    planned = epochs * steps_per_epoch
    if full == 0 or total_steps >= planned:
        return full, ""
    scaled = min(round(full * total_steps / planned), max(total_steps - 1, 0))
    return scaled, (
        f" ({warmup_epochs:g} epoch(s) = {full} steps, shortened with the run: "
        f"{total_steps} of the recipe's {planned} steps)"
    )


def lr_multiplier_schedule(
    schedule: ScheduleSection,
    lr: ScaledLR,
    warmup_steps: int,
    total_steps: int,
    steps_per_epoch: int = 1,
) -> ParamScheduler:
    """The lr as a fraction of the peak over training progress in [0, 1) (fvcore schedulers).

    Multistep milestones are epochs from the start of training (warmup included, as SlowFast
    counts them), turned into steps with ``steps_per_epoch``; one past the end never fires.
    """
    _check_schedule(schedule)
    end = lr.min_lr / lr.peak if lr.peak > 0 else 0.0
    if schedule.decay == "multistep":
        at = [round(m * steps_per_epoch) / max(total_steps, 1) for m in schedule.milestones]
        decay: ParamScheduler = MultiStepMultiplier(
            at, 0.1 if schedule.gamma is None else schedule.gamma
        )
    else:
        decay = {
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
    # milestones are absolute ("fixed"); the other decays span what is left after warmup
    after = "fixed" if schedule.decay == "multistep" else "rescaled"
    return CompositeParamScheduler(
        [LinearParamScheduler(start, 1.0), decay],
        lengths=[warm, 1 - warm],
        interval_scaling=["rescaled", after],
    )


def build_scheduler(optimizer: torch.optim.Optimizer, multiplier: ParamScheduler, total_steps: int):
    """A LambdaLR stepping per optimizer step; its state is the step count (saved in checkpoints)."""

    def at(step: int) -> float:
        return multiplier(min(step / max(total_steps, 1), 1 - 1e-9))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, at)
