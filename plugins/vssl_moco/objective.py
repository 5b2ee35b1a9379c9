"""Video MoCo v2: momentum contrast between two views of one video.

Papers: He, Fan, Wu, Xie, Girshick, "Momentum Contrast for Unsupervised Visual Representation
Learning", CVPR 2020; Chen, Fan, Girshick, He, "Improved Baselines with Momentum Contrastive
Learning" (MoCo v2), arXiv 2003.04297. Official code followed: facebookresearch/moco
(``moco/builder.py``, ``main_moco.py``) and its video re-implementation in microsoft/CtP
(``pyvrl/models/pretraining/moco``, "two clips of one video" positives) and tinapan-pt/VideoMoCo
("one clip, two augmentations"); spec contrastive-and-severe.md §4.

One step: the query encoder (``backbone`` + ``projector``) embeds view 0; the key encoder
(``key_backbone`` + ``key_projector``, a momentum copy that gets no gradient) embeds view 1 with
shuffle-BN; InfoNCE contrasts each query with its key against a queue of past keys.

Decisions (where the official code leaves freedom):
- Augmentation: random resized crop with area (0.2, 1) and MoCo v2's photometric set
  (``photometric: mocov2``), drawn once per clip and applied to all its frames; VideoMoCo's
  kornia ops may draw per frame instead (spec §4.2b).
- Momentum update in ``after_step`` (after the optimizer step), not at the start of ``forward``.
  The key weights every forward sees are the same as MoCo's: MoCo's update at forward t uses θ
  after t optimizer steps, and so does ours, done right after step t (its first update is a
  no-op since ξ = θ at start). Unlike an update in ``forward``, it runs once per optimizer step
  under gradient accumulation, never in eval mode, and has happened before a checkpoint is saved.
- ``momentum_schedule: cosine`` (not MoCo v2's; MoCo v3's and BYOL's) raises the momentum from
  ``momentum`` to 1 over the run, whose length the trainer gives (``Objective.run``); the default
  "constant" is MoCo v2's fixed 0.999.
- Keys are all-gathered in ``forward`` but enqueued in ``after_step``: every micro-batch of a
  step sees the same queue, so gradient accumulation equals one big batch, and the pointer
  advances by the global batch once per step.
- ``bn_groups`` sets how many BN batches the (per-forward, all-ranks) batch is split into, for
  queries and keys alike, so a 1-process run with ``bn_groups: N`` computes exactly what N
  processes with one group each compute (shuffle-BN included); None: one group per process.
- Under DDP every rank enqueues the same all-gathered keys, so the queue and its pointer are
  identical on all ranks and DDP's per-forward buffer broadcast from rank 0 changes nothing.
  The key encoder's BN running statistics differ per rank and get rank 0's by that broadcast;
  they are never used in training (the key encoder runs in train mode, on batch statistics).

Shape legend: B batch (per rank), C channels, T frames, H height, W width, F backbone features,
D embedding width, K queue size.
"""

from typing import Literal

from torch import nn

from vssl_core.interfaces import Batch, ObjectiveOutput, ViewSpec
from vssl_core.nn.momentum import MomentumContrast
from vssl_core.registry import component
from vssl_moco.loss import moco_loss

__all__ = ["MoCo"]


# VideoMoCo's GPU augmentations (spec §4.2b), one draw per clip: "mocov2" (``--aug_plus``):
# colour jitter (0.4, 0.4, 0.4, 0.1) with p 0.8, grayscale p 0.2, Gaussian blur p 0.5;
# "mocov1": grayscale p 0.2 and colour jitter (0.4, 0.4, 0.4, 0.4) always.
PHOTOMETRIC = {
    "mocov2": {
        "color_jitter": (0.4, 0.4, 0.4, 0.1),
        "color_jitter_prob": 0.8,
        "grayscale_prob": 0.2,
        "blur_prob": 0.5,
    },
    "mocov1": {
        "color_jitter": (0.4, 0.4, 0.4, 0.4),
        "color_jitter_prob": 1.0,
        "grayscale_prob": 0.2,
    },
    "none": {},
}


def projector(features: int, dim: int, mlp: bool) -> nn.Module:
    """MoCo v2's MLP head F -> F -> ReLU -> dim, or MoCo v1's single Linear(F, dim)."""
    if not mlp:
        return nn.Linear(features, dim)
    return nn.Sequential(
        nn.Linear(features, features), nn.ReLU(inplace=True), nn.Linear(features, dim)
    )


def _check(name: str, ok: bool, value: object, need: str) -> None:
    if not ok:
        raise ValueError(f"moco {name}={value!r}: {need}")


@component("objective", name="moco")
class MoCo(MomentumContrast):
    """Video MoCo v2: momentum key encoder, key queue, InfoNCE, shuffle-BN."""

    def __init__(
        self,
        backbone: nn.Module,
        dim: int = 128,
        queue_size: int = 16384,
        momentum: float = 0.999,
        momentum_schedule: Literal["constant", "cosine"] = "constant",
        temperature: float = 0.2,
        mlp: bool = True,
        positive: Literal["two_clips", "two_augmentations"] = "two_clips",
        stride: int = 1,
        augmentation: Literal[
            "random_resized_crop", "multiscale_crop", "none"
        ] = "random_resized_crop",
        flip: bool = True,
        crop_scale: list[float] = [0.2, 1.0],  # noqa: B006 (a recipe value; never mutated)
        photometric: Literal["mocov2", "mocov1", "none"] = "mocov2",
        shuffle_bn: bool = True,
        bn_groups: int | None = None,
    ) -> None:
        super().__init__()
        _check("dim", dim >= 1, dim, "the embedding width must be >= 1 (MoCo uses 128)")
        _check("queue_size", queue_size >= 1, queue_size, "use a multiple of the global batch")
        _check("temperature", temperature > 0, temperature, "must be > 0 (MoCo v2: 0.2)")
        frames, height, width = backbone.input_size
        _check("backbone", height == width, backbone.input_size, "needs square crops (H == W)")
        self._views = ViewSpec(  # built now so a bad stride fails at build time
            frames=frames,
            crop_size=height,
            stride=stride,
            num_clips=2,
            augmentation=augmentation,
            flip=flip,
            shared_augmentation=False,
            temporal="independent" if positive == "two_clips" else "shared",
            crop_scale=tuple(crop_scale),
            **PHOTOMETRIC[photometric],
        )
        self.temperature = temperature
        self.backbone = backbone
        self.projector = projector(backbone.num_features, dim, mlp)
        self.init_momentum_contrast(
            method="moco",
            online=("backbone", "projector"),
            key=("key_backbone", "key_projector"),
            dim=dim,
            queue_size=queue_size,
            momentum=momentum,
            momentum_schedule=momentum_schedule,
            shuffle_bn=shuffle_bn,
            bn_groups=bn_groups,
        )

    def views(self) -> ViewSpec:
        return self._views

    def forward(self, batch: Batch) -> ObjectiveOutput:
        assert len(batch.clips) == 2, f"moco needs 2 views per sample, got {len(batch.clips)}"
        clip_q_BCTHW, clip_k_BCTHW = batch.clips
        B = clip_q_BCTHW.shape[0]
        assert batch.keys.shape == (B,), f"keys {list(batch.keys.shape)} for a batch of {B}"
        q_BD = self.embed_queries(clip_q_BCTHW)
        k_BD = self.embed_keys(clip_k_BCTHW, batch.keys)
        assert q_BD.shape == k_BD.shape, f"queries {list(q_BD.shape)} vs keys {list(k_BD.shape)}"
        loss, metrics = moco_loss(q_BD, k_BD, self.queue.negatives(), self.temperature)
        return ObjectiveOutput(loss=loss, metrics=metrics)
