"""The MoCo training machinery as a base class for momentum-contrast objectives (video MoCo,
tubelet contrast): frozen key twins of the query encoder and head, shuffle-BN key embedding in
BN groups, keys all-gathered and enqueued once per optimizer step, and the momentum update.

A subclass builds its encoder and head, then calls ``init_momentum_contrast`` with the
attribute names it wants in its state dict (official checkpoints name them differently:
MoCo ``key_backbone``/``key_projector``, tubelet-contrast ``key_encoder``/``key_fc``).
What stays in the subclass: which clips make a pair, and the loss. The timing decisions
(update and enqueue in ``after_step``) are documented in vssl_moco/objective.py.

``momentum_schedule``: "constant" (MoCo v1/v2 and tubelet contrast: ``momentum`` at every step)
or "cosine" (MoCo v3, BYOL: from ``momentum`` at step 0 to 1 at the run's last step, along half
a cosine); the run's length comes from ``self.run`` (:class:`vssl_core.interfaces.RunInfo`),
which the trainer sets before the first step, so a resumed run continues the same schedule.

Shape legend: B batch (per rank), C channels, T frames, H height, W width, D embedding width.
"""

from __future__ import annotations

import copy

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from vssl_core.interfaces import Objective
from vssl_core.nn.contrastive import (
    KeyQueue,
    concat_all_gather,
    forward_in_groups,
    momentum_update_,
    shuffled_forward,
)
from vssl_core.nn.schedules import cosine_ramp

MOMENTUM_SCHEDULES = ("constant", "cosine")


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy without gradients: no optimizer state, no DDP gradient reduction."""
    twin = copy.deepcopy(module)
    twin.requires_grad_(False)
    return twin


class MomentumContrast(Objective):
    """Base class; see the module docstring. ``self.queue`` holds the negatives."""

    def init_momentum_contrast(
        self,
        *,
        method: str,
        online: tuple[str, str],
        key: tuple[str, str],
        dim: int,
        queue_size: int,
        momentum: float,
        shuffle_bn: bool,
        bn_groups: int | None,
        momentum_schedule: str = "constant",
    ) -> None:
        """``online`` names the (encoder, head) attributes already set; ``key`` names their
        momentum twins, created here. ``method`` prefixes error messages."""
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{method} momentum={momentum!r}: must be in [0, 1] (MoCo: 0.999)")
        if bn_groups is not None and bn_groups < 1:
            raise ValueError(f"{method} bn_groups={bn_groups!r}: use None or >= 1")
        if momentum_schedule not in MOMENTUM_SCHEDULES:
            raise ValueError(
                f"{method} momentum_schedule={momentum_schedule!r}: choose one of "
                f"{', '.join(MOMENTUM_SCHEDULES)}"
            )
        self.momentum_schedule = momentum_schedule
        self._method, self._online, self._key_names = method, online, key
        self.momentum, self.shuffle_bn, self.bn_groups = momentum, shuffle_bn, bn_groups
        for src, dst in zip(online, key, strict=True):
            setattr(self, dst, frozen_copy(getattr(self, src)))
        self.queue = KeyQueue(dim, queue_size)
        self._pending: list[torch.Tensor] = []  # all-gathered keys of this step, not yet queued

    def groups_per_rank(self) -> int:
        """BN groups of each forward on this rank: ``bn_groups`` spread over the ranks."""
        if not self.training or self.bn_groups is None:
            return 1  # eval-mode BN uses running statistics: groups would change nothing
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        if self.bn_groups % world != 0:
            raise ValueError(
                f"{self._method} bn_groups={self.bn_groups} cannot be spread over {world} ranks;"
                f" use a multiple of {world}, or null for one BN group per rank"
            )
        return self.bn_groups // world

    def query_embedding(self, clip_BCTHW: torch.Tensor) -> torch.Tensor:
        """L2-normalized head(encoder(clip)) [B, D] in one BN batch."""
        encoder, head = (getattr(self, n) for n in self._online)
        return F.normalize(head(encoder(clip_BCTHW)), dim=1)

    def key_embedding(self, clip_BCTHW: torch.Tensor) -> torch.Tensor:
        """The same with the momentum twins."""
        encoder, head = (getattr(self, n) for n in self._key_names)
        return F.normalize(head(encoder(clip_BCTHW)), dim=1)

    def embed_queries(self, clip_BCTHW: torch.Tensor) -> torch.Tensor:
        """Query embeddings [B, D] (with gradient), in BN groups."""
        return forward_in_groups(self.query_embedding, clip_BCTHW, self.groups_per_rank())

    @torch.no_grad()
    def embed_keys(self, clip_BCTHW: torch.Tensor, keys_B: torch.Tensor) -> torch.Tensor:
        """L2-normalized key embeddings [B, D] of the momentum twins, with shuffle-BN when
        training; in training they are also held back to be enqueued after the step."""
        fn, groups = self.key_embedding, self.groups_per_rank()
        if self.shuffle_bn and self.training:
            k_BD = shuffled_forward(fn, clip_BCTHW, keys_B, groups)
        else:
            k_BD = forward_in_groups(fn, clip_BCTHW, groups)
        if self.training:
            self._pending.append(concat_all_gather(k_BD.float()))
        return k_BD

    def momentum_at(self, step: int) -> float:
        """The momentum of the update after ``step`` completed optimizer steps."""
        if self.momentum_schedule == "constant":
            return self.momentum
        if self.run is None:
            raise RuntimeError(
                f"{self._method} momentum_schedule=cosine needs the run's length, which the "
                "trainer gives before the first step (Objective.begin_run)"
            )
        return cosine_ramp(self.momentum, 1.0, self.run.fraction(step))

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        """Enqueue this step's keys (all ranks, all micro-batches), then move the key twins."""
        if self._pending:
            self.queue.enqueue(torch.cat(self._pending))
            self._pending.clear()
        momentum = self.momentum_at(step)
        for src, dst in zip(self._online, self._key_names, strict=True):
            momentum_update_(getattr(self, dst), getattr(self, src), momentum)
