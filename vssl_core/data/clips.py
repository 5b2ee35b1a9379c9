"""From dataset samples to the clips (views) an objective declared, and their collation.

Shape legend: B batch, C channels (RGB), T frames, H height, W width.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from vssl_core.data.failures import FailureTracker, is_decode_error, replacement_index
from vssl_core.data.photometric import apply_photometric, draw_for_views
from vssl_core.data.sampling import (
    evenly_spaced_clip_indices,
    fixed_segment_indices,
    jittered_clip_indices,
    random_clip_indices,
    random_segment_indices,
    sequence_clip_indices,
)
from vssl_core.data.transforms import Box, crop_resize, draw_box, eval_crop_boxes
from vssl_core.device_constants import device_constant
from vssl_core.interfaces import Batch, VideoDataset, VideoDecodeError, VideoSample, ViewSpec
from vssl_core.random import numpy_rng, sample_key

STREAM_TEMPORAL, STREAM_SPATIAL, STREAM_COLOR = 1, 2, 4  # numpy_rng streams of a sample's key


class ClipDataset:
    """Map-style dataset over ``(epoch, index)`` pairs returning one sample's views.

    All randomness comes from the sample's key, so a sample looks the same in any worker, on any
    rank and after a resume. A video that fails to decode is replaced by another sample chosen
    from the key and the attempt number (at most ``max_retries`` times); each failing video is
    logged once and counted, and loading stops with a :class:`DataLoadingError` when more than
    ``max_failed_fraction`` of this process's loads fail (see :mod:`vssl_core.data.failures`).
    A returned sample's ``index`` is the sample actually loaded; its ``key`` stays that of the
    requested one, so on-device randomness does not depend on failures.

    With ``repeats`` k > 1 (VideoMAE v2's ``num_sample``, "repeated augmentation") an item is a
    list of k samples cut from one decode: the same frames, each with its own crop, flip, colour
    and key (so its own mask on the device). Decoding, the usual bottleneck, is paid once per k
    clips.
    """

    def __init__(
        self,
        dataset: VideoDataset,
        views: ViewSpec,
        seed: int,
        max_failed_fraction: float = 0.01,
        max_retries: int = 10,
        repeats: int = 1,
    ):
        if max_retries < 0:
            raise ValueError(f"data.max_retries={max_retries}: use 0 or more replacements")
        if repeats < 1:
            raise ValueError(f"data.repeats={repeats}: use 1 (no repetition) or more")
        self.dataset, self.views, self.seed, self.repeats = dataset, views, seed, repeats
        self.max_retries = max_retries
        self.failures = FailureTracker(max_failed_fraction)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]) -> dict | list[dict]:
        epoch, index = item
        key = sample_key(self.seed, epoch, index)
        tried: list[int] = []
        failed_paths: list[str] = []
        for attempt in range(self.max_retries + 1):
            idx = index if attempt == 0 else replacement_index(key, attempt, len(self.dataset))
            tried.append(idx)
            if self.failures.known_bad(idx):  # fails again for sure: skip the decode
                failed_paths.append(self._path(idx))
                self.failures.record_failure(idx, failed_paths[-1], None)
                continue
            try:
                sample, frames = self._decode(idx, numpy_rng(key, STREAM_TEMPORAL))
            except Exception as exc:
                if not is_decode_error(exc):
                    raise
                failed_paths.append(self._path(idx))
                self.failures.record_failure(idx, failed_paths[-1], exc)
                continue
            self.failures.record_ok()
            out = [
                {
                    "clips": self._augment(frames, k),
                    "label": sample.label,
                    "index": idx,
                    "key": k,
                    "decode_failures": len(failed_paths) if r == 0 else 0,  # counted once
                    "failed_paths": failed_paths if r == 0 else [],
                }
                for r, k in enumerate(self._repeat_keys(key, epoch, index))
            ]
            return out[0] if self.repeats == 1 else out
        raise self.failures.exhausted(index, tried)

    def _repeat_keys(self, key: int, epoch: int, index: int) -> list[int]:
        """The sample's key, then one more per extra repeat (stream r of the same sample)."""
        extra = [sample_key(self.seed, epoch, index, stream=r) for r in range(1, self.repeats)]
        return [key, *extra]

    # ------------------------------------------------------------------------------- decoding
    def _path(self, index: int) -> str:
        """The video's file for messages, when the dataset has files."""
        video_path = getattr(self.dataset, "video_path", None)
        if video_path is not None:
            try:
                return str(video_path(index))
            except Exception:  # a message helper must not raise on top of the real failure
                pass
        return f"sample {index} of {type(self.dataset).__name__}"

    def _decode(self, index: int, rng: np.random.Generator) -> tuple[VideoSample, list[np.ndarray]]:
        """The sample and each clip's frames [T, H, W, 3]. Every frame any clip needs is read in
        one call, in increasing order and once, which suits seeking decoders."""
        sample = self.dataset[index]
        video = sample.video
        if video.num_frames < 1:
            raise VideoDecodeError(f"{self._path(index)}: the video has no frames")
        clips_idx = self._clip_indices(video.num_frames, rng)
        wanted, inverse = np.unique(np.concatenate(clips_idx), return_inverse=True)
        frames_NHWC = video.read(wanted.tolist())
        if (
            not isinstance(frames_NHWC, np.ndarray)
            or frames_NHWC.ndim != 4
            or frames_NHWC.shape[0] != len(wanted)
            or frames_NHWC.shape[3] != 3
        ):
            got = getattr(frames_NHWC, "shape", type(frames_NHWC).__name__)
            raise VideoDecodeError(
                f"{self._path(index)}: asked for {len(wanted)} frames (of {video.num_frames}), "
                f"the decoder returned {got}; the file is probably truncated"
            )
        per_clip = np.split(inverse.reshape(-1), np.cumsum([len(c) for c in clips_idx])[:-1])
        return sample, [frames_NHWC[i] for i in per_clip]

    def _clip_indices(self, num_frames: int, rng: np.random.Generator) -> list[np.ndarray]:
        spec = self.views
        if spec.temporal == "sequence":
            return sequence_clip_indices(
                num_frames, spec.frames, spec.stride, spec.num_clips, spec.gap, rng, spec.pad
            )
        if spec.temporal == "segments":
            return [
                random_segment_indices(num_frames, spec.frames, rng) for _ in range(spec.num_clips)
            ]
        if spec.temporal == "test_segments":
            return fixed_segment_indices(num_frames, spec.frames, spec.num_clips)
        if spec.temporal == "test_clips":
            return evenly_spaced_clip_indices(
                num_frames, spec.frames, spec.stride, spec.num_clips, spec.pad
            )
        if spec.temporal == "shared":
            return [self._random_clip(num_frames, rng)] * spec.num_clips
        return [self._random_clip(num_frames, rng) for _ in range(spec.num_clips)]

    def _random_clip(self, num_frames: int, rng: np.random.Generator) -> np.ndarray:
        spec = self.views
        if spec.strides or spec.temporal_jitter:
            strides = spec.strides or (spec.stride,)
            return jittered_clip_indices(
                num_frames, spec.frames, strides, spec.temporal_jitter, rng, spec.pad
            )
        return random_clip_indices(num_frames, spec.frames, spec.stride, rng, spec.pad)

    # ------------------------------------------------------------------------------- augmenting
    def _augment(self, frames: list[np.ndarray], key: int) -> list[torch.Tensor]:
        """Crop (and flip, and colour) each clip with one draw per clip, or one per sample with
        ``shared_augmentation``; uint8 [C, T, H, W] views, clip-major over test crops."""
        spec = self.views
        s_rng, c_rng = numpy_rng(key, STREAM_SPATIAL), numpy_rng(key, STREAM_COLOR)
        views: list[torch.Tensor] = []
        boxes: list[Box] | None = None
        flip, photo = False, None
        for frames_THWC in frames:
            clip_CTHW = torch.from_numpy(np.ascontiguousarray(frames_THWC)).permute(3, 0, 1, 2)
            if boxes is None or not spec.shared_augmentation:
                boxes = self._boxes(clip_CTHW.shape[2], clip_CTHW.shape[3], s_rng)
                flip = spec.flip and bool(s_rng.integers(2))
                photo = draw_for_views(c_rng, spec)
            for box in boxes:
                view = crop_resize(clip_CTHW, box, spec.crop_size)
                view = view.flip(-1) if flip else view
                views.append(apply_photometric(view, photo) if photo is not None else view)
        return views

    def _boxes(self, height: int, width: int, rng: np.random.Generator) -> list[Box]:
        spec = self.views
        if spec.augmentation == "none":
            return eval_crop_boxes(height, width, spec.crop_size, spec.test_crops, spec.short_side)
        return [draw_box(spec.augmentation, height, width, spec.crop_size, rng, spec.crop_scale)]


def collate(samples: Sequence[dict | list[dict]]) -> Batch:
    """Stack the views; ``extra["decode_failures"]`` counts the videos that failed to decode for
    this batch's samples (each replaced by another sample) and ``extra["decode_failed_paths"]``
    names them, so the training process can log them whichever worker met them. Repeated
    samples (a list per video) are flattened: a video's clips sit next to each other."""
    samples = [s for item in samples for s in (item if isinstance(item, list) else [item])]
    num_views = len(samples[0]["clips"])
    paths = [p for s in samples for p in s.get("failed_paths", ())]
    return Batch(
        clips=[torch.stack([s["clips"][v] for s in samples]) for v in range(num_views)],
        label=_collate_labels([s["label"] for s in samples]),
        index=torch.tensor([s["index"] for s in samples], dtype=torch.long),
        keys=torch.tensor([s["key"] for s in samples], dtype=torch.long),
        extra={
            "decode_failures": sum(s.get("decode_failures", 0) for s in samples),
            "decode_failed_paths": paths,
        },
    )


def _collate_labels(labels: list) -> torch.Tensor:
    """Class indices -> long [B]; multi-hot arrays -> float [B, K]; counts -> float [B]."""
    if isinstance(labels[0], np.ndarray):
        return torch.from_numpy(np.stack(labels)).float()
    if isinstance(labels[0], float):
        return torch.tensor(labels, dtype=torch.float32)
    return torch.tensor(labels, dtype=torch.long)


def normalize_uint8(
    clips: torch.Tensor, mean: Sequence[float], std: Sequence[float], channel_dim: int = 1
) -> torch.Tensor:
    """uint8 clips -> float32 (x / 255 - mean) / std per channel, on the clips' device."""
    shape = [1] * clips.ndim
    shape[channel_dim] = 3
    mean_ = device_constant(tuple(mean), clips.device).view(shape) * 255
    std_ = device_constant(tuple(std), clips.device).view(shape) * 255
    # uint8 - float promotes in the kernel: 2 passes over the float clip, not 3 (.float() first
    # would write a float copy before the subtraction); the same numbers, bit for bit
    return (clips - mean_).div_(std_)


def normalize_on_device(batch: Batch, views: ViewSpec) -> Batch:
    """uint8 [B,C,T,H,W] -> float normalized with the view's mean/std, on the batch's device
    (left uint8 for an objective that normalizes them itself: ``views.normalized`` False)."""
    if not batch.clips or batch.clips[0].dtype != torch.uint8 or not views.normalized:
        return batch
    batch.clips = [normalize_uint8(c, views.mean, views.std) for c in batch.clips]
    return batch
