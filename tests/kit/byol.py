"""A BYOL-style objective, as a plugin author writes it from the docs alone: an online encoder
with projector and predictor, a target twin moved by an EMA whose momentum follows a cosine over
the run. It reads the run's length from ``self.run`` (no hook, no DDP unwrapping).

``vssl -p kit.byol train ...`` registers it (tests/ is importable in the CLI subprocesses).

Shape legend: B batch, C channels, T frames, H height, W width, D embedding width.
"""

from __future__ import annotations

import copy
import sys

import torch
import torch.nn.functional as F
from torch import nn

from vssl_core import component, hookimpl
from vssl_core.interfaces import Batch, Objective, ObjectiveOutput, ViewSpec
from vssl_core.nn import momentum_update_
from vssl_core.nn.schedules import cosine_ramp


def mlp(width_in: int, hidden: int, width_out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(width_in, hidden), nn.ReLU(), nn.Linear(hidden, width_out))


@component("objective")
class byol(Objective):
    """BYOL: predict the target network's embedding of another view; EMA target."""

    def __init__(self, backbone: nn.Module, dim: int = 16, base_momentum: float = 0.9) -> None:
        super().__init__()
        self.backbone, self.base_momentum = backbone, base_momentum
        self.projector = mlp(backbone.num_features, 32, dim)
        self.predictor = mlp(dim, 32, dim)
        self.target_backbone = copy.deepcopy(backbone).requires_grad_(False)
        self.target_projector = copy.deepcopy(self.projector).requires_grad_(False)
        self.momenta: list[float] = []  # what after_step used (for tests)

    def views(self) -> ViewSpec:
        frames, size, _ = self.backbone.input_size
        return ViewSpec(frames=frames, crop_size=size, num_clips=2, augmentation="multiscale_crop")

    def forward(self, batch: Batch) -> ObjectiveOutput:
        a_BCTHW, b_BCTHW = batch.clips
        online = torch.cat([a_BCTHW, b_BCTHW])
        p_2BD = self.predictor(self.projector(self.backbone(online)))
        with torch.no_grad():
            z_2BD = self.target_projector(self.target_backbone(online))
        p_a, p_b = F.normalize(p_2BD, dim=1).chunk(2)
        z_a, z_b = F.normalize(z_2BD, dim=1).chunk(2)
        loss = (4 - 2 * (p_a * z_b).sum(1) - 2 * (p_b * z_a).sum(1)).mean()
        return ObjectiveOutput(loss.float())

    def momentum(self, step: int) -> float:
        return cosine_ramp(self.base_momentum, 1.0, self.run.fraction(step))

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        m = self.momentum(step)
        self.momenta.append(m)
        momentum_update_(self.target_backbone, self.backbone, m)
        momentum_update_(self.target_projector, self.projector, m)


@hookimpl
def vssl_register_components(registry, plugin):
    registry.add_module(sys.modules[__name__], plugin)
