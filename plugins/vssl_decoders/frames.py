"""Frame folders: one JPEG/PNG file per frame (the "rawframes" layout of mmaction2, TSN, Charades).

A video's path is its folder; frame t is the file ``pattern.format(start_index + t)``. Only the
requested files are read, each decoded with PyAV (FFmpeg's JPEG/PNG decoders), so no image
library is needed.

Shape-suffix legend: T requested frames, H height, W width, C channels (3, RGB).
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

from vssl_core.registry import component
from vssl_decoders.common import Timeline, check_fps, check_indices, decode_error

NOMINAL_FPS = 30.0


@component("decoder", name="frames")
class FrameFolderDecoder:
    """Read videos stored as folders of numbered image files.

    ``pattern``: file name with one integer field, e.g. "img_{:05d}.jpg" (mmaction2) or
    "{:06d}.png"; ``start_index``: number of the first frame (1 for img_00001.jpg, else 0).
    ``source_fps``: the rate the frames were extracted at. Images carry no rate, so it must be
    stated to resample (``fps``) or to report a true ``Video.fps``; left null, videos report a
    nominal 30 fps (the most common native rate in Kinetics-style sources) and only resampling is
    refused, since a guessed rate would silently pick the wrong frames.
    ``fps``: resample to this rate, as the video decoders do.
    """

    def __init__(
        self,
        pattern: str = "img_{:05d}.jpg",
        start_index: int = 1,
        source_fps: float | None = None,
        fps: float | None = None,
    ):
        self.regex = pattern_regex(pattern)
        if start_index < 0:
            raise ValueError(f"start_index must be >= 0, got {start_index}")
        check_fps(source_fps)
        check_fps(fps)
        if fps is not None and source_fps is None:
            raise ValueError(
                "resampling a frame folder (fps) needs the rate its frames were extracted at: "
                "set source_fps too (e.g. source_fps: 30)"
            )
        self.pattern, self.start_index = pattern, start_index
        self.source_fps, self.fps = source_fps, fps

    def open(self, path: str) -> FrameFolderVideo:
        return FrameFolderVideo(str(path), self)


class FrameFolderVideo:
    """One folder of frames; num_frames is the number of files matching the pattern, which must
    be numbered without gaps from ``start_index``."""

    def __init__(self, path: str, decoder: FrameFolderDecoder):
        self.path, self.pattern, self.start_index = path, decoder.pattern, decoder.start_index
        numbers = _frame_numbers(path, decoder.regex, decoder.pattern)
        expected = range(self.start_index, self.start_index + len(numbers))
        if numbers != list(expected):
            missing = sorted(set(expected) - set(numbers))
            first = self.pattern.format(missing[0] if missing else numbers[0])
            raise decode_error(
                path,
                f"its {len(numbers)} frames matching {self.pattern!r} are not numbered "
                f"{expected.start}..{expected.stop - 1} without gaps (first gap or stray file: "
                f"{first}); check pattern and start_index",
            )
        self.timeline = Timeline.make(len(numbers), decoder.source_fps or NOMINAL_FPS, decoder.fps)
        self.num_frames = self.timeline.num_frames
        self.fps = float(self.timeline.fps)

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as uint8 [T, H, W, 3] RGB."""
        indices_T = check_indices(indices, self.num_frames, self.path)
        source_T = self.timeline.source_indices(indices_T)
        found = {s: self._load(s) for s in np.unique(source_T).tolist()}
        if not found:
            h, w = self._load(0).shape[:2]
            return np.zeros((0, h, w, 3), np.uint8)
        shapes = {f.shape for f in found.values()}
        if len(shapes) > 1:
            raise decode_error(self.path, f"its frames differ in size: {sorted(shapes)}")
        return np.stack([found[s] for s in source_T.tolist()])

    def _load(self, source_index: int) -> np.ndarray:
        file = os.path.join(self.path, self.pattern.format(self.start_index + source_index))
        try:
            with av.open(file) as container:
                for frame in container.decode(video=0):
                    return frame.to_ndarray(format="rgb24")
        except (av.FFmpegError, OSError) as exc:
            raise decode_error(
                self.path, f"frame file {file}: {type(exc).__name__}: {exc}"
            ) from exc
        raise decode_error(self.path, f"frame file {file} holds no image")

    def __repr__(self) -> str:
        return f"FrameFolderVideo({self.path!r}, num_frames={self.num_frames}, fps={self.fps:g})"


def pattern_regex(pattern: str) -> re.Pattern:
    """A regex matching the file names ``pattern`` produces, capturing the frame number."""
    fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
    if len(fields) != 1 or fields[0] not in ("", "0"):
        raise ValueError(
            f"pattern {pattern!r} must hold exactly one positional integer field, e.g. "
            "'img_{:05d}.jpg' or '{:06d}.png'"
        )
    try:
        pattern.format(1)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"pattern {pattern!r} does not format a frame number: {exc}") from exc
    parts = [
        re.escape(text) + ("(\\d+)" if f is not None else "")
        for text, f, _, _ in string.Formatter().parse(pattern)
    ]
    return re.compile("".join(parts))


def _frame_numbers(folder: str, regex: re.Pattern, pattern: str) -> list[int]:
    """Sorted frame numbers of the files in ``folder`` that ``pattern`` would name."""
    if not Path(folder).is_dir():
        what = "a file, not a folder of frames" if Path(folder).exists() else "no such folder"
        raise decode_error(folder, what)
    numbers = []
    for name in os.listdir(folder):
        match = regex.fullmatch(name)
        if match and pattern.format(int(match.group(1))) == name:
            numbers.append(int(match.group(1)))
    if not numbers:
        raise decode_error(folder, f"no frame files named like {pattern.format(1)!r} in it")
    return sorted(numbers)
