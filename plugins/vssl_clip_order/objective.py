"""VCOP: shuffle n consecutive clips of a video and classify which of the n! orders was applied.

Paper: Xu, Xiao, Zhao, Shao, Xie, Zhuang, "Self-Supervised Spatiotemporal Learning via Video Clip
Order Prediction", CVPR 2019. Official code followed: xudejing/video-clip-order-prediction @
f7353de (``datasets/ucf101.py`` ``UCF101VCOPDataset``, ``models/vcopn.py`` ``VCOPN``,
``train_vcop.py``); spec contrastive-and-severe §3.1-3.4. Head names ``fc7``/``fc8`` are the
official ones (the backbone is under ``backbone.`` where the official says ``base_network.``).

One step: a tuple of n clips of l frames, clip k starting ``gap`` frames after clip k-1 ends,
each cropped on its own (the loader's "sequence" views); on the device every tuple is shuffled by
an order drawn from its key; each slot goes through the backbone separately (as VCOPN does, so
BatchNorm sees one slot at a time); every pair of slots i < j gives ReLU(fc7([f_i; f_j])); the
pair features are concatenated, dropped out and mapped by fc8 to n! logits; the loss is
cross-entropy with the order's label (see :mod:`vssl_clip_order.permutations`).

Shape legend: B batch, N clips per tuple, C channels, T frames, H height, W width, D backbone
feature width, Q pairs of slots (N(N-1)/2), E pair-feature width, P orders (N!).
"""

import itertools
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vssl_clip_order.permutations import draw_orders, inverse, permutation_table
from vssl_core.interfaces import Batch, Objective, ObjectiveOutput, ViewSpec
from vssl_core.registry import component

__all__ = ["ClipOrder", "OrderHead", "shuffle_clips", "tuple_span", "unshuffle"]

MAX_CLIPS = 5  # 5! = 120 orders; beyond that the classes outnumber what a batch can teach


def tuple_span(num_clips: int, frames: int, stride: int, gap: int) -> int:
    """Video frames a tuple covers, first to last (64 for VCOP's 3 x 16 frames, gap 8)."""
    return (num_clips - 1) * (frames * stride + gap) + (frames - 1) * stride + 1


def shuffle_clips(clips_BNCTHW: torch.Tensor, order_BN: torch.Tensor) -> torch.Tensor:
    """Slot j of tuple b gets original clip ``order_BN[b, j]``."""
    B, N = order_BN.shape
    assert clips_BNCTHW.shape[:2] == (B, N), (
        f"clips {list(clips_BNCTHW.shape[:2])} vs orders {[B, N]}"
    )
    rows_B1 = torch.arange(B, device=clips_BNCTHW.device).unsqueeze(1)
    return clips_BNCTHW[rows_B1, order_BN.to(clips_BNCTHW.device)]


class OrderHead(nn.Module):
    """VCOPN's pairwise head: ReLU(fc7([f_i; f_j])) for every slot pair i < j in the order
    (0,1), (0,2), ..., concatenated, dropout, fc8 to n! logits. PyTorch default init, as VCOPN."""

    def __init__(self, num_features: int, num_clips: int, hidden_dim: int, dropout: float):
        super().__init__()
        self.pairs = list(itertools.combinations(range(num_clips), 2))
        self.fc7 = nn.Linear(2 * num_features, hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.fc8 = nn.Linear(len(self.pairs) * hidden_dim, math.factorial(num_clips))

    def forward(self, features_BND: torch.Tensor) -> torch.Tensor:
        first, second = zip(*self.pairs, strict=True)
        pairs_BQ2D = torch.cat(
            (features_BND[:, list(first)], features_BND[:, list(second)]), dim=-1
        )
        hidden_BQE = F.relu(self.fc7(pairs_BQ2D))
        return self.fc8(self.dropout(hidden_BQE.flatten(1)))  # [B, P]


@component("objective", name="clip_order")
class ClipOrder(Objective):
    """VCOP: n!-way classification of the order of n shuffled clips of one video."""

    def __init__(
        self,
        backbone: nn.Module,
        num_clips: int = 3,
        gap: int = 8,
        sampling_stride: int = 1,
        augmentation: Literal["none", "multiscale_crop", "random_resized_crop"] = "multiscale_crop",
        shared_augmentation: bool = False,
        hidden_dim: int = 512,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if not 2 <= num_clips <= MAX_CLIPS:
            raise ValueError(
                f"clip_order num_clips={num_clips!r}: choose 2..{MAX_CLIPS} (n! classes: "
                f"{', '.join(f'{n} -> {math.factorial(n)}' for n in range(2, MAX_CLIPS + 1))}); "
                "VCOP uses 3"
            )
        if hidden_dim < 1:
            raise ValueError(
                f"clip_order hidden_dim={hidden_dim!r}: choose a width >= 1 (VCOP 512)"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"clip_order dropout={dropout!r}: choose a probability in [0, 1)")
        frames, height, _ = backbone.input_size
        self._views = ViewSpec(  # built now so a bad gap or stride fails at build time
            frames=frames,
            crop_size=height,
            stride=sampling_stride,
            num_clips=num_clips,
            temporal="sequence",
            gap=gap,
            augmentation=augmentation,
            shared_augmentation=shared_augmentation,  # False: VCOP's per-clip crop; True: CtP's
        )
        self.num_clips = num_clips
        self.span = tuple_span(num_clips, frames, sampling_stride, gap)
        self.backbone = backbone
        self.head = OrderHead(backbone.num_features, num_clips, hidden_dim, dropout)
        self.register_buffer("orders", permutation_table(num_clips), persistent=False)

    def views(self) -> ViewSpec:
        """``num_clips`` clips in temporal order, spanning ``self.span`` frames of the video; a
        shorter video repeats its last frame, which makes late clips identical and the order
        ambiguous, so recipes should use videos of at least ``self.span`` frames."""
        return self._views

    def shuffle(self, clips_BNCTHW: torch.Tensor, keys_B: torch.Tensor):
        """The on-device batch transform: shuffled tuples, their labels [B] and orders [B, N]."""
        labels_B, order_BN = draw_orders(keys_B.to(clips_BNCTHW.device), self.orders)
        return shuffle_clips(clips_BNCTHW, order_BN), labels_B, order_BN

    def forward(self, batch: Batch) -> ObjectiveOutput:
        N = self.num_clips
        assert len(batch.clips) == N, f"clip_order expects {N} views, got {len(batch.clips)}"
        clips_BNCTHW = torch.stack(batch.clips, dim=1)
        B = clips_BNCTHW.shape[0]
        assert batch.keys.shape == (B,), f"keys {list(batch.keys.shape)} for a batch of {B}"
        shuffled_BNCTHW, labels_B, _ = self.shuffle(clips_BNCTHW, batch.keys)
        features_BND = torch.stack([self.backbone(shuffled_BNCTHW[:, j]) for j in range(N)], 1)
        logits_BP = self.head(features_BND)
        assert logits_BP.shape == (B, self.orders.shape[0]), (
            f"logits {list(logits_BP.shape)} for {B} tuples of {N} clips"
        )
        loss = F.cross_entropy(logits_BP.float(), labels_B)
        acc = (logits_BP.detach().argmax(1) == labels_B).float().mean()
        return ObjectiveOutput(loss=loss, metrics={"acc": acc})


def unshuffle(shuffled_BNX: torch.Tensor, order_BN: torch.Tensor) -> torch.Tensor:
    """The original order back from a shuffled tuple (the inverse of :func:`shuffle_clips`)."""
    return shuffle_clips(shuffled_BNX, inverse(order_BN))
