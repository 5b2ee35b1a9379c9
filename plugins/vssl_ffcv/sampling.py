"""Keyed clip plans, compiled with numba: which frames, which crop box and whether to flip.

Why numba: the plan is drawn inside ffcv's compiled decode loop, per sample and before any pixel
is decoded, so only the selected frames are decoded. Why not numpy's generators: those cannot run
in compiled code. The draws use the same per-sample key as the torch path
(:func:`vssl_core.random.sample_key`) and the counter hash of
:func:`vssl_core.random.keyed_uniform`, reimplemented bit for bit here, so a plan is a pure
function of (seed, epoch, index) and the same on any rank, thread count or resume.

Shape-suffix legend: V views (clips per sample), T frames per clip.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from vssl_core.interfaces import ViewSpec

TEMPORAL_CODES = {"independent": 0, "shared": 1, "sequence": 2}
AUGMENTATION_CODES = {"none": 0, "multiscale_crop": 1, "random_resized_crop": 2}
PAD_CODES = {"repeat_last": 0, "loop": 1}
STREAM_TEMPORAL, STREAM_SPATIAL = 1, 2  # as in vssl_core.data.clips
DRAWS_PER_VIEW = 64  # spatial counters reserved per view: 2 + 4 x 10 crop tries + the flip

_M32 = np.uint64(0xFFFFFFFF)
_MULTISCALE_SCALES = np.array([1.0, 0.875, 0.75, 0.66])  # as vssl_core.data.transforms
_OFFSETS_K2 = np.array(  # (ox, oy) in quarters: corners, centre, edge centres, quarter points
    [
        [0, 0],
        [4, 0],
        [0, 4],
        [4, 4],
        [2, 2],
        [0, 2],
        [4, 2],
        [2, 4],
        [2, 0],
        [1, 1],
        [3, 1],
        [1, 3],
        [3, 3],
    ],
    dtype=np.int64,
)
_LOG_RATIO = (math.log(3 / 4), math.log(4 / 3))  # random resized crop, as the torch path


@njit(cache=True)
def _mix32(x):
    """murmur3's 32-bit finaliser (vssl_core.random._mix32) on uint64 holding 32 bits."""
    x = x & _M32
    x = x ^ (x >> np.uint64(16))
    x = (x * np.uint64(0x85EBCA6B)) & _M32
    x = x ^ (x >> np.uint64(13))
    x = (x * np.uint64(0xC2B2AE35)) & _M32
    return x ^ (x >> np.uint64(16))


@njit(cache=True)
def _absorb(h, word):
    h = (h ^ np.uint64(word)) * np.uint64(0xBF58476D1CE4E5B9)  # wraps mod 2**64, like numpy
    return h ^ (h >> np.uint64(31))


@njit(cache=True)
def sample_key(seed, epoch, index, stream):
    """:func:`vssl_core.random.sample_key`, compiled: a 63-bit key as int64."""
    h = np.uint64(0x9E3779B97F4A7C15)
    h = _absorb(h, seed)
    h = _absorb(h, epoch)
    h = _absorb(h, index)
    h = _absorb(h, stream)
    return np.int64(h & np.uint64(0x7FFFFFFFFFFFFFFF))


@njit(cache=True)
def uniform(key, stream, counter):
    """Element ``counter`` of ``keyed_uniform(tensor([key]), n, stream)``: a float in [0, 1)."""
    k = np.uint64(key)
    lo, hi = k & _M32, (k >> np.uint64(32)) & _M32
    x = _mix32(lo ^ _mix32(hi + np.uint64(0x9E3779B9) * np.uint64(stream + 1)))
    x = _mix32(x ^ _mix32(np.uint64(counter) * np.uint64(0x27D4EB2F) + np.uint64(0x165667B1)))
    x = _mix32(x + hi)
    return np.float64(x >> np.uint64(8)) * (1.0 / 16777216.0)


@njit(cache=True)
def _draw_int(key, stream, counter, high):
    """An integer in [0, high) from one uniform draw."""
    return min(np.int64(uniform(key, stream, counter) * high), high - 1)


@njit(cache=True)
def _pad(i, num_frames, pad):
    """An index past the end mapped back inside: repeat the last frame (0) or loop (1)."""
    return min(i, num_frames - 1) if pad == 0 else i % num_frames


@njit(cache=True)
def _random_clip(idx_T, num_frames, key, counter, stride, strides, jitter, pad):
    """One clip from a random start (vssl_core.data.sampling.random_clip_indices, or
    jittered_clip_indices when ``strides``/``jitter`` are set); uses counters counter..+T+1."""
    frames = idx_T.shape[0]
    if len(strides) > 0:
        stride = strides[_draw_int(key, STREAM_TEMPORAL, counter + 1, len(strides))]
    span = frames * stride if jitter else (frames - 1) * stride + 1
    start = 0
    if num_frames >= span:
        start = _draw_int(key, STREAM_TEMPORAL, counter, num_frames - span + 1)
    for t in range(frames):
        i = start + stride * t
        if jitter and stride > 1:
            i += _draw_int(key, STREAM_TEMPORAL, counter + 2 + t, stride)
        idx_T[t] = _pad(i, num_frames, pad)


@njit(cache=True)
def _temporal(num_frames, key, frames, stride, strides, jitter, num_clips, temporal, gap, pad):
    """Frame indices [V, T]; a video shorter than the span starts at 0 and is padded."""
    idx_VT = np.empty((num_clips, frames), np.int64)
    if temporal == 2:  # sequence: clip k starts `gap` frames after clip k-1 ends
        step = frames * stride + gap
        total = (num_clips - 1) * step + (frames - 1) * stride + 1
        start = 0
        if num_frames >= total:
            start = _draw_int(key, STREAM_TEMPORAL, 0, num_frames - total + 1)
        for c in range(num_clips):
            for t in range(frames):
                idx_VT[c, t] = _pad(start + c * step + stride * t, num_frames, pad)
        return idx_VT
    for c in range(num_clips):
        if temporal == 1 and c > 0:  # shared: every clip shows the same frames
            idx_VT[c] = idx_VT[0]
        else:
            _random_clip(idx_VT[c], num_frames, key, c * (frames + 2), stride, strides, jitter, pad)
    return idx_VT


@njit(cache=True)
def _multiscale_box(height, width, size, key, base):
    """VideoMAE's multi-scale crop (vssl_core.data.transforms.multiscale_crop_box)."""
    side = min(height, width)
    sides = np.empty(4, np.int64)
    for i in range(4):
        s = np.int64(side * _MULTISCALE_SCALES[i])
        sides[i] = size if abs(s - size) < 3 else s
    pairs = np.empty((10, 2), np.int64)  # (crop_w, crop_h) with neighbouring scales
    n = 0
    for i in range(4):
        for j in range(4):
            if abs(i - j) <= 1:
                pairs[n, 0], pairs[n, 1] = sides[j], sides[i]
                n += 1
    k = _draw_int(key, STREAM_SPATIAL, base, n)
    crop_w, crop_h = pairs[k, 0], pairs[k, 1]
    o = _draw_int(key, STREAM_SPATIAL, base + 1, 13)
    step_w, step_h = (width - crop_w) // 4, (height - crop_h) // 4
    return _OFFSETS_K2[o, 1] * step_h, _OFFSETS_K2[o, 0] * step_w, crop_h, crop_w


@njit(cache=True)
def _random_resized_box(height, width, key, base, scale_lo, scale_hi):
    """Inception-style crop: random area fraction in [scale_lo, scale_hi] and aspect ratio in
    [3/4, 4/3]; the centre square as fallback."""
    area = height * width
    for attempt in range(10):
        c = base + 2 + 4 * attempt
        target = area * (scale_lo + uniform(key, STREAM_SPATIAL, c) * (scale_hi - scale_lo))
        log_aspect = _LOG_RATIO[0] + uniform(key, STREAM_SPATIAL, c + 1) * (
            _LOG_RATIO[1] - _LOG_RATIO[0]
        )
        aspect = math.exp(log_aspect)
        w = np.int64(np.rint(math.sqrt(target * aspect)))
        h = np.int64(np.rint(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = _draw_int(key, STREAM_SPATIAL, c + 2, height - h + 1)
            left = _draw_int(key, STREAM_SPATIAL, c + 3, width - w + 1)
            return top, left, h, w
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


@njit(cache=True)
def _box(augmentation, height, width, size, key, base, scale_lo, scale_hi):
    if augmentation == 1:
        top, left, h, w = _multiscale_box(height, width, size, key, base)
    elif augmentation == 2:
        top, left, h, w = _random_resized_box(height, width, key, base, scale_lo, scale_hi)
    else:
        side = min(height, width)
        top, left, h, w = (height - side) // 2, (width - side) // 2, side, side
    h, w = min(h, height), min(w, width)  # a crop side snapped up to `size` may exceed the frame
    return min(top, height - h), min(left, width - w), h, w


@njit(cache=True)
def clip_plan(
    num_frames,
    height,
    width,
    key,
    frames,
    stride,
    strides,
    jitter,
    num_clips,
    temporal,
    gap,
    pad,
    augmentation,
    crop_size,
    scale_lo,
    scale_hi,
    flip,
    shared_augmentation,
):
    """Frame indices [V, T], crop boxes [V, 4] (top, left, height, width) and flips [V] for one
    sample of ``num_frames`` frames of ``height`` x ``width``."""
    idx_VT = _temporal(
        num_frames, key, frames, stride, strides, jitter, num_clips, temporal, gap, pad
    )
    box_V4 = np.empty((num_clips, 4), np.int64)
    flip_V = np.zeros(num_clips, np.bool_)
    for c in range(num_clips):
        if shared_augmentation and c > 0:
            box_V4[c] = box_V4[0]
            flip_V[c] = flip_V[0]
            continue
        base = c * DRAWS_PER_VIEW
        top, left, h, w = _box(
            augmentation, height, width, crop_size, key, base, scale_lo, scale_hi
        )
        box_V4[c, 0], box_V4[c, 1], box_V4[c, 2], box_V4[c, 3] = top, left, h, w
        flip_V[c] = flip and uniform(key, STREAM_SPATIAL, base + DRAWS_PER_VIEW - 1) < 0.5
    return idx_VT, box_V4, flip_V


def unsupported(views: ViewSpec) -> list[str]:
    """What ``views`` asks for that the compiled plan does not implement (empty: all of it)."""
    out = []
    if views.temporal not in TEMPORAL_CODES:
        out.append(f"temporal={views.temporal!r} (supported: {', '.join(TEMPORAL_CODES)})")
    if views.has_photometric:
        out.append("photometric augmentation (color_jitter, grayscale_prob, blur_prob)")
    if views.test_crops != 1 or views.short_side is not None:
        out.append("test-time crops (test_crops, short_side)")
    return out


def plan_args(views: ViewSpec) -> tuple:
    """The view-dependent trailing arguments of :func:`clip_plan`, as compiled code wants them."""
    problems = unsupported(views)
    if problems:
        raise ValueError(f"the compiled clip plan does not implement {'; '.join(problems)}")
    return (
        views.frames,
        views.stride,
        np.array(views.strides, np.int64),
        views.temporal_jitter,
        views.num_clips,
        TEMPORAL_CODES[views.temporal],
        views.gap,
        PAD_CODES[views.pad],
        AUGMENTATION_CODES[views.augmentation],
        views.crop_size,
        float(views.crop_scale[0]),
        float(views.crop_scale[1]),
        views.flip,
        views.shared_augmentation,
    )


def plan_for(
    views: ViewSpec, seed: int, epoch: int, index: int, num_frames: int, height: int, width: int
):
    """The plan the ffcv loader draws for sample ``index`` of ``epoch`` (for tests and tools)."""
    key = sample_key(seed, epoch, index, 0)
    return clip_plan(num_frames, height, width, key, *plan_args(views))
