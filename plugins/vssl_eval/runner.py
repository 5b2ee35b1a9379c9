"""The test pass: a sharded multi-view loader, a model's per-clip scores aggregated per video,
metrics synced across ranks, and the per-video rows for ``predictions.jsonl``.

Shape legend: B videos, V views per video, N = B * V clips, C channels, T frames, S crop size,
K classes (or 1 for counts, D for features).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from vssl_core.data.clips import normalize_uint8
from vssl_core.engine.precision import autocast as precision_autocast
from vssl_core.interfaces import VideoDataset
from vssl_eval.metrics import build_metrics
from vssl_eval.multiview import MultiViewClips, ViewBatch, ViewPlan, collate_views

CL3D = torch.channels_last_3d


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the job (rank 0 of 1 without torchrun) and its device."""

    rank: int
    world_size: int
    device: torch.device

    @classmethod
    def current(cls, device: torch.device) -> DistEnv:
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size(), device)
        return cls(0, 1, device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


@dataclass
class TestOutput:
    metrics: dict[str, float]
    rows: list[dict] = field(default_factory=list)  # this rank's videos
    failed: list[dict] = field(default_factory=list)  # this rank's undecodable videos


def autocast(device: torch.device, precision: str):
    """The trainer's autocast on a GPU (bf16, or fp16 where the recipe asks); fp32 on a CPU."""
    if device.type == "cuda":
        return precision_autocast(device, precision)
    return contextlib.nullcontext()


def view_loader(
    dataset: VideoDataset, views: ViewPlan, env: DistEnv, batch_size: int, num_workers: int
) -> DataLoader:
    """This rank's share of the videos (every world_size-th one; none is repeated)."""
    shard = MultiViewClips(dataset, range(env.rank, len(dataset), env.world_size), views)
    return DataLoader(
        shard,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_views,
        pin_memory=env.device.type == "cuda",
    )


def weights_in_ndhwc(model: torch.nn.Module) -> bool:
    """Whether the trainer put this model's 3-D convolutions in NDHWC (train.channels_last)."""
    return any(
        p.ndim == 5 and not p.is_contiguous() and p.is_contiguous(memory_format=CL3D)
        for p in model.parameters()
    )


def batch_scores(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    batch: ViewBatch,
    env: DistEnv,
    mean: tuple,
    std: tuple,
    precision: str,
    channels_last: bool = False,
) -> torch.Tensor:
    """Per-view scores [B, V, K] of one batch of videos; ``channels_last`` hands the clips over
    in NDHWC, the layout of a model trained that way (made while still uint8: 4x cheaper)."""
    B, V = batch.views.shape[:2]
    clips = batch.views.to(env.device, non_blocking=True).flatten(0, 1)
    if channels_last:
        clips = clips.contiguous(memory_format=CL3D)
    clips = normalize_uint8(clips, mean, std)
    with torch.no_grad(), autocast(env.device, precision):
        scores_NK = score_fn(clips).float()
    if scores_NK.ndim != 2 or scores_NK.shape[0] != B * V:
        raise ValueError(f"a test forward of {B * V} clips returned {list(scores_NK.shape)}")
    return scores_NK.view(B, V, -1)


def run_test(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    loader: DataLoader,
    env: DistEnv,
    task: str,
    num_classes: int,
    to_video: Callable[[torch.Tensor], torch.Tensor],
    mean: tuple,
    std: tuple,
    precision: str,
    channels_last: bool = False,
) -> TestOutput:
    """Score every video of the loader: per-clip outputs [B, V, *] -> ``to_video`` -> [B, K]
    (e.g. :func:`aggregate` of softmax scores, or a kNN vote on features). Metrics are synced
    over ranks; rows stay on their rank."""
    metric = build_metrics(task, num_classes).to(env.device)
    out = TestOutput(metrics={})
    for batch in loader:
        out.failed += batch.failed
        if batch.views is None:
            continue
        scores = batch_scores(score_fn, batch, env, mean, std, precision, channels_last)
        video_BK = to_video(scores)
        labels = batch.labels.to(env.device)
        metric.update(video_BK[:, 0] if task == "counting" else video_BK, labels)
        out.rows += prediction_rows(task, batch, video_BK.cpu())
    out.metrics = metric.compute()
    return out


def prediction_rows(task: str, batch: ViewBatch, video_BK: torch.Tensor) -> list[dict]:
    """One JSON-ready row per video: id, label, prediction and the aggregated scores."""
    rows = []
    for b, index in enumerate(batch.index):
        scores = video_BK[b]
        label = batch.labels[b]
        if task == "classification":
            pred, label_out = int(scores.argmax()), int(label)
        elif task == "multilabel":
            pred = [int(k) for k in torch.nonzero(scores >= 0.5).flatten()]
            label_out = [int(k) for k in torch.nonzero(label > 0.5).flatten()]
        else:
            pred, label_out = round(float(scores[0])), float(label)
        rows.append(
            {
                "index": index,
                "video_id": batch.video_ids[b],
                "label": label_out,
                "prediction": pred,
                "scores": [round(float(x), 6) for x in scores],
            }
        )
    return rows
