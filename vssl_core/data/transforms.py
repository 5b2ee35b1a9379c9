"""Clip-consistent spatial augmentation: one random draw per clip, applied to every frame; and
the deterministic test-time crops (resize the short side, centre or three crops).

Clips are uint8 tensors [C, T, H, W]; crops are drawn with a per-sample numpy generator so that
augmentation depends only on (seed, epoch, index). A crop is a :data:`Box` in the pixels of the
decoded frame, then resized to the output size: one interpolation per frame, however the crop
was defined.

Shape legend: C channels (RGB), T frames, H height, W width.
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
    """The largest centred square."""
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def eval_crop_boxes(
    height: int, width: int, size: int, num_crops: int, short_side: int | None = None
) -> list[Box]:
    """Test-time crops of a height x width frame, as boxes in its own pixels: what resizing the
    short side to ``short_side`` (default ``size``) and cropping size x size gives, once each
    box is resized to size (:func:`crop_resize`).

    ``num_crops`` 1: the centre crop (SEVERE: short side 128, crop 112). 3: the first, centre and
    last crop along the long side (VideoMAE's 3-crop test: left/centre/right for landscape,
    top/centre/bottom for portrait frames; three identical crops for a square frame).
    """
    short_side = size if short_side is None else short_side
    if num_crops not in (1, 3):
        raise ValueError(
            f"num_crops must be 1 (centre) or 3 (along the long side), got {num_crops}"
        )
    if short_side < size:
        raise ValueError(f"short_side {short_side} must be >= the crop size {size}")
    side = min(height, width, max(1, round(size * min(height, width) / short_side)))
    centre = ((height - side) // 2, (width - side) // 2)
    if num_crops == 1:
        return [(*centre, side, side)]
    if width >= height:
        return [(centre[0], left, side, side) for left in (0, centre[1], width - side)]
    return [(top, centre[1], side, side) for top in (0, centre[0], height - side)]


def crop_resize(clip_CTHW: torch.Tensor, box: Box, size: int) -> torch.Tensor:
    """Crop every frame to ``box`` and resize (bilinear) to size x size; stays uint8."""
    top, left, h, w = box
    crop = clip_CTHW[:, :, top : top + h, left : left + w]
    if h == size and w == size:
        return crop.contiguous()
    frames = crop.permute(1, 0, 2, 3).float()  # T, C, h, w
    out = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8).permute(1, 0, 2, 3).contiguous()


def draw_box(
    kind: str,
    height: int,
    width: int,
    size: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
) -> Box:
    """One training crop of the kind a :class:`ViewSpec` names ("none": the centre square)."""
    if kind == "multiscale_crop":
        return multiscale_crop_box(height, width, size, rng)
    if kind == "random_resized_crop":
        return random_resized_crop_box(height, width, rng, scale=scale)
    if kind == "none":
        return center_box(height, width)
    raise ValueError(f"unknown augmentation {kind!r}")
