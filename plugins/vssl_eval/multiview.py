"""Multi-view testing: every test video as n temporal clips x m spatial crops, one prediction.

Temporal: n clips with evenly spaced starts ``int(linspace(0, max(nf - span, 0), n))``
(SEVERE's dense test, VideoMAE's ``test_num_segment``; spec contrastive-and-severe §6.5); a
video shorter than a clip is padded as the training clips are (``pad``). With ``temporal:
segments`` (a model trained on TSN segments, e.g. counting over the whole video) clip k takes
the frame at fraction (k + 0.5) / n of each of ``frames`` equal segments instead. Spatial: the short side
is resized to ``short_side`` and ``num_crops`` squares of ``crop_size`` are taken (1: the
centre; 3: start, centre and end of the long side, VideoMAE's and SlowFast's 3-crop test); the
crop is cut from the original frame and resized once, the geometry of resize-then-crop. Both
come from ``vssl_core.data`` (``evenly_spaced_clip_indices``, ``eval_crop_boxes``), the same
functions the core's test views use.
Aggregation: the mean of the per-view scores (softmax probabilities: SEVERE, VideoMAE) or their
element-wise max (sigmoid scores of Charades, §6.7).

Unlike the training loader, which replaces a video that fails to decode, the test never
replaces one: it is counted and listed in ``metrics.json`` and left out of the metrics.

Shape legend: V views (clips x crops, clip-major), C channels, T frames, H height, W width,
S crop size, B videos, K classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vssl_core.data.failures import is_decode_error
from vssl_core.data.sampling import evenly_spaced_clip_indices, fixed_segment_indices
from vssl_core.data.transforms import crop_resize, eval_crop_boxes
from vssl_core.interfaces import VideoDataset, VideoDecodeError


@dataclass(frozen=True)
class ViewPlan:
    """How a test video becomes views."""

    frames: int
    stride: int
    crop_size: int
    short_side: int
    num_clips: int
    num_crops: int
    pad: str = "repeat_last"
    temporal: str = "clips"  # "clips" (strided clips) or "segments" (one frame per segment)

    @property
    def per_video(self) -> int:
        return self.num_clips * self.num_crops


class MultiViewClips(torch.utils.data.Dataset):
    """Position i -> every view of video ``indices[i]`` as uint8 [V, C, T, S, S].

    A video that cannot be decoded comes back as an ``error`` entry: it is counted and listed
    in the results, never silently dropped or replaced.
    """

    def __init__(self, dataset: VideoDataset, indices: Sequence[int], views: ViewPlan):
        self.dataset, self.indices, self.views = dataset, list(indices), views

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        index = self.indices[i]
        try:
            sample = self.dataset[index]
            views_VCTHW = self._views(sample.video)
        except Exception as exc:
            if not is_decode_error(exc):  # a bug, not a bad video
                raise
            return {"index": index, "video_id": str(index), "error": f"{type(exc).__name__}: {exc}"}
        return {
            "views": views_VCTHW,
            "label": sample.label,
            "index": index,
            "video_id": sample.video_id or str(index),
        }

    def _views(self, video) -> torch.Tensor:
        v = self.views
        if video.num_frames < 1:
            raise VideoDecodeError(f"{video!r}: the video has no frames")
        if v.temporal == "segments":
            clips_NT = fixed_segment_indices(video.num_frames, v.frames, v.num_clips)
        else:
            clips_NT = evenly_spaced_clip_indices(
                video.num_frames, v.frames, v.stride, v.num_clips, v.pad
            )
        wanted = np.unique(np.concatenate(clips_NT))  # read each frame once, in order
        frames_THWC = video.read(wanted.tolist())
        all_CTHW = torch.from_numpy(np.ascontiguousarray(frames_THWC)).permute(3, 0, 1, 2)
        _, _, h, w = all_CTHW.shape
        boxes = eval_crop_boxes(h, w, v.crop_size, v.num_crops, v.short_side)
        views = []
        for idx_T in clips_NT:
            clip_CTHW = all_CTHW[:, np.searchsorted(wanted, idx_T)]
            views += [crop_resize(clip_CTHW, box, v.crop_size) for box in boxes]
        return torch.stack(views)


@dataclass
class ViewBatch:
    views: torch.Tensor | None  # uint8 [B, V, C, T, S, S]; None when every video failed
    labels: torch.Tensor | None
    index: list[int]
    video_ids: list[str]
    failed: list[dict]  # {index, video_id, error} of videos that could not be decoded


def collate_views(samples: Sequence[dict]) -> ViewBatch:
    ok = [s for s in samples if "error" not in s]
    failed = [s for s in samples if "error" in s]
    views = torch.stack([s["views"] for s in ok]) if ok else None
    return ViewBatch(
        views=views,
        labels=_labels([s["label"] for s in ok]) if ok else None,
        index=[s["index"] for s in ok],
        video_ids=[s["video_id"] for s in ok],
        failed=failed,
    )


def _labels(labels: list) -> torch.Tensor:
    """Class indices -> long [B]; multi-hot arrays -> float [B, K]; counts -> float [B]."""
    if isinstance(labels[0], np.ndarray):
        return torch.from_numpy(np.stack(labels)).float()
    if isinstance(labels[0], float):
        return torch.tensor(labels, dtype=torch.float32)
    return torch.tensor(labels, dtype=torch.long)


def aggregate(scores_BVK: torch.Tensor, how: str) -> torch.Tensor:
    """One score vector per video from its views: their mean or element-wise max."""
    if scores_BVK.ndim != 3:
        raise ValueError(f"aggregate expects scores [B, V, K], got {list(scores_BVK.shape)}")
    if how == "mean":
        return scores_BVK.mean(dim=1)
    if how == "max":
        return scores_BVK.amax(dim=1)
    raise ValueError(f"unknown view aggregation {how!r}; use 'mean' or 'max'")
