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
    """The data an objective (or an evaluation) asks for, per sample.

    ``num_clips`` clips of ``frames`` frames taken every ``stride`` frames, each cropped to
    ``crop_size`` with ``augmentation`` ("none": a centre crop; "multiscale_crop";
    "random_resized_crop" with area fraction in ``crop_scale``); with ``shared_augmentation``
    every clip of a sample gets the same spatial and photometric draw. Clips reach the objective
    normalized with ``mean``/``std`` (on the device).

    ``temporal`` says which frames the clips of one sample take:
    "independent" (each its own random start; e.g. MoCo's two clips of one video), "shared"
    (the same frames for every clip; e.g. two augmentations of one clip), "sequence" (clip
    k starts ``gap`` frames after clip k-1 ends, from one random start; e.g. VCOP's tuples),
    "segments" (TSN: the video cut into ``frames`` equal segments, one random frame from each),
    and for testing, deterministic: "test_clips" (``num_clips`` clips with evenly spaced starts,
    SEVERE's / VideoMAE's dense multi-clip test) and "test_segments" (segments, clip k taking
    the frame at fraction (k + 0.5) / num_clips of every segment: the centres for one clip).
    ``strides`` (a stride drawn per clip) and ``temporal_jitter`` (each index moved forward by
    up to stride - 1) follow CtP's RandomFrameSampler. A video shorter than a clip is padded by
    ``pad``: "repeat_last" (VideoMAE) or "loop" (SEVERE's ``pad_missing``).

    Photometric augmentation, one draw per clip applied to all its frames, after crop and flip:
    ``color_jitter`` = (brightness, contrast, saturation, hue) strengths as in torchvision's
    ColorJitter (ops in random order), applied with probability ``color_jitter_prob``; then
    grayscale with ``grayscale_prob``; then Gaussian blur with ``blur_prob`` and sigma drawn
    from ``blur_sigma`` (pixels of the output crop). All off by default.

    For testing, ``augmentation="none"`` with ``short_side`` resizes the short side to
    ``short_side`` before the centre crop (SEVERE: 128 for 112 crops), and ``test_crops=3`` takes
    three crops along the long side; the views of a sample are then clip-major:
    ``num_clips * test_crops`` tensors (see ``num_views``).
    """

    frames: int  # frames per clip (T)
    crop_size: int  # side of the square crop (H = W) the objective receives
    stride: int = 1  # take every stride-th frame of the video
    num_clips: int = 1  # clips per sample (e.g. 2 for a contrastive pair)
    augmentation: str = "none"  # "none" (centre crop), "multiscale_crop", "random_resized_crop"
    flip: bool = False  # random horizontal flip, one draw per clip
    shared_augmentation: bool = False  # all clips of a sample share one spatial + colour draw
    temporal: str = "independent"  # where the clips lie in the video (the TEMPORAL values)
    gap: int = 0  # "sequence": frames between the end of clip k-1 and the start of clip k
    mean: tuple[float, float, float] = IMAGENET_MEAN  # per-channel mean for normalizing
    std: tuple[float, float, float] = IMAGENET_STD  # per-channel std for normalizing
    crop_scale: tuple[float, float] = (0.08, 1.0)  # random_resized_crop: area fraction range
    strides: tuple[int, ...] = ()  # a stride drawn per clip from these (instead of stride)
    temporal_jitter: bool = False  # move each frame index forward by up to stride - 1 (CtP)
    pad: str = "repeat_last"  # short videos: "repeat_last" (VideoMAE) or "loop" (SEVERE)
    color_jitter: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # b, c, s, hue
    color_jitter_prob: float = 1.0  # probability of applying color_jitter to a clip
    grayscale_prob: float = 0.0  # probability of turning a clip gray (after the jitter)
    blur_prob: float = 0.0  # probability of a Gaussian blur (after grayscale)
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # blur sigma range, in pixels of the crop
    test_crops: int = 1  # testing: 1 (centre) or 3 crops along the long side
    short_side: int | None = None  # testing: resize the short side to this before cropping

    AUGMENTATIONS = ("none", "multiscale_crop", "random_resized_crop")
    TEMPORAL = ("independent", "shared", "sequence", "segments", "test_clips", "test_segments")
    PADS = ("repeat_last", "loop")

    def __post_init__(self) -> None:
        for name in ("crop_scale", "strides", "color_jitter", "blur_sigma", "mean", "std"):
            object.__setattr__(self, name, tuple(getattr(self, name)))  # lists from recipes
        problems = self._problems()
        if problems:
            raise ValueError("ViewSpec: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        p = []
        if self.augmentation not in self.AUGMENTATIONS:
            p.append(f"augmentation {self.augmentation!r}: choose one of {self.AUGMENTATIONS}")
        if self.temporal not in self.TEMPORAL:
            p.append(f"temporal {self.temporal!r}: choose one of {self.TEMPORAL}")
        if self.pad not in self.PADS:
            p.append(f"pad {self.pad!r}: choose one of {self.PADS}")
        for name in ("frames", "crop_size", "stride", "num_clips"):
            if getattr(self, name) < 1:
                p.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.gap < 0:
            p.append(f"gap must be >= 0, got {self.gap}")
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            p.append(f"crop_scale {self.crop_scale}: need 0 < low <= high <= 1 (e.g. (0.2, 1.0))")
        p += self._temporal_problems() + self._photometric_problems() + self._test_problems()
        return p

    def _temporal_problems(self) -> list[str]:
        p = []
        if any(s < 1 for s in self.strides):
            p.append(f"strides {self.strides}: every stride must be >= 1")
        if self.strides and self.stride != 1:
            p.append(f"set stride (={self.stride}) or strides ({self.strides}), not both")
        random_start = ("independent", "shared")
        if (self.strides or self.temporal_jitter) and self.temporal not in random_start:
            p.append(
                f"strides/temporal_jitter work with temporal in {random_start}, not "
                f"{self.temporal!r}"
            )
        if self.temporal in ("segments", "test_segments") and self.stride != 1:
            p.append(f"temporal {self.temporal!r} takes one frame per segment: leave stride at 1")
        if self.gap and self.temporal != "sequence":
            p.append(f"gap={self.gap} is only used with temporal='sequence'")
        return p

    def _photometric_problems(self) -> list[str]:
        p = []
        if len(self.color_jitter) != 4 or any(s < 0 for s in self.color_jitter):
            p.append(
                f"color_jitter {self.color_jitter}: four strengths >= 0 "
                "(brightness, contrast, saturation, hue), e.g. (0.4, 0.4, 0.4, 0.1)"
            )
        elif self.color_jitter[3] > 0.5:
            p.append(f"color_jitter hue {self.color_jitter[3]} must be <= 0.5 (half a turn)")
        for name in ("color_jitter_prob", "grayscale_prob", "blur_prob"):
            if not 0 <= getattr(self, name) <= 1:
                p.append(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")
        lo, hi = self.blur_sigma
        if not 0 < lo <= hi:
            p.append(f"blur_sigma {self.blur_sigma}: need 0 < low <= high (MoCo v2: (0.1, 2.0))")
        return p

    def _test_problems(self) -> list[str]:
        p = []
        if self.test_crops not in (1, 3):
            p.append(f"test_crops must be 1 or 3, got {self.test_crops}")
        if (self.test_crops > 1 or self.short_side is not None) and self.augmentation != "none":
            p.append("test_crops/short_side are test-time crops: use them with augmentation='none'")
        if self.short_side is not None and self.short_side < self.crop_size:
            p.append(f"short_side {self.short_side} must be >= crop_size {self.crop_size}")
        return p

    @property
    def clip_span(self) -> int:
        """Frames of the video one clip covers (first to last frame, inclusive; the largest of
        ``strides``; for segments, the frames needed to give every segment its own frame)."""
        if self.temporal in ("segments", "test_segments"):
            return self.frames
        stride = max(self.strides or (self.stride,))
        if self.temporal_jitter:
            return self.frames * stride
        return (self.frames - 1) * stride + 1

    @property
    def frames_needed(self) -> int:
        """Frames a video needs to give a sample without padding (for "sequence", the tuple)."""
        if self.temporal == "sequence":
            return (self.num_clips - 1) * (self.frames * self.stride + self.gap) + self.clip_span
        return self.clip_span

    @property
    def num_views(self) -> int:
        """Clip tensors per sample: ``num_clips`` temporal clips x ``test_crops`` spatial crops."""
        return self.num_clips * self.test_crops

    @property
    def has_photometric(self) -> bool:
        """Whether any colour, grayscale or blur augmentation is on."""
        jitter = self.color_jitter_prob > 0 and any(s > 0 for s in self.color_jitter)
        return jitter or self.grayscale_prob > 0 or self.blur_prob > 0


@dataclass
class Batch:
    """A collated batch. ``clips`` holds one [B, C, T, H, W] tensor per view (uint8 from the
    loader, float normalized once on the device). ``keys`` are per-sample random keys derived
    from (seed, epoch, index): on-device randomness drawn from them (masks, rotations) is the
    same whichever rank or batch the sample lands in. See :mod:`vssl_core.random`.
    """

    clips: list[torch.Tensor]  # one [B, C, T, H, W] tensor per view (num_views of the ViewSpec)
    label: torch.Tensor  # [B] class indices, [B, K] multi-hot floats or [B] float counts
    index: torch.Tensor  # [B] dataset indices of the samples
    keys: torch.Tensor  # [B] int64 per-sample random keys for vssl_core.random.keyed_uniform
    extra: dict[str, Any] = field(default_factory=dict)  # loader extras (e.g. decode_failures)

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
    ``{"token_mask"}`` when ``forward_features(clip, mask_BN=None, num_visible=None)`` accepts
    a boolean token mask [B, N] (True = masked, the same count in every row) and returns the
    visible tokens; ``num_visible``, when given, is that count, so the backbone need not read
    the mask on the host).
    """

    num_features: int
    input_size: tuple[int, int, int]
    capabilities: frozenset[str] = frozenset()

    def forward_features(self, clip_BCTHW: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement forward_features")

    def forward(self, clip_BCTHW: torch.Tensor) -> torch.Tensor:
        """Pooled features [B, num_features]."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward")


class Monitor:
    """Base for monitor components: an evaluation that runs inside a training run (e.g. a kNN
    accuracy of the backbone's features), so a pretraining shows whether its features improve
    without stopping it. The trainer calls ``setup`` once before the first step, then
    ``measure`` on every rank before the first step of a new run (step 0, the untrained
    baseline), at every ``every_steps``-th step and at the last one, and logs what it returns
    beside the loss. The trainer puts the model back in training mode after ``measure``;
    anything else it changes (weights, buffers) it must restore."""

    every_steps: int

    def setup(self, run: Any, registry: Any) -> None:
        """Build what the measurements need (datasets, loaders) from the run and the registry."""

    def measure(self, run: Any, step: int) -> dict[str, float]:
        raise NotImplementedError(f"{type(self).__name__} must implement measure")


@dataclass(frozen=True)
class RunInfo:
    """The run an objective trains in: its length and where it starts. The trainer hands it to
    :meth:`Objective.begin_run` before the first step (also after a resume, with the same length
    and ``start_step`` the checkpoint's step), so a schedule over the run (an EMA momentum, a
    teacher temperature) needs no hook and no unwrapping of DDP.

    ``total_steps`` optimizer steps in all (``train.max_steps`` or epochs x steps per epoch);
    ``steps_per_epoch`` optimizer steps per pass over the dataset; ``start_step`` completed steps
    when this process started training (0 for a new run).
    """

    total_steps: int  # optimizer steps in the whole run
    steps_per_epoch: int  # optimizer steps per pass over the dataset
    start_step: int = 0  # completed steps when this process began (a resume's checkpoint step)

    def __post_init__(self) -> None:
        if self.total_steps < 1 or self.steps_per_epoch < 1:
            raise ValueError(
                f"RunInfo: total_steps ({self.total_steps}) and steps_per_epoch "
                f"({self.steps_per_epoch}) must be >= 1"
            )
        if not 0 <= self.start_step <= self.total_steps:
            raise ValueError(
                f"RunInfo: start_step {self.start_step} must be in 0..{self.total_steps}"
            )

    @property
    def epochs(self) -> float:
        """The run's length in epochs (fractional when ``train.max_steps`` cuts an epoch)."""
        return self.total_steps / self.steps_per_epoch

    def epoch(self, step: int) -> int:
        """The epoch (from 0) that optimizer step ``step`` (completed steps before it) is in."""
        return step // self.steps_per_epoch

    def fraction(self, step: int) -> float:
        """``step / total_steps``: 0 at the start of the run, 1 at its end."""
        return step / self.total_steps


@dataclass
class ObjectiveOutput:
    """The loss to minimise and detached scalars worth logging (e.g. a second loss term)."""

    loss: torch.Tensor  # 0-dim loss to minimise (the trainer averages it over micro-batches)
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)  # 0-dim detached values to log


class Objective(nn.Module):
    """Base for objective components. An objective owns its backbone (``self.backbone``), every
    method-specific module, its loss and its on-device batch transforms. The trainer calls
    ``begin_run(run)`` once, then for every optimizer step ``set_run_step(step)``,
    ``forward(batch)`` (once per micro-batch) and ``after_step(step + 1)``.

    Where the run is: ``self.run`` (a :class:`RunInfo`: total steps, steps per epoch, start
    step; None until ``begin_run``) for code outside ``forward`` (``after_step``, an EMA), and
    ``self.run_step``, a 0-dim int64 buffer on the model's device holding the index of the step
    being computed (completed steps before it), for code inside ``forward``: the trainer fills it
    in place, so a ``torch.compile``d forward reads the new value without recompiling, and a
    DDP-wrapped objective reads it as itself. It is not saved (a resume sets it from the
    checkpoint's step).
    """

    backbone: nn.Module
    run: RunInfo | None = None

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("run_step", torch.zeros((), dtype=torch.int64), persistent=False)

    def begin_run(self, run: RunInfo) -> None:
        """Called by the trainer before the first step (of a new or a resumed run); keeps
        ``run`` as ``self.run`` and sets ``run_step``. Override to precompute a schedule (call
        ``super().begin_run(run)``)."""
        self.run = run
        self.set_run_step(run.start_step)

    def set_run_step(self, step: int) -> None:
        """Called by the trainer before each optimizer step's forwards: ``step`` completed
        optimizer steps so far. Writes ``run_step`` in place (no host sync, no recompile)."""
        self.run_step.fill_(step)

    def run_fraction(self) -> torch.Tensor:
        """``run_step / total_steps`` as a 0-dim float32 tensor, for schedules inside
        ``forward``; raises until the run is known."""
        if self.run is None:
            raise RuntimeError(
                f"{type(self).__name__}: the run's length is known once training starts "
                "(Objective.begin_run); outside the trainer call begin_run(RunInfo(...)) first"
            )
        return self.run_step.float() / self.run.total_steps

    def views(self) -> ViewSpec:
        """The data this objective needs per sample (clips, frames, crops, augmentation); the
        loader cuts every sample this way. Built once, in ``__init__``, so a bad setting fails
        when the objective is built."""
        raise NotImplementedError(f"{type(self).__name__} must implement views()")

    def forward(self, batch: Batch) -> ObjectiveOutput:
        """The loss of one (micro-)batch, whose clips are normalized float [B, C, T, H, W] on
        the device; on-device transforms (masks, rotations) draw from ``batch.keys``. Should not
        read device values on the host (no ``.item()``): a compiled forward stays one graph."""
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
