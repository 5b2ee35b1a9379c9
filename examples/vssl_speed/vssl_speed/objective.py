"""Playback-speed prediction: classify the frame stride a clip was sampled at.

The idea of SpeedNet (Benaim et al., "SpeedNet: Learning the Speediness in Videos", CVPR 2020) and
PRP (Yao et al., "Video Playback Rate Perception for Self-supervised Spatio-Temporal
Representation Learning", CVPR 2020): a network that can tell whether a video plays at its
natural speed or faster has to know how things move. Our own minimal version of it: each clip
is played at one of ``speeds`` (a stride over the decoded frames, e.g. 1, 2, 4 or 8), and a
linear head on the backbone's pooled features classifies which.

Data path: the loader decodes, per sample, one window long enough for the fastest speed
(``(T - 1) * max(speeds) + 1`` frames at ``base_stride``; one spatial crop for the window). On
the device, each clip draws its speed and its start inside the window from its sample key
(``vssl_core.random.keyed_uniform`` on ``batch.keys``), so the draw is the same on any rank and
after a resume, and picks T frames with one ``gather``. Every speed therefore sees the same
decoded content and crop statistics; only the temporal sampling differs.

Shape legend: B batch, C channels, S frames of the decoded window, T frames fed to the backbone,
H height, W width, D backbone feature width, K speed classes.
"""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vssl_core import component
from vssl_core.interfaces import Batch, Objective, ObjectiveOutput, ViewSpec
from vssl_core.random import keyed_uniform

__all__ = ["PlaybackSpeed", "check_speeds", "draw_speeds_and_starts", "play_at"]

SPEED_STREAM = 0x535044  # "SPD": separates these draws from other keyed draws of a sample


def check_speeds(speeds: tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """The speeds as a tuple; at least two, positive and strictly increasing."""
    speeds = tuple(speeds)
    if len(speeds) < 2 or any(s < 1 for s in speeds) or list(speeds) != sorted(set(speeds)):
        raise ValueError(
            f"playback_speed speeds={list(speeds)!r}: give at least two distinct frame strides "
            ">= 1 in increasing order, e.g. [1, 2, 4, 8]"
        )
    return speeds


def draw_speeds_and_starts(
    keys_B: torch.Tensor, num_speeds: int, window: int, frames: int, speeds_K: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per clip, a speed class [B] (uniform over K) and a start frame [B] (uniform over the
    starts that keep all ``frames`` frames inside the ``window``); row b depends only on
    ``keys_B[b]``."""
    u_B2 = keyed_uniform(keys_B, 2, stream=SPEED_STREAM)
    label_B = (u_B2[:, 0] * num_speeds).long().clamp_(max=num_speeds - 1)
    span_B = (frames - 1) * speeds_K[label_B] + 1
    slack_B = window - span_B  # >= 0: the window is sized for the fastest speed
    assert bool((slack_B >= 0).all()), f"window {window} too short for spans {span_B.tolist()}"
    start_B = torch.minimum((u_B2[:, 1] * (slack_B + 1)).long(), slack_B)
    return label_B, start_B


def play_at(
    window_BCSHW: torch.Tensor, stride_B: torch.Tensor, start_B: torch.Tensor, frames: int
) -> torch.Tensor:
    """Clip b = frames ``start_B[b] + stride_B[b] * t`` (t < ``frames``) of window b."""
    B, C, S, H, W = window_BCSHW.shape
    assert stride_B.shape == start_B.shape == (B,), (
        f"strides {list(stride_B.shape)} and starts {list(start_B.shape)} for {B} windows"
    )
    t_T = torch.arange(frames, device=window_BCSHW.device)
    index_BT = start_B.to(t_T.device)[:, None] + stride_B.to(t_T.device)[:, None] * t_T
    assert int(index_BT.max()) < S, f"frame {int(index_BT.max())} outside a window of {S}"
    index_BCTHW = index_BT.view(B, 1, frames, 1, 1).expand(B, C, frames, H, W)
    return window_BCSHW.gather(2, index_BCTHW)


@component("objective", name="playback_speed")
class PlaybackSpeed(Objective):
    """Playback-speed prediction: K-way classification of the stride a clip was played at."""

    def __init__(
        self,
        backbone: nn.Module,
        speeds: tuple[int, ...] = (1, 2, 4, 8),
        base_stride: int = 1,
        augmentation: Literal["none", "multiscale_crop", "random_resized_crop"] = "multiscale_crop",
        flip: bool = True,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.speeds = check_speeds(speeds)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"playback_speed dropout={dropout!r}: choose a probability in [0, 1)")
        self.frames, height, _ = backbone.input_size
        self.window = (self.frames - 1) * self.speeds[-1] + 1
        self._views = ViewSpec(  # built now so a bad stride fails at build time
            frames=self.window,
            crop_size=height,
            stride=base_stride,
            augmentation=augmentation,
            flip=flip,  # a mirror image moves at the same speed
        )
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(backbone.num_features, len(self.speeds))
        self.register_buffer("speeds_K", torch.tensor(self.speeds), persistent=False)

    def views(self) -> ViewSpec:
        return self._views

    def sample(self, window_BCSHW: torch.Tensor, keys_B: torch.Tensor):
        """The on-device batch transform: clips [B, C, T, H, W] and their speed classes [B]."""
        keys_B = keys_B.to(window_BCSHW.device)
        label_B, start_B = draw_speeds_and_starts(
            keys_B, len(self.speeds), self.window, self.frames, self.speeds_K
        )
        return play_at(window_BCSHW, self.speeds_K[label_B], start_B, self.frames), label_B

    def forward(self, batch: Batch) -> ObjectiveOutput:
        window_BCSHW = batch.clips[0]
        B, S = window_BCSHW.shape[0], window_BCSHW.shape[2]
        assert S == self.window, f"got windows of {S} frames, views() asked for {self.window}"
        assert batch.keys.shape == (B,), f"keys {list(batch.keys.shape)} for a batch of {B}"
        clip_BCTHW, label_B = self.sample(window_BCSHW, batch.keys)
        logits_BK = self.fc(self.dropout(self.backbone(clip_BCTHW)))
        assert logits_BK.shape == (B, len(self.speeds)), (
            f"logits {list(logits_BK.shape)}, expected [{B}, {len(self.speeds)}]"
        )
        loss = F.cross_entropy(logits_BK.float(), label_B)
        acc = (logits_BK.detach().argmax(1) == label_B).float().mean()
        return ObjectiveOutput(loss=loss, metrics={"acc": acc})
