"""Value schedules over a training run, for objectives (EMA momentum, teacher temperature, loss
weights). They take the step and the run's length from :class:`vssl_core.interfaces.RunInfo`,
so an objective needs no hook to know them.

Each works on Python floats (in ``after_step``) and on 0-dim tensors (inside a compiled
``forward``, with ``Objective.run_fraction()``), with the same formula.
"""

from __future__ import annotations

import math

import torch

Number = float | torch.Tensor


def cosine_ramp(start: float, end: float, fraction: Number) -> Number:
    """``start`` at fraction 0 to ``end`` at fraction 1 along half a cosine:
    ``end - (end - start) * (cos(pi * fraction) + 1) / 2``. BYOL's and MoCo v3's momentum
    (start = the base momentum, end = 1) and DINO's teacher momentum follow it."""
    if torch.is_tensor(fraction):
        cos = torch.cos(math.pi * fraction.clamp(0.0, 1.0))
    else:
        cos = math.cos(math.pi * min(max(fraction, 0.0), 1.0))
    return end - (end - start) * (cos + 1.0) / 2.0


def linear_ramp(start: float, end: float, fraction: Number) -> Number:
    """``start`` at fraction 0 to ``end`` at fraction 1 in a straight line (clamped outside)."""
    if torch.is_tensor(fraction):
        return start + (end - start) * fraction.clamp(0.0, 1.0)
    return start + (end - start) * min(max(fraction, 0.0), 1.0)
