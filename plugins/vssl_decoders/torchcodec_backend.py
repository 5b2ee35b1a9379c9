"""Optional decoder: torchcodec (meta-pytorch), FFmpeg behind a C++ core with batched frame access.

Registered always; building it without torchcodec installed names the extra to install. The
PyPI wheel links a CUDA build of torch: with CPU-only torch it installs but fails to load (seen
with torchcodec 0.17 / torch 2.13+cpu), which the error reports too.

Shape-suffix legend: T requested frames, H height, W width, C channels (3, RGB).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

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


@component("decoder", name="torchcodec")
class TorchCodecDecoder:
    """Decode video files with torchcodec on the CPU (``pip install 'vssl[torchcodec]'``).

    ``fps``: resample to this rate (null keeps the file's); ``threads``: FFmpeg threads per video
    (0: FFmpeg picks); ``seek_mode``: "exact" scans the file once on open for exact frame
    positions, "approximate" trusts the header (faster to open, wrong on files whose header lies).
    """

    def __init__(
        self,
        fps: float | None = None,
        threads: int = 1,
        seek_mode: Literal["exact", "approximate"] = "exact",
    ):
        check_fps(fps)
        if threads < 0:
            raise ValueError(f"threads must be >= 0 (0: let FFmpeg choose), got {threads}")
        if seek_mode not in ("exact", "approximate"):
            raise ValueError(f"seek_mode must be 'exact' or 'approximate', got {seek_mode!r}")
        import_backend("torchcodec.decoders", "torchcodec", "torchcodec")
        self.fps, self.threads, self.seek_mode = fps, threads, seek_mode

    def open(self, path: str) -> TorchCodecVideo:
        return TorchCodecVideo(str(path), self.fps, self.threads, self.seek_mode)


class TorchCodecVideo:
    """One video; the torchcodec decoder is opened per process (fork- and pickle-safe)."""

    def __init__(self, path: str, fps: float | None, threads: int, seek_mode: str):
        self.path, self._threads, self._seek_mode = path, threads, seek_mode
        self._reader, self._pid = None, -1
        metadata = self._decoder().metadata
        if not metadata.num_frames or not metadata.average_fps:
            raise decode_error(path, "its video stream states no frame count or frame rate")
        self.timeline = Timeline.make(metadata.num_frames, metadata.average_fps, fps)
        self.num_frames = self.timeline.num_frames
        self.fps = float(self.timeline.fps)

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as uint8 [T, H, W, 3] RGB."""
        indices_T = check_indices(indices, self.num_frames, self.path)
        wanted, where_T = np.unique(self.timeline.source_indices(indices_T), return_inverse=True)
        try:
            batch = self._decoder().get_frames_at(wanted.tolist())
        except (RuntimeError, ValueError, IndexError) as exc:
            raise decode_error(self.path, f"{type(exc).__name__}: {exc}") from exc
        frames_THWC = batch.data.numpy()[where_T]
        assert frames_THWC.ndim == 4 and frames_THWC.shape[-1] == 3, (
            f"torchcodec returned frames of shape {frames_THWC.shape}, expected [T, H, W, 3]"
        )
        return frames_THWC

    def _decoder(self):
        if self._reader is None or self._pid != os.getpid():
            if self._reader is not None:  # inherited through fork: the parent's to free
                keep_inherited(self._reader)
                self._reader = None
            if not os.path.exists(self.path):
                raise decode_error(self.path, "no such file")
            from torchcodec.decoders import VideoDecoder

            try:
                self._reader = VideoDecoder(
                    self.path,
                    dimension_order="NHWC",
                    num_ffmpeg_threads=self._threads,
                    seek_mode=self._seek_mode,
                )
            except (RuntimeError, ValueError) as exc:
                raise decode_error(self.path, f"{type(exc).__name__}: {exc}") from exc
            self._pid = os.getpid()
        return self._reader

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_reader": None, "_pid": -1}

    def __repr__(self) -> str:
        return f"TorchCodecVideo({self.path!r}, num_frames={self.num_frames}, fps={self.fps:g})"
