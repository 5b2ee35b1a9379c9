"""3DRotNet: predict by how many quarter turns a whole clip was rotated in the image plane.

Paper: Jing, Yang, Liu, Tian, "Self-Supervised Spatiotemporal Feature Learning via Video Rotation
Prediction", arXiv 1811.11387 (2018). No official code was released; this follows the CtP
re-implementation (microsoft/CtP @ eeaf2e6, ``configs/rot3d/**``, ``pyvrl/models/pretraining/
rot3d/rot3d_transforms.py`` ``GroupRectRotate``, a TSN head: pool, dropout 0.5, Linear(512->4)
with std 0.001) and, for ``rotations_per_clip=4``, the all-four-rotations batching of the
3DRotNet-style script described in spec contrastive-and-severe §2.1.

One step: every clip is rotated counter-clockwise by r quarter turns (every frame the same, over
H and W; r drawn per clip from its key, or all four r for each clip), the backbone's pooled
features go through dropout and a linear layer to 4 logits, and the loss is cross-entropy with r.
``torch.rot90`` permutes pixels exactly; CtP's ``cv2.warpAffine`` about (w/2, h/2) with
BORDER_REPLICATE shifts by half a pixel and replicates one border row, a difference of no
consequence for the task.

Shape legend: B batch (clips from the loader), R rotated clips (B or 4B), C channels, T frames,
H height, W width (H == W), D backbone feature width, K rotation classes (4).
"""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vssl_core.interfaces import Batch, Objective, ObjectiveOutput, ViewSpec
from vssl_core.random import keyed_uniform
from vssl_core.registry import component

__all__ = ["NUM_ROTATIONS", "Rotation", "all_rotations", "draw_rotations", "rotate_clips"]

NUM_ROTATIONS = 4  # 0, 90, 180, 270 degrees
ROTATION_STREAM = 0x524F54  # "ROT": separates rotation draws from other keyed draws


def draw_rotations(keys_B: torch.Tensor) -> torch.Tensor:
    """Quarter turns [B] in {0, 1, 2, 3}, uniform; entry b depends only on ``keys_B[b]``."""
    u_B1 = keyed_uniform(keys_B, 1, stream=ROTATION_STREAM)
    return (u_B1[:, 0] * NUM_ROTATIONS).long().clamp_(max=NUM_ROTATIONS - 1)


def rotate_clips(clip_BCTHW: torch.Tensor, quarter_turns_B: torch.Tensor) -> torch.Tensor:
    """Clip b rotated counter-clockwise (as displayed, row 0 on top) by ``quarter_turns_B[b]``
    quarter turns, every frame alike; the same direction as CtP's ``getRotationMatrix2D(+90 r)``.
    """
    B, _, _, H, W = clip_BCTHW.shape
    assert H == W, f"rotation needs square frames, got {H}x{W}"
    assert quarter_turns_B.shape == (B,), f"{list(quarter_turns_B.shape)} turns for {B} clips"
    turns_B = quarter_turns_B.to(clip_BCTHW.device).remainder(NUM_ROTATIONS)
    # A quarter turn of a square frame permutes its pixels: one gather with each clip's
    # permutation reads every pixel once, with no host sync and no data-dependent shapes
    # (torch.compile traces it into one graph).
    plane_HW = torch.arange(H * W, device=clip_BCTHW.device).view(H, W)
    sources_KP = torch.stack(
        [torch.rot90(plane_HW, k, dims=(0, 1)).flatten() for k in range(NUM_ROTATIONS)]
    )
    flat_BXP = clip_BCTHW.flatten(1, 2).flatten(2)  # [B, C*T, H*W]
    index_BXP = sources_KP[turns_B].unsqueeze(1).expand(-1, flat_BXP.shape[1], -1)
    return flat_BXP.gather(2, index_BXP).view(clip_BCTHW.shape)


def all_rotations(clip_BCTHW: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every clip in all four rotations: clips [4B, C, T, H, W] with rows 4b..4b+3 holding clip
    b turned 0..3 times, and their labels [4B] (0, 1, 2, 3 repeated)."""
    B = clip_BCTHW.shape[0]
    rotated_BKCTHW = torch.stack(
        [torch.rot90(clip_BCTHW, k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)], dim=1
    )
    labels_R = torch.arange(NUM_ROTATIONS, device=clip_BCTHW.device).repeat(B)
    return rotated_BKCTHW.flatten(0, 1), labels_R


@component("objective", name="rotation")
class Rotation(Objective):
    """3DRotNet: 4-way classification of the clip's rotation (0/90/180/270 degrees)."""

    def __init__(
        self,
        backbone: nn.Module,
        rotations_per_clip: int = 1,
        sampling_stride: int = 1,
        augmentation: Literal["none", "multiscale_crop", "random_resized_crop"] = "multiscale_crop",
        flip: bool = True,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if rotations_per_clip not in (1, NUM_ROTATIONS):
            raise ValueError(
                f"rotation rotations_per_clip={rotations_per_clip!r}: choose 1 (one random "
                "rotation per clip, as CtP) or 4 (every clip in all four rotations, 4x the clips "
                "per step, as the original 3DRotNet-style script)"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"rotation dropout={dropout!r}: choose a probability in [0, 1)")
        frames, height, width = backbone.input_size
        if height != width:
            raise ValueError(
                f"rotation needs square crops so a quarter turn keeps the shape; the backbone "
                f"input is {height}x{width}: build it with a square img_size"
            )
        self._views = ViewSpec(  # built now so a bad stride fails at build time
            frames=frames,
            crop_size=height,
            stride=sampling_stride,
            augmentation=augmentation,
            flip=flip,  # applied before the rotation, so labels are unaffected
        )
        self.rotations_per_clip = rotations_per_clip
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(backbone.num_features, NUM_ROTATIONS)
        nn.init.normal_(self.fc.weight, std=0.001)  # CtP's classification head init
        nn.init.zeros_(self.fc.bias)

    def views(self) -> ViewSpec:
        return self._views

    def rotate(self, clip_BCTHW: torch.Tensor, keys_B: torch.Tensor):
        """The on-device batch transform: rotated clips [R, C, T, H, W] and their labels [R]."""
        if self.rotations_per_clip == NUM_ROTATIONS:
            return all_rotations(clip_BCTHW)
        labels_B = draw_rotations(keys_B.to(clip_BCTHW.device))
        return rotate_clips(clip_BCTHW, labels_B), labels_B

    def forward(self, batch: Batch) -> ObjectiveOutput:
        clip_BCTHW = batch.clips[0]
        B = clip_BCTHW.shape[0]
        assert batch.keys.shape == (B,), f"keys {list(batch.keys.shape)} for a batch of {B}"
        rotated_RCTHW, labels_R = self.rotate(clip_BCTHW, batch.keys)
        features_RD = self.backbone(rotated_RCTHW)
        logits_RK = self.fc(self.dropout(features_RD))
        assert logits_RK.shape == (labels_R.shape[0], NUM_ROTATIONS), (
            f"logits {list(logits_RK.shape)} for {labels_R.shape[0]} rotated clips"
        )
        loss = F.cross_entropy(logits_RK.float(), labels_R)
        acc = (logits_RK.detach().argmax(1) == labels_R).float().mean()
        return ObjectiveOutput(loss=loss, metrics={"acc": acc})
