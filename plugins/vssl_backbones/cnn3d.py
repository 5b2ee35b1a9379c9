"""A small plain 3D CNN for CPU-scale recipes: four Conv3d(3x3x3)-BN-ReLU stages.

It exists so every method runs end to end in minutes on a laptop CPU on the synthetic data; it
is no paper's network. It keeps what the methods rely on: BatchNorm3d (MoCo's shuffle-BN
needs BN to be the only cross-sample path) and a pooled ``[B, num_features]`` output like the
video ResNets. Convs carry no bias (each is followed by BN); init is the ResNets' (kaiming fan_out).

Shape legend: B batch, C channels, T frames, H height, W width; w the width of the first stage.
The first three stages halve T, H and W, the last halves H and W: the map is [B, 8w, T/8, H/16,
W/16] (rounded up), the ResNet-18 trunks' geometry. Time is halved in the first stage too (C3D's
pool1 keeps it) because a full-T first stage made the network 2.5x slower on CPU (16 clips of
16x64x64, forward+backward, one core: 0.5 s with strides (1,2,2),(2,2,2)x3, 0.2 s with these).
A stride-2 conv with padding 1 maps a length-1 axis to length 1, so any clip of at least 1x1x1
runs (a small axis simply stops shrinking).
"""

import torch
from torch import nn

from vssl_backbones.resnet3d import init_resnet_weights
from vssl_core.interfaces import Backbone
from vssl_core.registry import component

STAGE_STRIDES = ((2, 2, 2), (2, 2, 2), (2, 2, 2), (1, 2, 2))


def conv_bn_relu(
    in_channels: int, out_channels: int, stride: tuple[int, int, int]
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, 3, stride, 1, bias=False),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
    )


class SmallCNN3D(Backbone):
    """Stages ``stages.0..3`` of widths w, 2w, 4w, 8w, then global average pool."""

    capabilities = frozenset()

    def __init__(self, width: int, input_size: tuple[int, int, int]) -> None:
        super().__init__()
        self.input_size = input_size
        widths = [width * 2**i for i in range(len(STAGE_STRIDES))]
        self.num_features = widths[-1]
        ins = [3, *widths[:-1]]
        self.stages = nn.Sequential(
            *(conv_bn_relu(i, o, s) for i, o, s in zip(ins, widths, STAGE_STRIDES, strict=True))
        )
        self.apply(init_resnet_weights)

    def forward_features(self, clip_BCTHW: torch.Tensor) -> torch.Tensor:
        """The last stage's map [B, 8w, T', H', W']."""
        if clip_BCTHW.ndim != 5 or clip_BCTHW.shape[1] != 3:
            raise ValueError(
                f"cnn3d_small expects RGB clips [B, 3, T, H, W], got {list(clip_BCTHW.shape)}"
            )
        return self.stages(clip_BCTHW)

    def forward(self, clip_BCTHW: torch.Tensor) -> torch.Tensor:
        """Pooled features [B, 8w]: the mean of the last map over T', H', W'."""
        return self.forward_features(clip_BCTHW).mean(dim=(2, 3, 4))


@component("backbone")
def cnn3d_small(img_size: int = 64, num_frames: int = 16, width: int = 32) -> SmallCNN3D:
    """A 4-stage plain 3D CNN (widths w..8w, BatchNorm) for CPU recipes; [B, 8 * width]."""
    for what, value in (("img_size", img_size), ("num_frames", num_frames), ("width", width)):
        if value < 1:
            raise ValueError(f"cnn3d_small: {what} must be a positive integer, got {value}")
    return SmallCNN3D(width, (num_frames, img_size, img_size))
