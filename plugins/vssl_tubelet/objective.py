"""Tubelet-contrastive learning: MoCo between two clips of different videos that share the same
synthetic moving, transforming tubelets.

Paper: Thoker, Doughty, Snoek, "Tubelet-Contrastive Self-Supervision for Video-Efficient
Generalization", ICCV 2023. Official code followed: fmthoker/tubelet-contrast @ 5f9a715
(``pyvrl/models/pretraining/tubeletcontrast/{model,dataset,tubelets}.py``, config
``configs/moco/r2plus1d_18/pretraining_mini_kinetics.py``); spec contrastive-and-severe.md §4.1,
§5. Submodule names are the official checkpoint's: ``backbone``, ``fc``, ``key_encoder``,
``key_fc`` (the queue is ``queue.queue`` [K, D], the transpose of the official ``queue``).

One step: the query clip is sample i's first clip with tubelets cut from it (``tubelets.py``);
the key clip is ANOTHER video's clip with the SAME tubelets (same patches, paths, masks,
rotations), plus one photometric jitter shared by both (``color.py``). The query encoder
(``backbone`` + ``fc``) embeds the query; the momentum key encoder (``key_encoder`` +
``key_fc``, no gradient) embeds the key with shuffle-BN; InfoNCE against a queue of past keys.

Decisions (where the official code or the framework leaves freedom):
- Pairing in the batch: the official loader reads a random second video per sample. Here each
  sample brings two independently sampled and augmented clips of its own video, and sample i's
  key background is the SECOND clip of sample (i+1) mod B of the local batch (``roll`` by one),
  so the two backgrounds always come from different videos (different dataset indices) and the
  key background is never the pixels of another sample's query. Needs a per-rank batch >= 2.
- The tubelets of pair i are drawn from sample i's key only, so they are the same wherever the
  sample lands; the key background depends on the batch neighbour (like the official random
  video, it is not a property of the sample).
- Temporal sampling: the official loader draws the stride from {1, 2, 3, 4} with per-frame
  jitter; vssl views have one fixed ``stride`` (default 2). Spatial: ``multiscale_crop`` + flip
  stands in for GroupScale((149|171|192)x(112|128|144)) + random crop 112 + flip.
- Momentum update and enqueue in ``after_step`` (once per optimizer step, as vssl's MoCo): the
  key weights each forward sees equal the official update at the start of the next forward.
- ``bn_groups`` splits each forward into BN groups (queries and keys), so one process can
  emulate N GPUs' shuffle-BN exactly; None: one group per process.

Shape legend: B batch (per rank), C channels, T frames, H height, W width, F backbone features,
D embedding width, K queue size.
"""

from typing import Literal

import torch
from torch import nn

from vssl_core.interfaces import Batch, ObjectiveOutput, ViewSpec
from vssl_core.nn.momentum import MomentumContrast
from vssl_core.registry import component
from vssl_tubelet.color import shared_color_jitter
from vssl_tubelet.loss import nce_loss
from vssl_tubelet.tubelets import TubeletConfig, overlay_pair

__all__ = ["TubeletContrast", "projection_head"]


def projection_head(features: int, dim: int, mlp: bool) -> nn.Module:
    """The official ``fc``: Linear(F, F) -> ReLU -> Linear(F, dim) with ``mlp``, else Linear."""
    if not mlp:
        return nn.Linear(features, dim)
    return nn.Sequential(
        nn.Linear(features, features), nn.ReLU(inplace=True), nn.Linear(features, dim)
    )


def _check(name: str, ok: bool, value: object, need: str) -> None:
    if not ok:
        raise ValueError(f"tubelet {name}={value!r}: {need}")


@component("objective", name="tubelet")
class TubeletContrast(MomentumContrast):
    """Tubelet-contrastive MoCo: positives share synthetic tubelets, not video content."""

    def __init__(
        self,
        backbone: nn.Module,
        num_tubelets: int = 2,
        motion: Literal["nonlinear", "linear"] = "nonlinear",
        transformation: Literal["rotation", "shear", "scale", "none"] = "rotation",
        color_jitter: bool = True,
        dim: int = 128,
        queue_size: int = 16384,
        momentum: float = 0.999,
        momentum_schedule: Literal["constant", "cosine"] = "constant",
        temperature: float = 0.2,
        mlp: bool = True,
        stride: int = 2,
        augmentation: Literal["multiscale_crop", "random_resized_crop", "none"] = "multiscale_crop",
        flip: bool = True,
        shuffle_bn: bool = True,
        bn_groups: int | None = None,
    ) -> None:
        super().__init__()
        _check("num_tubelets", num_tubelets >= 1, num_tubelets, "must be >= 1 (released: 2)")
        _check("dim", dim >= 1, dim, "the embedding width must be >= 1 (released: 128)")
        _check("queue_size", queue_size >= 1, queue_size, "use a multiple of the global batch")
        _check("temperature", temperature > 0, temperature, "must be > 0 (released: 0.2)")
        frames, height, width = backbone.input_size
        _check("backbone", height == width, backbone.input_size, "needs square crops (H == W)")
        _check("backbone", height >= 8, backbone.input_size, "tubelets need crops >= 8 px")
        self._views = ViewSpec(  # built now so a bad stride fails at build time
            frames=frames,
            crop_size=height,
            stride=stride,
            num_clips=2,
            augmentation=augmentation,
            flip=flip,
            shared_augmentation=False,
            temporal="independent",
        )
        self.tubelets = TubeletConfig(
            num_tubelets=num_tubelets, motion=motion, transformation=transformation
        )
        self.color_jitter = color_jitter
        self.temperature = temperature
        self.backbone = backbone
        self.fc = projection_head(backbone.num_features, dim, mlp)
        self.init_momentum_contrast(
            method="tubelet",
            online=("backbone", "fc"),
            key=("key_encoder", "key_fc"),
            dim=dim,
            queue_size=queue_size,
            momentum=momentum,
            momentum_schedule=momentum_schedule,
            shuffle_bn=shuffle_bn,
            bn_groups=bn_groups,
        )

    def views(self) -> ViewSpec:
        return self._views

    @torch.no_grad()
    def make_pair(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(query, key) clips [B, C, T, H, W]: sample i's clip 0 and sample (i+1)'s clip 1, both
        with sample i's tubelets and colour jitter."""
        assert len(batch.clips) == 2, f"tubelet needs 2 views per sample, got {len(batch.clips)}"
        query_bg, second = batch.clips
        B = query_bg.shape[0]
        if B < 2:
            raise ValueError(
                "tubelet pairs each sample with another sample of its per-rank batch; got a "
                "batch of 1. Raise batch.global_size (or batch.per_rank) to >= 2 per rank."
            )
        assert batch.keys.shape == (B,), f"keys {list(batch.keys.shape)} for a batch of {B}"
        keys_B = batch.keys.to(query_bg.device)
        with torch.autocast(query_bg.device.type, enabled=False):
            key_bg = second.float().roll(-1, dims=0)
            query, key, _ = overlay_pair(query_bg.float(), key_bg, keys_B, self.tubelets)
            if self.color_jitter:
                query, key = shared_color_jitter(
                    [query, key], keys_B, self._views.mean, self._views.std
                )
        return query, key

    def forward(self, batch: Batch) -> ObjectiveOutput:
        query_BCTHW, key_BCTHW = self.make_pair(batch)
        q_BD = self.embed_queries(query_BCTHW)
        k_BD = self.embed_keys(key_BCTHW, batch.keys)
        assert q_BD.shape == k_BD.shape, f"queries {list(q_BD.shape)} vs keys {list(k_BD.shape)}"
        loss, metrics = nce_loss(q_BD, k_BD, self.queue.negatives(), self.temperature)
        return ObjectiveOutput(loss=loss, metrics=metrics)
