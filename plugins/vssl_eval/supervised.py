"""The ``supervised`` objective: a backbone, a head and a task loss, for downstream evaluation.

Fine-tuning and linear probing are supervised training, so they run in the ordinary trainer
(DDP, resume, checkpoints, schedules, logging) with this objective. The task decides the loss:

- classification: cross-entropy with optional label smoothing, or, with mixup/cutmix, the
  soft-target cross-entropy of VideoMAE/SIGMA fine-tuning (spec videomae-sigma §1.10);
- multilabel (Charades): binary cross-entropy on the logits (spec contrastive-and-severe §6.7);
- counting: a regression of log(1 + count) with the smooth-L1 loss. This is a simplification,
  not the anchor-based iterative counting of Zhang et al. used by SEVERE's UCF-RC (§6.6), which
  needs per-frame cycle boundaries that the dataset contract (a float count) does not carry.

``freeze_backbone`` (linear probing) freezes every backbone parameter and keeps the backbone in
eval mode, so the probe sees the pretrained network's features; SEVERE's linear eval leaves
BatchNorm in train mode, so its running statistics drift (§6.9) -- a quirk not reproduced.

``backbone_checkpoint`` loads pretrained weights into the backbone before anything else, strictly,
through :func:`vssl_core.convert.load_backbone_checkpoint` (``checkpoint_format`` "auto" detects
the format; "vssl" reads a vssl training checkpoint's ``backbone.*``); ``vssl eval
checkpoint=PATH`` sets it. A resumed run then restores its own fine-tuned weights over them.
The training views are a :class:`ViewSpec` (crop, flip, crop scale, colour jitter, padding);
``temporal: clip`` takes ``frames`` frames every ``sampling_stride`` from a random start,
``temporal: segments`` one random frame from each of ``frames`` equal segments of the whole video
(TSN; the test then takes the segment centres), so a clip sees the whole video, as counting
the repetitions of a whole video needs.

``layer_decay`` is VideoMAE's layer-wise lr decay (§1.10): layer id 0 for ``patch_embed``,
``pos_embed``, ``cls_token``, ``mask_token``; k+1 for ``blocks.k``; L+1 for everything else
(final norm, head); a parameter of layer i gets lr x layer_decay^(L+1-i). The optimizer reads it
through :meth:`Supervised.lr_scale`.

Shape legend: B batch, C channels, T frames, H height, W width, D features, K classes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from vssl_core.build import build
from vssl_core.convert import VSSL_FORMAT, load_backbone_checkpoint
from vssl_core.interfaces import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Batch,
    Objective,
    ObjectiveOutput,
    ViewSpec,
)
from vssl_core.registry import Registry
from vssl_core.schema import validate_component
from vssl_eval.mixup import MixSettings, mix_batch

log = logging.getLogger("vssl.eval")

TASKS = ("classification", "multilabel", "counting")
_EMBEDDINGS = ("patch_embed", "pos_embed", "cls_token", "mask_token")


def vit_layer_id(name: str, num_blocks: int) -> int:
    """VideoMAE's layer id of an objective parameter name (``backbone.blocks.3.x`` -> 4)."""
    if not name.startswith("backbone."):
        return num_blocks + 1
    parts = name.split(".")
    if parts[1] in _EMBEDDINGS:
        return 0
    if parts[1] == "blocks":
        return int(parts[2]) + 1
    return num_blocks + 1


class Supervised(Objective):
    """Backbone -> pooled features -> head; the task's loss."""

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module,
        task: str,
        num_classes: int,
        views: ViewSpec,
        freeze_backbone: bool = False,
        label_smoothing: float = 0.0,
        mix: MixSettings | None = None,
        layer_decay: float | None = None,
    ) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head
        self.task, self.num_classes, self._views = task, num_classes, views
        self.freeze_backbone, self.label_smoothing = freeze_backbone, label_smoothing
        self.mix = mix or MixSettings()
        self.layer_decay = layer_decay
        if freeze_backbone:
            for p in self.backbone.parameters():
                p.requires_grad_(False)
            self.backbone.eval()

    # ---------------------------------------------------------------------------- trainer API
    def views(self) -> ViewSpec:
        return self._views

    def train(self, mode: bool = True) -> Supervised:
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()  # a frozen backbone keeps its BatchNorm statistics
        return self

    def lr_scale(self, name: str) -> float:
        """The lr multiplier of parameter ``name`` (layer-wise decay; 1.0 without it)."""
        if self.layer_decay is None:
            return 1.0
        depth = len(self.backbone.blocks)
        return self.layer_decay ** (depth + 1 - vit_layer_id(name, depth))

    def forward(self, batch: Batch) -> ObjectiveOutput:
        clip_BCTHW, labels = batch.clips[0], batch.label
        self._check_labels(labels, clip_BCTHW.shape[0])
        if self.task == "classification" and self.mix.enabled:
            key = int(batch.keys[0])  # one host sync per step, only when mixing
            clip_BCTHW, targets_BK, _ = mix_batch(
                clip_BCTHW, labels, self.num_classes, key, self.mix
            )
            logits_BK = self.logits(clip_BCTHW).float()
            loss = torch.sum(-targets_BK * F.log_softmax(logits_BK, dim=-1), dim=-1).mean()
            return ObjectiveOutput(loss)
        logits_BK = self.logits(clip_BCTHW).float()
        if self.task == "classification":
            loss = F.cross_entropy(logits_BK, labels, label_smoothing=self.label_smoothing)
            acc = (logits_BK.argmax(-1) == labels).float().mean().detach()
            return ObjectiveOutput(loss, {"acc": acc})
        if self.task == "multilabel":
            return ObjectiveOutput(F.binary_cross_entropy_with_logits(logits_BK, labels.float()))
        return ObjectiveOutput(F.smooth_l1_loss(logits_BK[:, 0], torch.log1p(labels.float())))

    # ---------------------------------------------------------------------------- eval API
    def features(self, clip_BCTHW: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features [B, D] (no autograd through a frozen backbone)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_backbone):
            return self.backbone(clip_BCTHW)

    def logits(self, clip_BCTHW: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(clip_BCTHW))

    def predict(self, clip_BCTHW: torch.Tensor) -> torch.Tensor:
        """Per-clip scores: class probabilities [B, K] (softmax), label probabilities [B, K]
        (sigmoid, multilabel) or counts [B, 1] (counting)."""
        logits_BK = self.logits(clip_BCTHW).float()
        if self.task == "classification":
            return logits_BK.softmax(dim=-1)
        if self.task == "multilabel":
            return logits_BK.sigmoid()
        return torch.expm1(logits_BK).clamp_min(0.0)

    def _check_labels(self, labels: torch.Tensor, batch_size: int) -> None:
        want = {
            "classification": ((batch_size,), False),
            "multilabel": ((batch_size, self.num_classes), True),
            "counting": ((batch_size,), True),
        }[self.task]
        if tuple(labels.shape) != want[0] or labels.is_floating_point() != want[1]:
            raise ValueError(
                f"supervised ({self.task}): labels of shape {list(labels.shape)} "
                f"({labels.dtype}) do not fit the task, which needs "
                f"{'float' if want[1] else 'integer'} labels of shape {list(want[0])}; set "
                "objective.task to the dataset's task (or leave it 'auto' under vssl eval)"
            )


def _check_options(task: str, label_smoothing: float, mix: MixSettings) -> None:
    if task != "classification" and (label_smoothing > 0 or mix.enabled):
        raise ValueError(
            f"supervised: label_smoothing, mixup_alpha and cutmix_alpha apply to classification "
            f"only; task is {task!r}: set them to 0"
        )
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"supervised: label_smoothing must be in [0, 1), got {label_smoothing}")
    if mix.mixup_alpha < 0 or mix.cutmix_alpha < 0 or not 0 <= mix.prob <= 1:
        raise ValueError("supervised: mixup_alpha, cutmix_alpha >= 0 and mix_prob in [0, 1]")


def _build_head(registry: Registry, spec: dict | None, in_features: int, outputs: int):
    spec, problems = validate_component(
        spec or {"name": "linear_head"}, "head", "objective.head", registry
    )
    if problems:
        raise ValueError("; ".join(problems))
    return build(registry, "head", spec, in_features=in_features, num_outputs=outputs)


def make_supervised(registry: Registry) -> Callable[..., Supervised]:
    """The ``supervised`` factory, bound to the registry that builds its head (a head is a
    component, so a third-party head plugs in by name)."""

    def supervised(
        backbone: nn.Module,
        head: dict | None = None,
        num_classes: int | None = None,
        task: Literal["auto", "classification", "multilabel", "counting"] = "auto",
        freeze_backbone: bool = False,
        label_smoothing: float = 0.0,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        mix_switch_prob: float = 0.5,
        mix_prob: float = 1.0,
        layer_decay: float | None = None,
        frames: int | None = None,
        crop_size: int | None = None,
        sampling_stride: int = 1,
        temporal: Literal["clip", "segments"] = "clip",
        augmentation: Literal[
            "none", "multiscale_crop", "random_resized_crop"
        ] = "random_resized_crop",
        flip: bool = True,
        crop_scale: tuple[float, float] = (0.08, 1.0),
        color_jitter: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0),
        pad: Literal["repeat_last", "loop"] = "repeat_last",
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
        backbone_checkpoint: str | None = None,
        checkpoint_format: str = "auto",
    ) -> Supervised:
        """Backbone + head + task loss (CE / label smoothing / mixup-cutmix, BCE, count regression)
        for fine-tuning and linear probing; ``vssl eval`` fills num_classes and task."""
        if num_classes is None or task == "auto":
            raise ValueError(
                "supervised: num_classes and task are not set; `vssl eval` fills them from the "
                "dataset, `vssl train` needs objective.num_classes and objective.task"
            )
        mix = MixSettings(mixup_alpha, cutmix_alpha, mix_switch_prob, mix_prob, label_smoothing)
        _check_options(task, label_smoothing, mix)
        if layer_decay is not None and not 0 < layer_decay <= 1:
            raise ValueError(f"supervised: layer_decay must be in (0, 1], got {layer_decay}")
        if layer_decay is not None and not hasattr(backbone, "blocks"):
            raise ValueError(
                f"supervised: layer_decay needs a transformer backbone with `blocks` (vit_*); "
                f"{type(backbone).__name__} has none: remove layer_decay"
            )
        if backbone_checkpoint is not None:
            fmt = VSSL_FORMAT if checkpoint_format == "vssl" else checkpoint_format
            log.info(load_backbone_checkpoint(backbone, backbone_checkpoint, fmt).summary())
        if temporal == "segments" and sampling_stride != 1:
            raise ValueError(
                "supervised: temporal: segments takes one frame from each of `frames` equal "
                "segments of the whole video; remove sampling_stride (or use temporal: clip)"
            )
        T, H, _ = backbone.input_size
        views = ViewSpec(
            frames=frames or T,
            crop_size=crop_size or H,
            stride=sampling_stride,
            temporal="segments" if temporal == "segments" else "independent",
            augmentation=augmentation,
            flip=flip,
            crop_scale=tuple(crop_scale),
            color_jitter=tuple(color_jitter),
            pad=pad,
            mean=tuple(mean),
            std=tuple(std),
        )
        outputs = 1 if task == "counting" else num_classes
        head_module = _build_head(registry, head, backbone.num_features, outputs)
        return Supervised(
            backbone,
            head_module,
            task,
            num_classes,
            views,
            freeze_backbone=freeze_backbone,
            label_smoothing=label_smoothing if not mix.enabled else 0.0,
            mix=mix,
            layer_decay=layer_decay,
        )

    return supervised


def task_of(dataset: Any) -> str:
    """A dataset's task ("classification" when it does not say)."""
    task = getattr(dataset, "task", "classification")
    if task not in TASKS:
        raise ValueError(f"dataset {dataset!r} has task {task!r}; vssl knows {', '.join(TASKS)}")
    return task
