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
