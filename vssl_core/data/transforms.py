"""Clip-consistent spatial augmentation: one random draw per clip, applied to every frame.

Clips are uint8 tensors [C, T, H, W]; crops are drawn with a per-sample numpy generator so that
augmentation depends only on (seed, epoch, index).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

Box = tuple[int, int, int, int]  # top, left, height, width

MULTISCALE_SCALES = (1.0, 0.875, 0.75, 0.66)


def multiscale_crop_box(height: int, width: int, size: int, rng: np.random.Generator) -> Box:
    """VideoMAE's multi-scale crop (GroupMultiScaleCrop, max_distort 1, 13 fixed offsets)."""
    base = min(height, width)
    sides = [int(base * s) for s in MULTISCALE_SCALES]
    sides = [size if abs(s - size) < 3 else s for s in sides]
    pairs = [(w, h) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= 1]
    crop_w, crop_h = pairs[int(rng.integers(len(pairs)))]
    step_w, step_h = (width - crop_w) // 4, (height - crop_h) // 4
    offsets = [
        (0, 0),
        (4, 0),
        (0, 4),
        (4, 4),
        (2, 2),
        (0, 2),
        (4, 2),
        (2, 4),
        (2, 0),
        (1, 1),
        (3, 1),
        (1, 3),
        (3, 3),
    ]  # corners, centre, edge centres, quarter points
    ox, oy = offsets[int(rng.integers(len(offsets)))]
    return oy * step_h, ox * step_w, crop_h, crop_w


def random_resized_crop_box(
    height: int,
    width: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> Box:
    """Inception-style crop: random area fraction and aspect ratio; centre crop as fallback."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def center_box(height: int, width: int) -> Box:
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def crop_resize(clip_CTHW: torch.Tensor, box: Box, size: int) -> torch.Tensor:
    """Crop every frame to ``box`` and resize (bilinear) to size x size; stays uint8."""
    top, left, h, w = box
    crop = clip_CTHW[:, :, top : top + h, left : left + w]
    if h == size and w == size:
        return crop.contiguous()
    frames = crop.permute(1, 0, 2, 3).float()  # T, C, h, w
    out = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8).permute(1, 0, 2, 3).contiguous()


def draw_box(kind: str, height: int, width: int, size: int, rng: np.random.Generator) -> Box:
    if kind == "multiscale_crop":
        return multiscale_crop_box(height, width, size, rng)
    if kind == "random_resized_crop":
        return random_resized_crop_box(height, width, rng)
    if kind == "none":
        return center_box(height, width)
    raise ValueError(f"unknown augmentation {kind!r}")
