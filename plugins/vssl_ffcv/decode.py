"""The ffcv pipeline operation that turns video blobs into the clips an objective asked for.

Per sample, in ffcv's compiled and parallel loop: draw the keyed plan (frames, crop boxes, flips)
*before* touching pixels, decode only the selected frames (libjpeg-turbo, each distinct frame
once even when several views share it), crop + resize every view's box from the decoded frame
(OpenCV, area filter) and write channels-first, flipping on the way. One decode thus feeds all
``num_clips`` views of a "shared" temporal spec (several crops of the same frames).

The batch "indices" ffcv hands the decoder are codes ``epoch << 40 | index`` (see
:func:`encode_order`): that is how the epoch, which the per-sample key needs, reaches compiled
code without recompiling each epoch.

Shape-suffix legend: B batch, V views, C channels (3), T frames, S crop side, H, W stored frame.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from ffcv.libffcv import imdecode, resize_crop
from ffcv.pipeline.allocation_query import AllocationQuery
from ffcv.pipeline.compiler import Compiler
from ffcv.pipeline.operation import Operation
from ffcv.pipeline.state import State
from numba import njit

from vssl_core.interfaces import ViewSpec
from vssl_ffcv.field import HEADER_BYTES
from vssl_ffcv.sampling import clip_plan, plan_args, sample_key

EPOCH_SHIFT = 40  # sample indices below 2**40, epochs below 2**23
INDEX_MASK = (1 << EPOCH_SHIFT) - 1


def encode_order(epochs: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """The uint64 codes ffcv iterates over for (epoch, index) pairs."""
    if indices.size and (indices.max() > INDEX_MASK or epochs.max() >= 1 << (63 - EPOCH_SHIFT)):
        raise ValueError("sample index or epoch too large for the ffcv order code")
    return (epochs.astype(np.uint64) << np.uint64(EPOCH_SHIFT)) | indices.astype(np.uint64)


@njit(cache=True)
def _u32(blob, p):
    return (
        np.int64(blob[p])
        | (np.int64(blob[p + 1]) << 8)
        | (np.int64(blob[p + 2]) << 16)
        | (np.int64(blob[p + 3]) << 24)
    )


@njit(cache=True)
def _jpeg_span(blob, frame):
    """Byte range [start, end) of ``frame``'s JPEG inside a blob (layout: vssl_ffcv.field)."""
    n = _u32(blob, 4)
    data0 = HEADER_BYTES + 4 * (n + 1)
    return data0 + _u32(blob, HEADER_BYTES + 4 * frame), data0 + _u32(
        blob, HEADER_BYTES + 4 * (frame + 1)
    )


@njit(cache=True)
def _write_chw(src_SS3, dst_CTSS, t, flip):
    """One resized frame [S, S, 3] into slot t of a channels-first clip [3, T, S, S]."""
    size = src_SS3.shape[1]
    for y in range(src_SS3.shape[0]):
        for x in range(size):
            xs = size - 1 - x if flip else x
            for ch in range(3):
                dst_CTSS[ch, t, y, x] = src_SS3[y, xs, ch]


_imdecode = njit(nogil=True)(imdecode)  # ffcv's ctypes calls into libjpeg-turbo and OpenCV
_resize_crop = njit(nogil=True)(resize_crop)


@njit(nogil=True)
def decode_sample(blob, num_frames, height, width, key, plan, out_VCTSS, frame_buf, crop_buf):
    """One sample's views into ``out_VCTSS`` [V, 3, T, S, S]; ``plan`` is
    :func:`~vssl_ffcv.sampling.plan_args`. Returns 1 when a frame failed to decode.

    Module-level, so it compiles once per process, whatever the views: the loaders' own
    (per-loader) compiled code is only the parallel loop around it.
    """
    idx_VT, box_V4, flip_V = clip_plan(num_frames, height, width, key, *plan)
    num_clips, frames, size = out_VCTSS.shape[0], out_VCTSS.shape[2], out_VCTSS.shape[3]
    frame_HW3 = frame_buf[: height * width * 3].reshape(height, width, 3)
    crop_SS3 = crop_buf[: size * size * 3].reshape(size, size, 3)
    failed, decoded = 0, -1
    for t in range(frames):
        for c in range(num_clips):
            f = idx_VT[c, t]
            if f != decoded:  # a frame shared by several views is decoded once
                start, end = _jpeg_span(blob, f)
                # the whole frame: no crop offsets, no DCT scaling (1/1), no flip
                whole = (height, width, 0, 0, 1, 1, False, False)
                err = _imdecode(blob[start:end], frame_HW3, height, width, *whole)
                failed |= err != 0
                decoded = f
            top, left, h, w = box_V4[c, 0], box_V4[c, 1], box_V4[c, 2], box_V4[c, 3]
            _resize_crop(frame_HW3, top, top + h, left, left + w, crop_SS3)
            _write_chw(crop_SS3, out_VCTSS[c], t, flip_V[c])
    return failed


class ClipDecoder(Operation):
    """Decoder for :class:`~vssl_ffcv.field.VideoJPEGField`: per sample, uint8
    [V, 3, T, S, S] following ``views``, with randomness keyed by (seed, epoch, index)."""

    def __init__(self, views: ViewSpec, seed: int) -> None:
        super().__init__()
        self.views, self.seed = views, int(seed)

    def declare_state_and_memory(self, previous_state: State) -> tuple[State, tuple]:
        v = self.views
        out_shape = (v.num_clips, 3, v.frames, v.crop_size, v.crop_size)
        pixels = self.metadata["height"].astype(np.uint64) * self.metadata["width"]
        u8 = np.dtype("<u1")
        return (
            replace(previous_state, jit_mode=True, shape=out_shape, dtype=u8),
            (
                AllocationQuery(out_shape, u8),
                AllocationQuery((int(pixels.max()) * 3,), u8),  # one decoded frame
                AllocationQuery((v.crop_size * v.crop_size * 3,), u8),  # one resized crop
            ),
        )

    def generate_code(self):
        mem_read = self.memory_read
        loop = Compiler.get_iterator()
        plan = plan_args(self.views)
        seed = np.int64(self.seed)
        mask, shift = np.uint64(INDEX_MASK), np.uint64(EPOCH_SHIFT)

        def decode(codes_B, storage, metadata, storage_state):
            out_BVCTSS, frame_buf, crop_buf = storage
            failed_B = np.zeros(len(codes_B), np.int64)  # no raise inside prange: it serialises
            for b in loop(len(codes_B)):
                index, epoch = np.int64(codes_B[b] & mask), np.int64(codes_B[b] >> shift)
                row = metadata[index]
                failed_B[b] = decode_sample(
                    mem_read(row["ptr"], storage_state),
                    np.int64(row["num_frames"]),
                    np.int64(row["height"]),
                    np.int64(row["width"]),
                    sample_key(seed, epoch, index, 0),
                    plan,
                    out_BVCTSS[b],
                    frame_buf[b],
                    crop_buf[b],
                )
            if failed_B.any():
                raise ValueError("libjpeg-turbo could not decode a frame of a packed video")
            return out_BVCTSS[: len(codes_B)]

        decode.is_parallel = True
        return decode
