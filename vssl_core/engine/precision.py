"""Mixed precision for the trainer and the evaluation: bf16 autocast, or fp16 autocast with a
loss scaler (``torch.amp.GradScaler``) for GPUs without bf16 (V100, T4, ...).

``train.precision``: "auto" (bf16 on a GPU, fp32 on a CPU), "bf16", "fp16", "fp32". With fp16
the loss is scaled before the backward so small gradients survive the half-precision range,
the gradients are unscaled before clipping, and a step whose gradients overflowed is skipped
while the scale shrinks (the scaler's rule); the scale is saved in checkpoints, so a resumed run
continues with it. fp16 works on a CPU too (torch >= 2.3), where it is only useful for tests.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

PRECISIONS = ("auto", "bf16", "fp16", "fp32")


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` (None: fp32, no autocast)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    dtype = autocast_dtype(device, precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


class LossScaling:
    """The fp16 loss scaler around backward and the optimizer step (a no-op for the other
    precisions, so the trainer's step reads the same for all)."""

    def __init__(self, device: torch.device, precision: str) -> None:
        self.device, self.precision = device, precision
        self.scaler = (
            torch.amp.GradScaler(device.type)
            if autocast_dtype(device, precision) == torch.float16
            else None
        )

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.device, self.precision)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        """Gradients back to their true scale (before clipping by norm)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """The optimizer step; with fp16 skipped when a gradient overflowed, then the scale is
        updated."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any] | None:
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)

    @property
    def scale(self) -> float | None:
        """The current loss scale (None without fp16); reading it syncs a GPU."""
        return float(self.scaler.get_scale()) if self.scaler is not None else None
