"""Optional decoder: decord (dmlc), the reader of the VideoMAE/SIGMA code bases.

Registered always; building it without decord installed names the extra to install. decord 0.6.0
(2021, unmaintained) installs from PyPI on Python 3.11 and works with numpy 2, but its random
access returns wrong frames for many files: in vssl's stamped-frame tests it was wrong for H.264
in AVI and MPEG-TS, MPEG-4 Part 2 with B-frames (AVI and MP4) and HEVC, and right only for H.264
and VP8 in MP4/MOV/Matroska/WebM. A video outside those combinations (probed with PyAV on open)
is refused with a pointer to pyav, rather than read wrongly.

Shape-suffix legend: T requested frames, H height, W width, C channels (3, RGB).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import av
import numpy as np

from vssl_core.registry import component
from vssl_decoders.common import (
    Timeline,
    check_fps,
    check_indices,
    decode_error,
    import_backend,
    keep_inherited,
)

# (container, codec) pairs whose random access decord gets right (see the module docstring)
VERIFIED_CONTAINERS = ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm")
VERIFIED_CODECS = ("h264", "vp8")


@component("decoder", name="decord")
class DecordDecoder:
    """Decode video files with decord on the CPU (``pip install 'vssl[decord]'``).

    ``fps``: resample to this rate (null keeps the file's); ``threads``: decord threads per video
    (0: decord picks; VideoMAE uses 1 with many DataLoader workers).
    """

    def __init__(self, fps: float | None = None, threads: int = 1):
        check_fps(fps)
        if threads < 0:
            raise ValueError(f"threads must be >= 0 (0: let decord choose), got {threads}")
        import_backend("decord", "decord", "decord")
        self.fps, self.threads = fps, threads

    def open(self, path: str) -> DecordVideo:
        return DecordVideo(str(path), self.fps, self.threads)


class DecordVideo:
    """One video; the decord reader is opened per process (fork- and pickle-safe)."""

    def __init__(self, path: str, fps: float | None, threads: int):
        self.path, self._threads = path, threads
        self._reader, self._pid = None, -1
        _check_verified(path)
        reader = self._decoder()
        try:
            count, rate = len(reader), reader.get_avg_fps()
        except RuntimeError as exc:
            raise decode_error(path, f"{type(exc).__name__}: {exc}") from exc
        if count < 1 or not rate > 0:
            raise decode_error(path, f"decord reports {count} frames at {rate} fps")
        self.timeline = Timeline.make(count, rate, fps)
        self.num_frames = self.timeline.num_frames
        self.fps = float(self.timeline.fps)

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as uint8 [T, H, W, 3] RGB."""
        indices_T = check_indices(indices, self.num_frames, self.path)
        wanted, where_T = np.unique(self.timeline.source_indices(indices_T), return_inverse=True)
        reader = self._decoder()
        try:
            frames_THWC = reader.get_batch(wanted.tolist()).asnumpy()[where_T]
            reader.seek(0)  # releases decoded buffers: RAM growth after get_batch (dmlc/decord#197)
        except (RuntimeError, ValueError, IndexError) as exc:
            raise decode_error(self.path, f"{type(exc).__name__}: {exc}") from exc
        return frames_THWC

    def _decoder(self):
        if self._reader is None or self._pid != os.getpid():
            if self._reader is not None:  # inherited through fork: the parent's to free
                keep_inherited(self._reader)
                self._reader = None
            if not os.path.exists(self.path):
                raise decode_error(self.path, "no such file")
            import decord

            try:
                self._reader = decord.VideoReader(
                    self.path, ctx=decord.cpu(0), num_threads=self._threads
                )
            except (RuntimeError, ValueError) as exc:
                raise decode_error(self.path, f"{type(exc).__name__}: {exc}") from exc
            self._pid = os.getpid()
        return self._reader

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_reader": None, "_pid": -1}

    def __repr__(self) -> str:
        return f"DecordVideo({self.path!r}, num_frames={self.num_frames}, fps={self.fps:g})"


def _check_verified(path: str) -> None:
    """Refuse files whose container/codec decord is known to seek wrongly in."""
    if not os.path.exists(path):
        raise decode_error(path, "no such file")
    try:
        with av.open(path) as container:
            streams = container.streams.video
            form, codec = container.format.name, streams[0].codec_context.name if streams else None
    except (av.FFmpegError, OSError) as exc:
        raise decode_error(path, f"{type(exc).__name__}: {exc}") from exc
    if codec is None:
        raise decode_error(path, "the file has no video stream")
    if form not in VERIFIED_CONTAINERS or codec not in VERIFIED_CODECS:
        raise decode_error(
            path,
            f"decord returns wrong frames for {codec} in {form.split(',')[0]} files (its seeking "
            f"is right only for {'/'.join(VERIFIED_CODECS)} in MP4/MKV/WebM); use decoder pyav",
        )
