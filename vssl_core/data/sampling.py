"""Temporal sampling: which frame indices make a clip.

Training samplers draw from a per-sample generator (so a sample's frames depend only on its key);
test samplers are deterministic. Every function returns int64 index arrays of ``frames`` entries,
all inside [0, num_video_frames). A video shorter than a clip is padded by ``pad``:
"repeat_last" repeats the last frame (VideoMAE's loader), "loop" starts again from the first
frame (SEVERE's ``pad_missing``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PADS = ("repeat_last", "loop")


def pad_indices(idx: np.ndarray, num_video_frames: int, pad: str = "repeat_last") -> np.ndarray:
    """Map indices past the end of the video back inside it."""
    if num_video_frames < 1:
        raise ValueError("cannot sample a clip from a video with no frames")
    if pad == "repeat_last":
        return np.minimum(idx, num_video_frames - 1)
    if pad == "loop":
        return idx % num_video_frames
    raise ValueError(f"pad {pad!r}: choose one of {PADS}")


def random_clip_indices(
    num_video_frames: int,
    frames: int,
    stride: int,
    rng: np.random.Generator,
    pad: str = "repeat_last",
) -> np.ndarray:
    """``frames`` indices ``stride`` apart from a uniformly random start.

    A video shorter than the clip span starts at 0 and is padded (``pad``), so short videos
    still give full-length clips.
    """
    if num_video_frames < 1:
        raise ValueError("cannot sample a clip from a video with no frames")
    span = (frames - 1) * stride + 1
    start = int(rng.integers(0, num_video_frames - span + 1)) if num_video_frames >= span else 0
    return pad_indices(start + stride * np.arange(frames), num_video_frames, pad)


def jittered_clip_indices(
    num_video_frames: int,
    frames: int,
    strides: Sequence[int],
    jitter: bool,
    rng: np.random.Generator,
    pad: str = "repeat_last",
) -> np.ndarray:
    """CtP's RandomFrameSampler: a stride drawn uniformly from ``strides``, a random start, and
    with ``jitter`` every index moved forward by its own U{0..stride-1}.

    With jitter a clip covers ``frames * stride`` frames (the last index can move stride - 1
    past the last regular one); without, ``(frames - 1) * stride + 1``.
    """
    if num_video_frames < 1:
        raise ValueError("cannot sample a clip from a video with no frames")
    stride = int(strides[int(rng.integers(len(strides)))]) if len(strides) > 1 else int(strides[0])
    span = frames * stride if jitter else (frames - 1) * stride + 1
    start = int(rng.integers(0, num_video_frames - span + 1)) if num_video_frames >= span else 0
    idx = start + stride * np.arange(frames)
    if jitter and stride > 1:
        idx = idx + rng.integers(0, stride, size=frames)
    return pad_indices(idx, num_video_frames, pad)


def sequence_clip_indices(
    num_video_frames: int,
    frames: int,
    stride: int,
    num_clips: int,
    gap: int,
    rng: np.random.Generator,
    pad: str = "repeat_last",
) -> list[np.ndarray]:
    """``num_clips`` clips in temporal order from one random start; clip k begins ``gap`` frames
    after clip k-1 ends (VCOP: clip k covers [s + k(l+g), s + k(l+g) + l) at stride 1).

    A video shorter than the whole tuple starts at 0 and is padded (``pad``).
    """
    if num_video_frames < 1:
        raise ValueError("cannot sample a clip from a video with no frames")
    span = (frames - 1) * stride + 1
    step = frames * stride + gap  # from one clip's first frame to the next one's
    total = (num_clips - 1) * step + span
    start = int(rng.integers(0, num_video_frames - total + 1)) if num_video_frames >= total else 0
    return [
        pad_indices(start + k * step + stride * np.arange(frames), num_video_frames, pad)
        for k in range(num_clips)
    ]


def segment_indices(
    num_video_frames: int, segments: int, offsets: np.ndarray | float
) -> np.ndarray:
    """TSN sampling: the video cut into ``segments`` equal (fractional) segments and one frame
    taken from each, at ``offsets`` in [0, 1) of the segment's length (one per segment, or one
    for all). A video with fewer frames than segments repeats frames.
    """
    if num_video_frames < 1:
        raise ValueError("cannot sample a clip from a video with no frames")
    length = num_video_frames / segments
    offsets_S = np.broadcast_to(np.asarray(offsets, dtype=np.float64), (segments,))
    idx = np.floor((np.arange(segments) + offsets_S) * length).astype(np.int64)
    return np.minimum(idx, num_video_frames - 1)


def random_segment_indices(
    num_video_frames: int, segments: int, rng: np.random.Generator
) -> np.ndarray:
    """Training TSN sampling: a uniformly random frame from each segment."""
    return segment_indices(num_video_frames, segments, rng.random(segments))


def fixed_segment_indices(num_video_frames: int, segments: int, num_clips: int) -> list[np.ndarray]:
    """Test TSN sampling: clip k takes the frame at fraction (k + 0.5) / num_clips of every
    segment, so one clip takes the segment centres (TSN's test sampling) and several clips
    interleave evenly."""
    return [
        segment_indices(num_video_frames, segments, (k + 0.5) / num_clips) for k in range(num_clips)
    ]


def evenly_spaced_starts(num_video_frames: int, span: int, num_clips: int) -> np.ndarray:
    """Starts of ``num_clips`` evenly spaced clips covering the video, first at frame 0 and last
    ending at the last frame: ``linspace(0, max(L - span, 0), n)`` cast to int (SEVERE's dense
    test; VideoMAE's ``test_num_segment``). A video shorter than a clip gives the same clip n
    times."""
    return np.linspace(0, max(num_video_frames - span, 0), num_clips).astype(np.int64)


def evenly_spaced_clip_indices(
    num_video_frames: int, frames: int, stride: int, num_clips: int, pad: str = "repeat_last"
) -> list[np.ndarray]:
    """The frames of the ``num_clips`` evenly spaced test clips (see :func:`evenly_spaced_starts`)."""
    span = (frames - 1) * stride + 1
    starts = evenly_spaced_starts(num_video_frames, span, num_clips)
    return [pad_indices(s + stride * np.arange(frames), num_video_frames, pad) for s in starts]
