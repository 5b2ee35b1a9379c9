"""The video field of a vssl .beton: one blob per video of JPEG frames with an offset table.

Why one blob: ffcv's ``mem_read(ptr)`` returns exactly one allocation, so a variable number of
frames is kept in one allocation that carries its own offsets; any frame is then one slice away,
and the decoder touches only the frames a clip needs. Frames are resized at write time so their
short side is ``short_side`` (e.g. 128 for 112-pixel crops), which bounds decode cost.

Blob layout (little-endian): ``VJPG`` magic, uint32 num_frames, height, width, float32 fps
(20 bytes); uint32 offsets[num_frames + 1] into the JPEG data; the concatenated JPEG bytes.

Dataset-level facts (num_classes, task, short side, quality) ride in the field's 1024-byte
argument block, so a .beton describes itself.

Shape-suffix legend: T frames, H height, W width, 3 RGB channels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import cv2
import numpy as np
from ffcv.fields.base import ARG_TYPE, Field

from vssl_core.interfaces import VideoDecodeError

MAGIC = b"VJPG"
HEADER_BYTES = 20
TASKS = ("classification", "multilabel", "counting")
Task = Literal["classification", "multilabel", "counting"]

_ARGS = np.dtype(
    [
        ("version", "<u2"),
        ("short_side", "<u2"),
        ("quality", "<u1"),
        ("task", "<u1"),
        ("num_classes", "<u4"),
    ]
)
_VERSION = 1


# ---------------------------------------------------------------------------------- blob format


def resize_short_side(frame_HW3: np.ndarray, short_side: int) -> np.ndarray:
    """The frame scaled so that its shorter side is ``short_side`` (area filter when shrinking)."""
    h, w = frame_HW3.shape[:2]
    scale = short_side / min(h, w)
    if scale == 1:
        return frame_HW3
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # cv2 wants (width, height)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(frame_HW3, size, interpolation=interpolation)


def encode_jpeg(frame_HW3: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(frame_HW3, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError(f"OpenCV could not JPEG-encode a frame of shape {frame_HW3.shape}")
    return data.tobytes()


def encode_blob(
    chunks_THW3: Iterable[np.ndarray], fps: float, short_side: int, quality: int
) -> np.ndarray:
    """One video's blob from its frames, given as chunks of uint8 [T, H, W, 3] (so that a long
    video never sits in memory decoded)."""
    jpegs: list[bytes] = []
    height = width = 0
    for chunk_THW3 in chunks_THW3:
        assert chunk_THW3.ndim == 4 and chunk_THW3.shape[3] == 3, (
            f"frames must be [T, H, W, 3], got {chunk_THW3.shape}"
        )
        for frame_HW3 in chunk_THW3:
            small_HW3 = resize_short_side(np.ascontiguousarray(frame_HW3), short_side)
            if not jpegs:
                height, width = small_HW3.shape[:2]
            elif small_HW3.shape[:2] != (height, width):
                raise VideoDecodeError(
                    f"frame {len(jpegs)} is {small_HW3.shape[1]}x{small_HW3.shape[0]} after "
                    f"resizing, the first was {width}x{height}: a video's frames must share one size"
                )
            jpegs.append(encode_jpeg(small_HW3, quality))
    if not jpegs:
        raise VideoDecodeError("the video has no frames")
    offsets = np.zeros(len(jpegs) + 1, np.uint32)
    offsets[1:] = np.cumsum([len(j) for j in jpegs])
    header = np.array([len(jpegs), height, width], "<u4").tobytes() + np.float32(fps).tobytes()
    return np.frombuffer(
        MAGIC + header + offsets.astype("<u4").tobytes() + b"".join(jpegs), np.uint8
    )


def blob_header(blob: np.ndarray) -> tuple[int, int, int, float]:
    """(num_frames, height, width, fps) of a blob; a ValueError when it is not one."""
    if blob.size < HEADER_BYTES or blob[:4].tobytes() != MAGIC:
        raise ValueError("not a vssl video blob (bad magic): the .beton is damaged or not vssl's")
    n, h, w = (int(v) for v in blob[4:16].view("<u4"))
    return n, h, w, float(blob[16:20].view("<f4")[0])


def decode_frames(blob: np.ndarray, indices: Sequence[int]) -> np.ndarray:
    """Frames ``indices`` of a blob as uint8 [T, H, W, 3] RGB (the Python path; the loader's
    compiled decoder reads the same layout)."""
    n, h, w, _ = blob_header(blob)
    offsets = blob[HEADER_BYTES : HEADER_BYTES + 4 * (n + 1)].view("<u4").astype(np.int64)
    data0 = HEADER_BYTES + 4 * (n + 1)
    out_THW3 = np.empty((len(indices), h, w, 3), np.uint8)
    for t, f in enumerate(indices):
        if not 0 <= f < n:
            raise IndexError(f"frame index {f} out of range [0, {n})")
        jpeg = blob[data0 + offsets[f] : data0 + offsets[f + 1]]
        bgr = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"frame {f} of the blob is not a decodable JPEG")
        out_THW3[t] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return out_THW3


# ---------------------------------------------------------------------------------- ffcv field


class VideoJPEGField(Field):
    """An ffcv field holding one video blob per sample (see the module docstring).

    ``encode`` takes a blob from :func:`encode_blob`; the metadata row keeps the pointer and the
    header's numbers, so the decoder sizes its buffers without reading any blob.
    """

    def __init__(
        self,
        short_side: int = 128,
        quality: int = 90,
        num_classes: int = 0,
        task: Task = "classification",
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"task {task!r}: choose one of {TASKS}")
        self.short_side, self.quality = int(short_side), int(quality)
        self.num_classes, self.task = int(num_classes), task

    @property
    def metadata_type(self) -> np.dtype:
        return np.dtype(
            [
                ("ptr", "<u8"),
                ("num_frames", "<u4"),
                ("height", "<u2"),
                ("width", "<u2"),
                ("fps", "<f4"),
            ]
        )

    @staticmethod
    def from_binary(binary: ARG_TYPE) -> VideoJPEGField:
        args = np.frombuffer(binary.tobytes()[: _ARGS.itemsize], _ARGS)[0]
        if int(args["version"]) != _VERSION:
            raise ValueError(
                f"video field version {int(args['version'])} (this vssl reads {_VERSION}): "
                "repack the dataset with `vssl data pack`"
            )
        return VideoJPEGField(
            int(args["short_side"]),
            int(args["quality"]),
            int(args["num_classes"]),
            TASKS[int(args["task"])],
        )

    def to_binary(self) -> ARG_TYPE:
        args = np.zeros(1, _ARGS)
        args[0] = (
            _VERSION,
            self.short_side,
            self.quality,
            TASKS.index(self.task),
            self.num_classes,
        )
        out = np.zeros(1, dtype=ARG_TYPE)[0]  # ffcv's writer stores out[0], its 1024 bytes
        out[0][: _ARGS.itemsize] = args.view(np.uint8)
        return out

    def encode(self, destination, blob: np.ndarray, malloc) -> None:
        n, h, w, fps = blob_header(blob)
        ptr, buffer = malloc(blob.size)
        buffer[:] = blob
        destination["ptr"], destination["num_frames"] = ptr, n
        destination["height"], destination["width"], destination["fps"] = h, w, fps

    def get_decoder_class(self) -> type:
        from vssl_ffcv.decode import ClipDecoder

        return ClipDecoder
