"""From dataset samples to the clips (views) an objective declared, and their collation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from vssl_core.data.sampling import random_clip_indices, sequence_clip_indices
from vssl_core.data.transforms import crop_resize, draw_box
from vssl_core.interfaces import Batch, VideoDataset, ViewSpec
from vssl_core.random import numpy_rng, sample_key

STREAM_TEMPORAL, STREAM_SPATIAL = 1, 2


class ClipDataset:
    """Map-style dataset over ``(epoch, index)`` pairs returning one sample's views.

    All randomness comes from the sample's key, so a sample looks the same in any worker, on any
    rank and after a resume.
    """

    def __init__(self, dataset: VideoDataset, views: ViewSpec, seed: int):
        self.dataset, self.views, self.seed = dataset, views, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]) -> dict:
        epoch, index = item
        sample = self.dataset[index]
        key = sample_key(self.seed, epoch, index)
        t_rng = numpy_rng(key, STREAM_TEMPORAL)
        s_rng = numpy_rng(key, STREAM_SPATIAL)
        spec = self.views
        clips, box, flip = [], None, False
        for idx in self._clip_indices(sample.video.num_frames, t_rng):
            frames_THWC = sample.video.read(idx.tolist())
            clip_CTHW = torch.from_numpy(np.ascontiguousarray(frames_THWC)).permute(3, 0, 1, 2)
            if box is None or not spec.shared_augmentation:
                _, _, h, w = clip_CTHW.shape
                box = draw_box(spec.augmentation, h, w, spec.crop_size, s_rng)
                flip = spec.flip and bool(s_rng.integers(2))
            clip = crop_resize(clip_CTHW, box, spec.crop_size)
            clips.append(clip.flip(-1) if flip else clip)
        return {"clips": clips, "label": sample.label, "index": index, "key": key}

    def _clip_indices(self, num_frames: int, rng: np.random.Generator) -> list[np.ndarray]:
        spec = self.views
        if spec.temporal == "sequence":
            return sequence_clip_indices(
                num_frames, spec.frames, spec.stride, spec.num_clips, spec.gap, rng
            )
        if spec.temporal == "shared":
            return [random_clip_indices(num_frames, spec.frames, spec.stride, rng)] * spec.num_clips
        return [
            random_clip_indices(num_frames, spec.frames, spec.stride, rng)
            for _ in range(spec.num_clips)
        ]


def collate(samples: Sequence[dict]) -> Batch:
    num_views = len(samples[0]["clips"])
    return Batch(
        clips=[torch.stack([s["clips"][v] for s in samples]) for v in range(num_views)],
        label=_collate_labels([s["label"] for s in samples]),
        index=torch.tensor([s["index"] for s in samples], dtype=torch.long),
        keys=torch.tensor([s["key"] for s in samples], dtype=torch.long),
    )


def _collate_labels(labels: list) -> torch.Tensor:
    """Class indices -> long [B]; multi-hot arrays -> float [B, K]; counts -> float [B]."""
    if isinstance(labels[0], np.ndarray):
        return torch.from_numpy(np.stack(labels)).float()
    if isinstance(labels[0], float):
        return torch.tensor(labels, dtype=torch.float32)
    return torch.tensor(labels, dtype=torch.long)


def normalize_on_device(batch: Batch, views: ViewSpec) -> Batch:
    """uint8 [B,C,T,H,W] -> float normalized with the view's mean/std, on the batch's device."""
    if not batch.clips or batch.clips[0].dtype != torch.uint8:
        return batch
    device = batch.clips[0].device
    mean = torch.tensor(views.mean, device=device).view(1, 3, 1, 1, 1) * 255
    std = torch.tensor(views.std, device=device).view(1, 3, 1, 1, 1) * 255
    batch.clips = [(c.float() - mean) / std for c in batch.clips]
    return batch
