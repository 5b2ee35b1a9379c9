"""Plugins that inject faults into a run: a SIGTERM at a chosen step, a NaN loss."""

from __future__ import annotations

import os
import signal

import torch

from vssl_core import component, hookimpl
from vssl_core.interfaces import Objective, ObjectiveOutput, ViewSpec


class SigtermAt:
    """Sends this process SIGTERM at the end of step ``step`` (a cluster pre-empting the job)."""

    def __init__(self, step: int):
        self.step = step

    @hookimpl
    def vssl_step_end(self, run, step, metrics):
        if step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


@component("objective")
class nan_after(Objective):
    """A regression objective whose loss turns NaN at one step (to test non-finite handling)."""

    def __init__(self, backbone: torch.nn.Module, nan_at_call: int = 3):
        super().__init__()
        self.backbone, self.nan_at_call, self.calls = backbone, nan_at_call, 0

    def views(self) -> ViewSpec:
        t, h, _ = self.backbone.input_size
        return ViewSpec(frames=t, crop_size=h)

    def forward(self, batch) -> ObjectiveOutput:
        self.calls += 1
        loss = self.backbone(batch.clips[0]).pow(2).mean()
        if self.calls == self.nan_at_call:
            loss = loss * float("nan")
        return ObjectiveOutput(loss)


@hookimpl
def vssl_register_components(registry, plugin):
    import sys

    registry.add_module(sys.modules[__name__], plugin)
