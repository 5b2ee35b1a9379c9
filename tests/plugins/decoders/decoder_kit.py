"""Helpers for the decoder tests: small videos whose frames carry their own index."""

from __future__ import annotations

import os

import numpy as np
import pytest
from kit.optional import is_required
from vssl_decoders.common import import_backend

from vssl_core.data.video_writer import read_frame_index, stamp_frame_index

NUM_FRAMES, HEIGHT, WIDTH, FPS, GOP = 40, 48, 64, 25.0, 8

# name -> write_video arguments. mp4/mkv/avi use libx264 with B-frames (decode order differs from
# display order); start times are non-zero where the container allows it; the AVI's first frame
# has PTS 1; MPEG-TS and raw H.264 have no frame count in their header; raw H.264 has no
# timestamps at all.
CONTAINERS: dict[str, dict] = {
    "mp4": {"suffix": ".mp4"},
    "mp4_start_1s": {"suffix": ".mp4", "start_time": 1.0},
    "mkv_start_half_s": {"suffix": ".mkv", "start_time": 0.5},
    "avi": {"suffix": ".avi"},
    "mpegts_start_1s": {"suffix": ".ts", "start_time": 1.0},
    "raw_h264": {"suffix": ".h264"},
}


def stamped_frames(num_frames: int = NUM_FRAMES, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise_THWC = rng.integers(0, 256, (num_frames, HEIGHT, WIDTH, 3), dtype=np.uint8)
    return stamp_frame_index(noise_THWC)


def indices_of(frames_THWC: np.ndarray) -> list[int]:
    """The index stamped into each frame: which frames a decoder really returned."""
    return [read_frame_index(f) for f in frames_THWC]


# Importing decord loads its own FFmpeg build, which breaks PyAV's VP9 encoder (and may hang
# threaded PyAV decoding) for the rest of the process. Its tests therefore run in a separate
# pytest process (`make test` does it: VSSL_TEST_DECORD=1 pytest tests/plugins/decoders).
ISOLATED = {"decord": "VSSL_TEST_DECORD"}


def backend_available(name: str) -> bool:
    if name in ISOLATED and not os.environ.get(ISOLATED[name]):
        return False
    try:
        import_backend(name, name, name)
    except ImportError:
        if is_required(name):  # VSSL_REQUIRE names it: a broken install fails, never skips
            raise
        return False
    return True


BACKENDS = ("pyav", "decord", "torchcodec")


def backend_param(name: str, *values: object):
    """A test parameter for backend ``name`` (+ ``values``), skipped where its library does not
    load (pyav always does; decord and torchcodec are optional extras)."""
    usable = name == "pyav" or backend_available(name)
    return pytest.param(
        name, *values, marks=pytest.mark.skipif(not usable, reason=f"{name} not usable")
    )
