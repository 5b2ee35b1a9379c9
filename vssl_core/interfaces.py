"""The contracts between the core and plugins: videos, datasets, views, batches, backbones, objectives.

Shape-suffix legend used across vssl: B batch, C channels, T frames, H height, W width,
N tokens, D feature width, K classes or prototypes. ``clip_BCTHW`` is a float clip batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# ---------------------------------------------------------------------------------------- data


@runtime_checkable
class Video(Protocol):
    """One video that can hand out any of its frames."""

    num_frames: int
    fps: float

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` as uint8 of shape [T, H, W, 3] (RGB)."""
        ...


class VideoDecodeError(RuntimeError):
    """A video that cannot be opened or decoded; the message names the file and the cause."""


@runtime_checkable
class VideoDecoder(Protocol):
    """A decoder component: turns a video's path into a :class:`Video` that reads frames."""

    def open(self, path: str) -> Video:
        """A readable video; raises :class:`VideoDecodeError` when the file is unusable."""
        ...


@dataclass
class VideoSample:
    """What a dataset returns for one index: a readable video and its annotation.

    ``label`` is a class index for single-label datasets, a float32 multi-hot array [K] for
    multi-label ones (``task == "multilabel"``, e.g. Charades) and a float count for
    repetition counting (``task == "counting"``).
    """

    video: Video
    label: int | float | np.ndarray
    index: int
    video_id: str = ""


@runtime_checkable
class VideoDataset(Protocol):
    """A dataset component: indexable, sized, knows its classes. A dataset may also set
    ``task`` ("classification" when absent, "multilabel" or "counting")."""

    num_classes: int

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> VideoSample: ...


@dataclass(frozen=True)
class ViewSpec:
    """The data an objective asks for, per sample.

    ``num_clips`` clips of ``frames`` frames taken every ``stride`` frames, each cropped to
    ``crop_size`` with ``augmentation`` ("none", "multiscale_crop", "random_resized_crop");
    with ``shared_augmentation`` every clip of a sample gets the same spatial draw. Clips reach
    the objective normalized with ``mean``/``std`` (on the device).

    ``temporal`` says where the clips of one sample lie in the video:
    "independent" (each its own random start; e.g. MoCo's two clips of one video), "shared"
    (the same frames for every clip; e.g. two augmentations of one clip), or "sequence" (clip
    k starts ``gap`` frames after clip k-1 ends, from one random start; e.g. VCOP's tuples).
    """

    frames: int
    crop_size: int
    stride: int = 1
    num_clips: int = 1
    augmentation: str = "none"
    flip: bool = False
    shared_augmentation: bool = False
    temporal: str = "independent"
    gap: int = 0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        choices = ("none", "multiscale_crop", "random_resized_crop")
        if self.augmentation not in choices:
            raise ValueError(f"augmentation {self.augmentation!r}: choose one of {choices}")
        temporal = ("independent", "shared", "sequence")
        if self.temporal not in temporal:
            raise ValueError(f"temporal {self.temporal!r}: choose one of {temporal}")
        for name in ("frames", "crop_size", "stride", "num_clips"):
            if getattr(self, name) < 1:
                raise ValueError(f"ViewSpec.{name} must be >= 1, got {getattr(self, name)}")
        if self.gap < 0:
            raise ValueError(f"ViewSpec.gap must be >= 0, got {self.gap}")

    @property
    def clip_span(self) -> int:
        """Frames of the video one clip covers (first to last frame, inclusive)."""
        return (self.frames - 1) * self.stride + 1


@dataclass
class Batch:
    """A collated batch. ``clips`` holds one [B, C, T, H, W] tensor per view (uint8 from the
    loader, float normalized once on the device). ``keys`` are per-sample random keys derived
    from (seed, epoch, index): on-device randomness drawn from them (masks, rotations) is the
    same whichever rank or batch the sample lands in. See :mod:`vssl_core.random`.
    """

    clips: list[torch.Tensor]
    label: torch.Tensor
    index: torch.Tensor
    keys: torch.Tensor
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.label.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        def move(x: Any) -> Any:
            return x.to(device, non_blocking=non_blocking) if torch.is_tensor(x) else x

        return replace(
            self,
            clips=[move(c) for c in self.clips],
            label=move(self.label),
            index=move(self.index),
            keys=move(self.keys),
            extra={k: move(v) for k, v in self.extra.items()},
        )

    def pin_memory(self) -> Batch:  # called by DataLoader(pin_memory=True)
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        kw["clips"] = [c.pin_memory() for c in self.clips]
        for k in ("label", "index", "keys"):
            kw[k] = kw[k].pin_memory()
        return Batch(**kw)


# ---------------------------------------------------------------------------------------- models


class Backbone(nn.Module):
    """Base for backbone components (an interface; it holds no behaviour of its own).

    Attributes every backbone sets: ``num_features`` (width of pooled features),
    ``input_size`` ((T, H, W) the backbone was built for) and ``capabilities`` (e.g.
    ``{"token_mask"}`` when ``forward_features`` accepts a token mask).
    """

    num_features: int
    input_size: tuple[int, int, int]
    capabilities: frozenset[str] = frozenset()

    def forward_features(self, clip_BCTHW: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement forward_features")

    def forward(self, clip_BCTHW: torch.Tensor) -> torch.Tensor:
        """Pooled features [B, num_features]."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward")


@dataclass
class ObjectiveOutput:
    """The loss to minimise and detached scalars worth logging (e.g. a second loss term)."""

    loss: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


class Objective(nn.Module):
    """Base for objective components. An objective owns its backbone (``self.backbone``), every
    method-specific module, its loss and its on-device batch transforms. The trainer only calls
    ``views()``, ``forward(batch)`` and ``after_step(step)``.
    """

    backbone: nn.Module

    def views(self) -> ViewSpec:
        raise NotImplementedError(f"{type(self).__name__} must implement views()")

    def forward(self, batch: Batch) -> ObjectiveOutput:
        raise NotImplementedError(f"{type(self).__name__} must implement forward(batch)")

    def after_step(self, step: int) -> None:
        """Called after every optimizer step (momentum encoders, queues); default: nothing."""

    def no_weight_decay(self) -> set[str]:
        """Parameter names (as in ``named_parameters()``) that get no weight decay."""
        names: set[str] = set()
        for prefix, module in self.named_modules():
            if module is not self and hasattr(module, "no_weight_decay"):
                names |= {f"{prefix}.{n}" if prefix else n for n in module.no_weight_decay()}
        return names
