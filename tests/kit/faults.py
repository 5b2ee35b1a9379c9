"""Plugins that inject faults into a run: a SIGTERM at a chosen step, a NaN loss."""

from __future__ import annotations

import os
import signal

import torch

from vssl_core import component, hookimpl
from vssl_core.interfaces import (
    Objective,
    ObjectiveOutput,
    VideoDecodeError,
    VideoSample,
    ViewSpec,
)


class SigtermAt:
    """Sends this process SIGTERM at the end of step ``step`` (a cluster pre-empting the job)."""

    def __init__(self, step: int):
        self.step = step

    @hookimpl
    def vssl_step_end(self, run, step, metrics):
        if step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


class SigtermAtTrainEnd:
    """Sends this process SIGTERM after the last step, while the run ends (an evaluation's test
    pass, the final checkpoint): the signal arrives after the trainer's last stop check."""

    @hookimpl
    def vssl_train_end(self, run, step, status):
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


class _Unreadable:
    num_frames, fps = 8, 25.0

    def __init__(self, path: str):
        self.path = path

    def read(self, indices):
        raise VideoDecodeError(f"cannot decode video {self.path}: moov atom not found")


@component("dataset")
class broken_every:
    """moving_shapes whose every ``every``-th video cannot be decoded."""

    def __init__(self, every: int = 4, num_samples: int = 32):
        from vssl_datasets.moving_shapes import MovingShapes

        self.inner = MovingShapes(num_samples=num_samples, num_classes=4, num_frames=8, size=32)
        self.num_classes, self.every = 4, every

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int) -> VideoSample:
        sample = self.inner[index]
        if index % self.every == 0:
            sample.video = _Unreadable(f"videos/{index:03d}.mp4")
        return sample


@hookimpl
def vssl_register_components(registry, plugin):
    import sys

    registry.add_module(sys.modules[__name__], plugin)


class KillLoaderWorkerAt:
    """SIGKILLs this process's data-loader workers at the end of step ``step`` (what the
    kernel's out-of-memory killer does)."""

    def __init__(self, step: int):
        self.step = step

    @hookimpl
    def vssl_step_end(self, run, step, metrics):
        import multiprocessing

        if step == self.step:
            for child in multiprocessing.active_children():
                os.kill(child.pid, signal.SIGKILL)


class SignalAt:
    """Sends this process ``signum`` (``times`` times) at the end of step ``step``."""

    def __init__(self, step: int, signum: int = signal.SIGINT, times: int = 1):
        self.step, self.signum, self.times = step, signum, times

    @hookimpl
    def vssl_step_end(self, run, step, metrics):
        if step == self.step:
            for _ in range(self.times):
                os.kill(os.getpid(), self.signum)


@component("dataset")
class sigterm_on_build:
    """moving_shapes that receives SIGTERM while it is being built (a job pre-empted while it
    starts)."""

    def __init__(self, num_samples: int = 32):
        from vssl_datasets.moving_shapes import MovingShapes

        os.kill(os.getpid(), signal.SIGTERM)
        self.inner = MovingShapes(num_samples=num_samples, num_classes=4, num_frames=8, size=32)
        self.num_classes = 4

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int) -> VideoSample:
        return self.inner[index]


@component("dataset")
class stall_on_rank:
    """moving_shapes whose ``after``-th load on rank ``rank`` takes ``seconds`` (a stuck
    filesystem, a hung decoder); ``after: 0`` never stalls. Load in the training process
    (data.num_workers=0) so that the rank itself is the one stuck."""

    def __init__(self, rank: int = 1, after: int = 0, seconds: float = 60.0, num_samples: int = 32):
        from vssl_datasets.moving_shapes import MovingShapes

        self.inner = MovingShapes(num_samples=num_samples, num_classes=4, num_frames=8, size=32)
        self.num_classes, self.rank, self.after, self.seconds = 4, rank, after, seconds
        self.loads = 0

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int) -> VideoSample:
        import time

        self.loads += 1
        if self.loads == self.after and int(os.environ.get("RANK", "0")) == self.rank:
            time.sleep(self.seconds)
        return self.inner[index]


class KillRankAt:
    """SIGKILLs rank ``rank`` at the end of step ``step`` (the kernel's OOM killer, a node)."""

    def __init__(self, step: int, rank: int):
        self.step, self.rank = step, rank

    @hookimpl
    def vssl_step_end(self, run, step, metrics):
        if step == self.step and run.rank == self.rank:
            os.kill(os.getpid(), signal.SIGKILL)
