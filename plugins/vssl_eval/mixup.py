"""Batch-mode mixup / cutmix with label smoothing folded into the targets.

Follows the behaviour VideoMAE and SIGMA fine-tuning use (timm ``Mixup`` in mode "batch",
spec videomae-sigma §1.10): one draw per batch; with probability ``prob`` the batch is mixed
with its reverse (sample b with sample B-1-b), by cutmix with probability ``switch_prob`` (when
both are enabled), else by mixup; lam ~ Beta(alpha, alpha); a cutmix box covers a fraction
1 - lam of every frame (the same box for all frames) and lam is then corrected to the area
actually kept. Targets are smoothed one-hots (off = s / K, on = 1 - s + off) mixed with the
same lam, for a soft-target cross-entropy.

The draw comes from the batch's first sample key, so a step mixes the same way after a resume.

Shape legend: B batch, C channels, T frames, H height, W width, K classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vssl_core.random import numpy_rng

_MIX_STREAM = 0x4D49


@dataclass(frozen=True)
class MixSettings:
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    switch_prob: float = 0.5
    prob: float = 1.0
    smoothing: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.prob > 0 and (self.mixup_alpha > 0 or self.cutmix_alpha > 0)


def smooth_one_hot(labels_B: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """[B] class indices -> [B, K] targets with ``smoothing`` spread evenly over all classes."""
    off = smoothing / num_classes
    targets_BK = torch.full(
        (labels_B.shape[0], num_classes), off, device=labels_B.device, dtype=torch.float32
    )
    return targets_BK.scatter_(1, labels_B.long().view(-1, 1), 1.0 - smoothing + off)


def draw_mix(key: int, s: MixSettings, height: int, width: int) -> tuple[float, tuple | None]:
    """(lam, cutmix box (top, bottom, left, right) or None) for one batch."""
    rng = numpy_rng(key, _MIX_STREAM)
    if rng.random() >= s.prob:
        return 1.0, None
    use_cutmix = s.cutmix_alpha > 0 and (s.mixup_alpha <= 0 or rng.random() < s.switch_prob)
    lam = float(rng.beta(*(2 * [s.cutmix_alpha if use_cutmix else s.mixup_alpha])))
    if not use_cutmix:
        return lam, None
    cut = np.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * cut), int(width * cut)
    cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
    top, bottom = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
    left, right = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
    lam = 1.0 - float((bottom - top) * (right - left)) / (height * width)
    return lam, (int(top), int(bottom), int(left), int(right))


def mix_batch(
    clip_BCTHW: torch.Tensor, labels_B: torch.Tensor, num_classes: int, key: int, s: MixSettings
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The mixed clips, their soft targets [B, K] and the lam used."""
    if clip_BCTHW.ndim != 5 or labels_B.ndim != 1 or labels_B.shape[0] != clip_BCTHW.shape[0]:
        raise ValueError(
            f"mix_batch expects clips [B, C, T, H, W] and labels [B], got "
            f"{list(clip_BCTHW.shape)} and {list(labels_B.shape)}"
        )
    lam, box = draw_mix(key, s, clip_BCTHW.shape[-2], clip_BCTHW.shape[-1])
    flipped = clip_BCTHW.flip(0)
    if box is not None:
        top, bottom, left, right = box
        clip_BCTHW = clip_BCTHW.clone()
        clip_BCTHW[..., top:bottom, left:right] = flipped[..., top:bottom, left:right]
    elif lam < 1.0:
        clip_BCTHW = clip_BCTHW * lam + flipped * (1.0 - lam)
    y1_BK = smooth_one_hot(labels_B, num_classes, s.smoothing)
    targets_BK = y1_BK * lam + y1_BK.flip(0) * (1.0 - lam)
    return clip_BCTHW, targets_BK, lam
