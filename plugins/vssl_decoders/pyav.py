"""The default decoder: PyAV (FFmpeg), with key-frame seeking and frames counted in display order.

Frame i is the i-th frame the decoder outputs (display order; B-frames are reordered by FFmpeg).
A read seeks to the key frame at or before the first wanted frame, takes that key frame's index
from its presentation timestamp (PTS) relative to the first frame's, then counts forward, and
stops at the last wanted frame. Timestamps are used only for that anchor because some files
carry scrambled ones (AVI with B-frames) or none (raw H.264). When the seek cannot be trusted --
it fails, lands after the wanted frame (MPEG-TS seeks by bytes) or the frame has no timestamp --
the read decodes from the first frame instead: slower, never wrong. Each distinct frame is
decoded and converted to RGB once, however often it is requested.

Reads past the last decodable frame return that frame when the shortfall is at most
``END_SLACK_FRAMES`` (headers that round up); a longer one means a damaged file and raises
:class:`~vssl_core.interfaces.VideoDecodeError`.

Shape-suffix legend: T requested frames, H height, W width, C channels (3, RGB).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from fractions import Fraction
from typing import Literal

import av
import numpy as np

from vssl_core.registry import component
from vssl_decoders.common import (
    END_SLACK_FRAMES,
    Timeline,
    check_fps,
    check_indices,
    decode_error,
    keep_inherited,
)

_AV_ERRORS = (av.FFmpegError, OSError, EOFError)


@component("decoder", name="pyav")
class PyAVDecoder:
    """Decode video files with PyAV (FFmpeg): any container and codec FFmpeg reads.

    ``fps``: resample to this frame rate (indices, ``num_frames`` and ``fps`` then refer to the
    resampled timeline); null keeps the file's rate. ``threads``: FFmpeg decoding threads per
    video (0: FFmpeg picks; keep 1 when DataLoader workers already use the cores).
    ``num_frames_from``: "header" trusts the container's frame count and counts packets only when
    it has none (MKV, WebM, MPEG-TS); "packets" always counts them (exact for files whose header
    lies, at the cost of reading the whole file on every open).
    """

    def __init__(
        self,
        fps: float | None = None,
        threads: int = 1,
        num_frames_from: Literal["header", "packets"] = "header",
    ):
        check_fps(fps)
        if threads < 0:
            raise ValueError(f"threads must be >= 0 (0: let FFmpeg choose), got {threads}")
        if num_frames_from not in ("header", "packets"):
            raise ValueError(
                f"num_frames_from must be 'header' or 'packets', got {num_frames_from!r}"
            )
        self.fps, self.threads, self.num_frames_from = fps, threads, num_frames_from

    def open(self, path: str) -> PyAVVideo:
        return PyAVVideo(str(path), self.fps, self.threads, self.num_frames_from)


class PyAVVideo:
    """One video file. The FFmpeg container is opened lazily and kept for later reads by the
    process that opened it; a copy in a forked or spawned DataLoader worker (or an unpickled
    one) opens its own. Not for concurrent reads from several threads.
    """

    def __init__(self, path: str, fps: float | None, threads: int, num_frames_from: str):
        self.path, self._threads = path, threads
        self._container: av.container.InputContainer | None = None
        self._pid = -1
        try:
            stream = self._stream()
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            if not rate:
                raise decode_error(path, "its video stream states no frame rate")
            self._time_base: Fraction = stream.time_base
            self._source_fps = Fraction(rate)
            count = stream.frames if num_frames_from == "header" else 0
            count = count or self._count_packets()
            first = self._first_frame()
            self._start_pts, self.height, self.width = _timestamp(first), first.height, first.width
            self.timeline = Timeline.make(count, rate, fps)
        except _AV_ERRORS as exc:
            raise decode_error(path, f"{type(exc).__name__}: {exc}") from exc
        if self.timeline.source_frames < 1:
            raise decode_error(path, "its video stream has no frames")
        self.num_frames = self.timeline.num_frames
        self.fps = float(self.timeline.fps)

    # ------------------------------------------------------------------ public

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as uint8 [T, H, W, 3] RGB."""
        indices_T = check_indices(indices, self.num_frames, self.path)
        if not indices_T.size:
            return np.zeros((0, self.height, self.width, 3), np.uint8)
        source_T = self.timeline.source_indices(indices_T)
        wanted = np.unique(source_T).tolist()
        try:
            found = self._decode(wanted)
        except _AV_ERRORS as exc:
            self.close()  # the container may be in any state; the next read reopens it
            cause = f"{type(exc).__name__}: {exc}"
            raise decode_error(
                self.path, f"reading frames {wanted[0]}..{wanted[-1]}: {cause}"
            ) from exc
        shapes = {f.shape for f in found.values()}
        if shapes != {(self.height, self.width, 3)}:
            raise decode_error(
                self.path,
                f"frames of shapes {sorted(shapes)}, the header says "
                f"{self.height}x{self.width}: the resolution changes inside the stream",
            )
        return np.stack([found[s] for s in source_T.tolist()])

    def close(self) -> None:
        """Release the file now (it is also released when the Video is garbage-collected)."""
        if self._container is not None and self._pid == os.getpid():
            self._container.close()
        else:
            keep_inherited(self._container)
        self._container = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_container": None, "_pid": -1}

    def __repr__(self) -> str:
        return f"PyAVVideo({self.path!r}, num_frames={self.num_frames}, fps={self.fps:g})"

    # ------------------------------------------------------------------ container

    def _stream(self) -> av.video.stream.VideoStream:
        """The video stream of this process's open container (opening it if needed)."""
        if self._container is None or self._pid != os.getpid():
            if self._container is not None:  # inherited through fork: the parent's to free
                keep_inherited(self._container)
                self._container = None
            if not os.path.exists(self.path):
                raise decode_error(self.path, "no such file")
            container = av.open(self.path, metadata_errors="ignore")
            if not container.streams.video:
                container.close()
                raise decode_error(self.path, "the file has no video stream")
            stream = container.streams.video[0]
            stream.codec_context.thread_count = self._threads
            if self._threads != 1:
                stream.codec_context.thread_type = "AUTO"
            self._container, self._pid = container, os.getpid()
        return self._container.streams.video[0]

    def _first_frame(self) -> av.VideoFrame:
        """The first decodable frame: its PTS is frame 0 of the timeline (the header's start
        time can disagree, e.g. with B-frames in AVI) and its size is the video's."""
        stream = self._stream()
        for frame in self._container.decode(stream):
            return frame
        raise decode_error(self.path, "no frame could be decoded")

    def _count_packets(self) -> int:
        """Demux (not decode) the whole stream; reopen after, rather than seek back."""
        stream = self._stream()
        count = sum(1 for p in self._container.demux(stream) if p.size)
        self.close()
        return count

    # ------------------------------------------------------------------ decoding

    def _decode(self, wanted: list[int]) -> dict[int, np.ndarray]:
        """RGB frames for the sorted, distinct source indices ``wanted``."""
        found = None if self._start_pts is None else self._decode_from(wanted, seek=True)
        if found is None:  # no timestamps, or a seek that failed or overshot: from the start
            self.close()
            found = self._decode_from(wanted, seek=False)
        assert found is not None, "decoding from the first frame always places every frame"
        return found

    def _decode_from(self, wanted: list[int], seek: bool) -> dict[int, np.ndarray] | None:
        """Decode forward from the key frame before ``wanted[0]`` (``seek``) or from where the
        container stands (a fresh one: the first frame). None when the seek cannot be used."""
        stream = self._stream()
        if seek:
            try:
                self._container.seek(self._seek_target(wanted[0]), stream=stream)
            except av.FFmpegError:  # a format that cannot seek (raw streams)
                return None
        found: dict[int, np.ndarray] = {}
        p, last = 0, None  # next wanted position; the last decoded (index, frame)
        for k, frame in self._indexed_frames(stream, from_start=not seek):
            if k is None or (last is None and k > wanted[0]):
                return None  # no timestamp to anchor on, or the seek overshot
            last = (k, frame)
            if k == wanted[p]:
                found[k], p = _rgb(frame), p + 1
                if p == len(wanted):
                    return found
        if last is None:
            if seek:
                return None
            raise decode_error(self.path, "no frame decodes from the start of the stream")
        if wanted[-1] - last[0] > END_SLACK_FRAMES:
            raise decode_error(
                self.path,
                f"frame {wanted[-1]} was asked for but decoding stops after frame {last[0]} "
                f"although the header counts {self.timeline.source_frames} frames (a truncated or "
                "damaged file; decoder option num_frames_from: packets counts what is there)",
            )
        found.update(dict.fromkeys(wanted[p:], _rgb(last[1])))
        return found

    def _indexed_frames(
        self, stream: av.video.stream.VideoStream, from_start: bool
    ) -> Iterator[tuple[int | None, av.VideoFrame]]:
        """Decoded frames with their index: counted from 0, or from the first frame's PTS."""
        index = -1 if from_start else None
        for frame in self._container.decode(stream):
            if index is not None:
                index += 1
            elif (ts := _timestamp(frame)) is not None:
                index = self._frame_index(ts)
            yield index, frame

    def _frame_index(self, ts: int) -> int:
        """round((ts - start) * time_base * fps), in exact integer arithmetic."""
        tb, fps = self._time_base, self._source_fps
        num = (ts - self._start_pts) * tb.numerator * fps.numerator
        den = tb.denominator * fps.denominator
        return (2 * num + den) // (2 * den)

    def _seek_target(self, index: int) -> int:
        start = self._start_pts or 0
        if index <= 0:
            return start
        seconds = Fraction(index) / self._source_fps
        return start + int(seconds / self._time_base)


def _timestamp(frame: av.VideoFrame) -> int | None:
    return frame.pts if frame.pts is not None else frame.dts


def _rgb(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24")
