"""Video ResNet-18 trunks, R(2+1)D-18 and R3D-18 (Tran et al., CVPR 2018), laid out exactly as
torchvision's ``torchvision/models/video/resnet.py`` (spec contrastive-and-severe §1.1).

SEVERE evaluates every method on these networks and ships torchvision-format checkpoints, so the
module names, nesting and parameter shapes here are torchvision's: a torchvision ``state_dict``
without ``fc.*`` loads with ``strict=True``. The trunk has no classifier (SSL methods put their
own heads on the pooled features). Checkpoints of the pyvrl code base (CtP, Tubelet-Contrast; spec
§1.2) use other names and BN eps 1e-3; a converter maps them onto these keys.

Shape legend: B batch, C channels, T frames, H height, W width, T'/H'/W' the layer4 grid
(T/8, H/16, W/16 rounded up, for the default strides).
"""

import torch
from torch import nn

from vssl_core.interfaces import Backbone
from vssl_core.registry import component

STAGE_WIDTHS = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)


def mid_channels(in_channels: int, out_channels: int) -> int:
    """Width between the spatial and temporal conv of a (2+1)D conv: the count that gives it the
    parameters of a full 3x3x3 conv, ``floor(27 in out / (9 in + 3 out))`` (torchvision's rule)."""
    return (27 * in_channels * out_channels) // (9 * in_channels + 3 * out_channels)


class Conv2Plus1D(nn.Sequential):
    """A 3x3x3 conv factorized as 1x3x3 spatial conv, BN, ReLU, 3x1x1 temporal conv.
    Stride ``s`` downsamples H, W in the first conv and T in the second (indices 0, 1, 2, 3)."""

    def __init__(self, in_channels: int, out_channels: int, mid: int, stride: int = 1):
        super().__init__(
            nn.Conv3d(in_channels, mid, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, out_channels, (3, 1, 1), (stride, 1, 1), (1, 0, 0), bias=False),
        )


def conv3x3x3(in_channels: int, out_channels: int, mid: int, stride: int = 1) -> nn.Conv3d:
    """A full 3x3x3 conv (R3D); ``mid`` is unused, kept so both builders share a signature."""
    del mid
    return nn.Conv3d(in_channels, out_channels, 3, stride, 1, bias=False)


class BasicBlock(nn.Module):
    """Two convs with a residual: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), with the
    BNs inside ``conv1``/``conv2`` as torchvision nests them (``conv1.1`` is bn1)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, conv_builder) -> None:
        super().__init__()
        mid = mid_channels(in_channels, out_channels)  # one value shared by both convs
        self.conv1 = nn.Sequential(
            conv_builder(in_channels, out_channels, mid, stride),
            nn.BatchNorm3d(out_channels),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(
            conv_builder(out_channels, out_channels, mid), nn.BatchNorm3d(out_channels)
        )
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm3d(out_channels),
            )

    def forward(self, x_BCTHW: torch.Tensor) -> torch.Tensor:
        shortcut = x_BCTHW if self.downsample is None else self.downsample(x_BCTHW)
        return self.relu(self.conv2(self.conv1(x_BCTHW)) + shortcut)


def r2plus1d_stem() -> nn.Sequential:
    """1x7x7 spatial conv to 45 channels, then 3x1x1 temporal conv to 64; H, W halved, no pool."""
    return nn.Sequential(
        nn.Conv3d(3, 45, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
        nn.BatchNorm3d(45),
        nn.ReLU(inplace=True),
        nn.Conv3d(45, 64, (3, 1, 1), 1, (1, 0, 0), bias=False),
        nn.BatchNorm3d(64),
        nn.ReLU(inplace=True),
    )


def r3d_stem() -> nn.Sequential:
    """One 3x7x7 conv to 64 channels; H, W halved, no pool."""
    return nn.Sequential(
        nn.Conv3d(3, 64, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
        nn.BatchNorm3d(64),
        nn.ReLU(inplace=True),
    )


def init_resnet_weights(module: nn.Module) -> None:
    """torchvision's init: convs kaiming-normal (fan_out, relu), BN gamma 1 and beta 0."""
    if isinstance(module, nn.Conv3d):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm3d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class VideoResNet(Backbone):
    """A torchvision video ResNet without ``fc``: stem, layer1..layer4 (2 BasicBlocks each),
    global average pool. Size-agnostic; ``input_size`` records what recipes feed it."""

    num_features = STAGE_WIDTHS[-1]
    capabilities = frozenset()

    def __init__(self, stem: nn.Sequential, conv_builder, input_size: tuple[int, int, int]):
        super().__init__()
        self.input_size = input_size
        self.stem = stem
        in_channels = 64
        for i, (width, stride) in enumerate(zip(STAGE_WIDTHS, STAGE_STRIDES, strict=True)):
            blocks = nn.Sequential(
                BasicBlock(in_channels, width, stride, conv_builder),
                BasicBlock(width, width, 1, conv_builder),
            )
            self.add_module(f"layer{i + 1}", blocks)
            in_channels = width
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.apply(init_resnet_weights)

    def forward_features(self, clip_BCTHW: torch.Tensor) -> torch.Tensor:
        """The layer4 map [B, 512, T', H', W']."""
        if clip_BCTHW.ndim != 5 or clip_BCTHW.shape[1] != 3:
            raise ValueError(
                f"{type(self).__name__} expects RGB clips [B, 3, T, H, W], got "
                f"{list(clip_BCTHW.shape)}"
            )
        x = self.stem(clip_BCTHW)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
        return x

    def forward(self, clip_BCTHW: torch.Tensor) -> torch.Tensor:
        """Pooled features [B, 512]: the mean of the layer4 map over T', H', W'."""
        return self.avgpool(self.forward_features(clip_BCTHW)).flatten(1)


def _check_size(name: str, img_size: int, num_frames: int) -> tuple[int, int, int]:
    for what, value in (("img_size", img_size), ("num_frames", num_frames)):
        if value < 1:
            raise ValueError(f"{name}: {what} must be a positive integer, got {value}")
    return (num_frames, img_size, img_size)


@component("backbone")
def r2plus1d_18(img_size: int = 112, num_frames: int = 16) -> VideoResNet:
    """R(2+1)D-18 trunk as torchvision's ``r2plus1d_18`` less ``fc``: 31.3M params, [B, 512]."""
    return VideoResNet(
        r2plus1d_stem(), Conv2Plus1D, _check_size("r2plus1d_18", img_size, num_frames)
    )


@component("backbone")
def r3d_18(img_size: int = 112, num_frames: int = 16) -> VideoResNet:
    """R3D-18 trunk as torchvision's ``r3d_18`` less ``fc``: 33.2M params, [B, 512]."""
    return VideoResNet(r3d_stem(), conv3x3x3, _check_size("r3d_18", img_size, num_frames))
