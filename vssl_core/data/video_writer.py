"""Write frames to disk as real encoded videos or frame folders, and stamp frames with their index.

Why: synthetic datasets are written to disk in the layout of real datasets so that every decoder
and annotation parser is tested on real files; stamping each frame's index into its pixels lets a
test check that a decoder returned exactly the frames it was asked for, not just the right shape.
Everything goes through PyAV (a core dependency), so no image library is needed.

Shape-suffix legend: T frames, H height, W width, C channels (3, RGB).
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

INDEX_BITS = 16  # stamped indices go up to 2**16 - 1
INDEX_BLOCK = 8  # side of one bit's square: one H.264 8x8 transform block, survives lossy coding

IMAGE_CODECS = {".jpg": "mjpeg", ".jpeg": "mjpeg", ".png": "png"}


def write_video(
    path: str | os.PathLike,
    frames_THWC: np.ndarray,
    fps: float,
    codec: str = "libx264",
    gop: int | None = None,
    start_time: float = 0.0,
    crf: int | None = None,
    faststart: bool = False,
) -> None:
    """Encode RGB uint8 frames [T, H, W, 3] into ``path`` (container from its suffix: .mp4,
    .mkv, .avi, .ts, ...).

    ``gop`` fixes the key-frame interval (a short one makes random access cheap; with libx264
    scene-cut key frames are turned off so the interval is exact); ``start_time`` (seconds) is the
    first frame's timestamp, non-zero in clips cut from longer videos; ``crf`` is libx264's
    quality (lower = better; default 18, visually lossless); ``faststart`` puts an MP4's index
    before the frames, as web videos do (a cut-off file then still opens). Height and width must
    be even.
    """
    _check_frames(frames_THWC)
    _, h, w, _ = frames_THWC.shape
    _check_video_args(codec, h, w, fps, gop, crf)
    if faststart and Path(path).suffix.lower() not in (".mp4", ".mov", ".m4v"):
        raise ValueError(f"faststart applies to .mp4/.mov files, not {Path(path).name}")
    rate = Fraction(fps).limit_denominator(1001)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = stream.codec_context.time_base = 1 / rate
        if codec == "libx264":  # x264's own keyint: FFmpeg's gop_size becomes keyint gop - 1
            options = {"crf": str(18 if crf is None else crf)}
            if gop is not None:
                options["x264-params"] = f"keyint={gop}:min-keyint={gop}:scenecut=0"
            stream.codec_context.options = options
        else:
            # FFmpeg's default 200 kbit/s starves textured frames: the error grows frame by
            # frame (4 -> 11 levels over 30 frames at 32 x 32); ~1 bit per pixel keeps it flat
            stream.codec_context.bit_rate = max(200_000, round(h * w * float(rate)))
            if gop is not None:
                stream.codec_context.gop_size = gop
        first_pts = round(start_time * rate)
        for t, frame_HWC in enumerate(frames_THWC):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_HWC), format="rgb24")
            frame.pts, frame.time_base = first_pts + t, 1 / rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _check_video_args(codec: str, h: int, w: int, fps: float, gop: int | None, crf: int | None):
    if codec not in av.codecs_available:
        known = ("libx264", "h264", "mpeg4", "libvpx", "libx265", "ffv1")
        shipped = [c for c in known if c in av.codecs_available]
        raise ValueError(
            f"codec {codec!r} is not in this PyAV build; it ships {', '.join(shipped)}"
        )
    if h % 2 or w % 2:
        raise ValueError(
            f"frames are {h}x{w} (HxW); 4:2:0 video needs an even height and width: crop or pad "
            "the frames by one pixel"
        )
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if gop is not None and gop < 1:
        raise ValueError(f"gop must be >= 1 frames, got {gop}")
    if crf is not None and codec != "libx264":
        raise ValueError(f"crf is libx264's quality setting; codec {codec!r} does not take it")


def write_frame_folder(
    folder: str | os.PathLike,
    frames_THWC: np.ndarray,
    pattern: str = "img_{:05d}.jpg",
    start_index: int = 1,
) -> list[Path]:
    """Write each frame as an image named ``pattern.format(start_index + t)``; returns the paths.

    The suffix picks the format: .jpg/.jpeg (JPEG at high quality, 4:4:4) or .png (lossless).
    ``start_index`` is 1 for the common ``img_00001.jpg`` layout (mmaction2, TSN), 0 for others.
    """
    _check_frames(frames_THWC)
    suffix = Path(pattern.format(0)).suffix.lower()
    if suffix not in IMAGE_CODECS:
        raise ValueError(
            f"pattern {pattern!r}: the file suffix must be one of {list(IMAGE_CODECS)}"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for t, frame_HWC in enumerate(frames_THWC):
        path = folder / pattern.format(start_index + t)
        path.write_bytes(encode_image(frame_HWC, suffix))
        paths.append(path)
    return paths


def encode_image(frame_HWC: np.ndarray, suffix: str = ".jpg") -> bytes:
    """One RGB uint8 frame [H, W, 3] as the bytes of a JPEG or PNG file."""
    codec = IMAGE_CODECS[suffix.lower()]
    h, w, _ = frame_HWC.shape
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height, ctx.time_base = w, h, Fraction(1, 1)
    ctx.pix_fmt = "yuvj444p" if codec == "mjpeg" else "rgb24"
    if codec == "mjpeg":  # a fixed quantiser of 2 (of 1-31): high quality, as datasets store frames
        ctx.options = {"qmin": "2", "qmax": "2"}
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_HWC), format="rgb24")
    packets = ctx.encode(frame.reformat(format=ctx.pix_fmt)) + ctx.encode(None)
    return b"".join(bytes(p) for p in packets)


def stamp_frame_index(frames_THWC: np.ndarray, first_index: int = 0) -> np.ndarray:
    """A copy of the frames with frame t's index (``first_index + t``) drawn into its top-left
    corner as 16 black/white squares of 8x8 pixels (one per bit, most significant first, filling
    rows of the frame's width). Read back with :func:`read_frame_index`.
    """
    _check_frames(frames_THWC)
    t_count, h, w, _ = frames_THWC.shape
    per_row = _stamp_layout(h, w)
    if first_index < 0 or first_index + t_count > 2**INDEX_BITS:
        raise ValueError(
            f"stamped indices must lie in [0, {2**INDEX_BITS}), got first_index "
            f"{first_index} for {t_count} frames"
        )
    out_THWC = frames_THWC.copy()
    for t in range(t_count):
        for bit, (y, x) in enumerate(_bit_origins(per_row)):
            on = (first_index + t) >> (INDEX_BITS - 1 - bit) & 1
            out_THWC[t, y : y + INDEX_BLOCK, x : x + INDEX_BLOCK] = 255 if on else 0
    return out_THWC


def read_frame_index(frame_HWC: np.ndarray) -> int:
    """The index :func:`stamp_frame_index` drew into this frame; a ValueError when a square is
    neither clearly black nor clearly white (the frame was not stamped, or was cropped/resized).
    """
    if frame_HWC.ndim != 3 or frame_HWC.shape[2] != 3:
        raise ValueError(f"expected one frame [H, W, 3], got shape {frame_HWC.shape}")
    per_row = _stamp_layout(*frame_HWC.shape[:2])
    value = 0
    for y, x in _bit_origins(per_row):
        core = frame_HWC[y + 2 : y + INDEX_BLOCK - 2, x + 2 : x + INDEX_BLOCK - 2]
        level = float(core.mean())
        if 64 <= level <= 192:
            raise ValueError(
                f"the index square at (y={y}, x={x}) has mean level {level:.0f}: this frame does "
                "not carry a stamped index (or it was cropped, resized or badly compressed)"
            )
        value = value << 1 | int(level > 128)
    return value


def _stamp_layout(h: int, w: int) -> int:
    """Squares per row of the stamp; an error when the frame cannot hold all of them."""
    per_row = w // INDEX_BLOCK
    rows = -(-INDEX_BITS // per_row) if per_row else INDEX_BITS + 1
    if rows * INDEX_BLOCK > h:
        raise ValueError(
            f"frames of {h}x{w} (HxW) are too small to stamp an index: {INDEX_BITS} squares of "
            f"{INDEX_BLOCK} px need e.g. 16x128, 32x64 or 64x32; use larger frames"
        )
    return per_row


def _bit_origins(per_row: int) -> list[tuple[int, int]]:
    return [((b // per_row) * INDEX_BLOCK, (b % per_row) * INDEX_BLOCK) for b in range(INDEX_BITS)]


def _check_frames(frames_THWC: np.ndarray) -> None:
    if not isinstance(frames_THWC, np.ndarray) or frames_THWC.dtype != np.uint8:
        raise TypeError(
            f"frames must be a uint8 numpy array, got {type(frames_THWC).__name__} "
            f"of {getattr(frames_THWC, 'dtype', None)}"
        )
    if frames_THWC.ndim != 4 or frames_THWC.shape[3] != 3:
        raise ValueError(f"frames must be [T, H, W, 3] RGB, got shape {frames_THWC.shape}")
    if frames_THWC.shape[0] < 1:
        raise ValueError("cannot write a video with no frames")
