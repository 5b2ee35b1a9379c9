"""Temporal sampling: which frame indices make a clip."""

from __future__ import annotations

import numpy as np


def random_clip_indices(
    num_video_frames: int, frames: int, stride: int, rng: np.random.Generator
) -> np.ndarray:
    """``frames`` indices ``stride`` apart from a uniformly random start.

    A video shorter than the clip span starts at 0 and repeats its last frame (as VideoMAE's
    loader does), so short videos still give full-length clips.
    """
    if num_video_frames < 1:
        raise ValueError("cannot sample a clip from a video with no frames")
    span = (frames - 1) * stride + 1
    start = int(rng.integers(0, num_video_frames - span + 1)) if num_video_frames >= span else 0
    return np.minimum(start + stride * np.arange(frames), num_video_frames - 1)


def sequence_clip_indices(
    num_video_frames: int,
    frames: int,
    stride: int,
    num_clips: int,
    gap: int,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """``num_clips`` clips in temporal order from one random start; clip k begins ``gap`` frames
    after clip k-1 ends (VCOP: clip k covers [s + k(l+g), s + k(l+g) + l) at stride 1).

    A video shorter than the whole tuple starts at 0 and repeats its last frame.
    """
    span = (frames - 1) * stride + 1
    step = frames * stride + gap  # from one clip's first frame to the next one's
    total = (num_clips - 1) * step + span
    start = int(rng.integers(0, num_video_frames - total + 1)) if num_video_frames >= total else 0
    last = num_video_frames - 1
    return [
        np.minimum(start + k * step + stride * np.arange(frames), last) for k in range(num_clips)
    ]
