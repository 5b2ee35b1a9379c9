"""Contrastive machinery shared by the momentum-contrast objectives (video MoCo, tubelet contrast).

MoCo (He et al., CVPR 2020; v2: Chen et al., arXiv 2003.04297), following the official code
(facebookresearch/moco ``moco/builder.py``) and its video re-implementations (microsoft/CtP
``pyvrl/models/pretraining/moco``, fmthoker/tubelet-contrast): a momentum key encoder, a FIFO
queue of all-gathered keys, InfoNCE over [positive key, queue], and shuffle-BN.

Distributed correctness (the bugs other SSL libraries shipped, see specs/anchors.md §3.8):
- keys are all-gathered before they are enqueued, so every rank holds the same queue and each
  rank's keys become negatives for every rank;
- only no-grad tensors are gathered (keys, clips for shuffle-BN); queries stay local, so the
  loss is a mean over the local batch and DDP's gradient averaging gives exactly the gradient of
  the mean over the global batch (no 1/world_size or world_size factor).

Shape legend: B local batch, G global batch (all ranks), D embedding width, K queue size.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from vssl_core.random import keyed_uniform

SHUFFLE_STREAM = 0x5B  # keyed_uniform stream of the shuffle-BN permutation


def _world() -> tuple[int, int]:
    """(rank, world size); (0, 1) when torch.distributed is not in use."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@torch.no_grad()
def concat_all_gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank along dim 0, in rank order (no gradient flows back).

    Identity when not distributed. Every rank must pass the same shape.
    """
    _, world = _world()
    if world == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


@torch.no_grad()
def momentum_update_(target: nn.Module, source: nn.Module, momentum: float) -> None:
    """EMA of parameters, in place: ξ ← m·ξ + (1−m)·θ (``target`` ξ, ``source`` θ).

    Parameters only: buffers (BN running statistics) of ``target`` keep their own values, as in
    MoCo, where the key encoder's BN buffers are updated by its own forward passes.
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    tgt, src = dict(target.named_parameters()), dict(source.named_parameters())
    if tgt.keys() != src.keys():
        raise ValueError(
            "momentum_update_: target and source have different parameters "
            f"(only in target: {sorted(tgt.keys() - src.keys())[:3]}, "
            f"only in source: {sorted(src.keys() - tgt.keys())[:3]}); build the target as a "
            "deep copy of the source"
        )
    for name, p_t in tgt.items():
        p_t.mul_(momentum).add_(src[name].detach(), alpha=1.0 - momentum)


class KeyQueue(nn.Module):
    """A FIFO queue of K keys; layout ``queue`` [K, D], one L2-normalized key per ROW.

    (The official code stores the transpose, [D, K], one key per column; rows make a write one
    contiguous slice.) ``queue`` and ``ptr`` are buffers, so checkpoints restore them and a resumed
    run sees the same negatives. ``enqueue`` must receive the ALL-GATHERED keys of a step, so every
    rank writes the same rows and the queues stay identical across ranks.
    """

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        if dim < 1 or size < 1:
            raise ValueError(f"KeyQueue needs dim >= 1 and size >= 1, got dim={dim}, size={size}")
        self.register_buffer("queue", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        # a host copy of ``ptr``: reading the buffer every step would block the host on a GPU
        self._ptr_on_host: int | None = 0

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._ptr_on_host = None  # read the loaded buffer once, at the next enqueue

    @property
    def size(self) -> int:
        return self.queue.shape[0]

    @torch.no_grad()
    def enqueue(self, keys_GD: torch.Tensor) -> None:
        """Overwrite the oldest G rows with ``keys_GD`` and advance the pointer by G."""
        size, dim = self.queue.shape
        if keys_GD.ndim != 2 or keys_GD.shape[1] != dim:
            raise ValueError(
                f"enqueue expects keys of shape [G, {dim}], got {tuple(keys_GD.shape)}"
            )
        g = keys_GD.shape[0]
        if g == 0 or size % g != 0:
            raise ValueError(
                f"queue size {size} is not divisible by the global batch {g} (keys of all ranks "
                f"in one step); choose a queue size that is a multiple of {g}, or a global batch "
                f"that divides {size}"
            )
        ptr = int(self.ptr) if self._ptr_on_host is None else self._ptr_on_host
        self.queue[ptr : ptr + g] = keys_GD.detach().to(self.queue.dtype)
        self._ptr_on_host = (ptr + g) % size
        self.ptr.fill_(self._ptr_on_host)

    def negatives(self) -> torch.Tensor:
        """The current queue [K, D]: a detached copy, so a later ``enqueue`` (in place) cannot
        invalidate a graph that used it (autograd saves it to get the gradient of q)."""
        return self.queue.detach().clone()


def info_nce_logits(
    q_BD: torch.Tensor, k_BD: torch.Tensor, queue_KD: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Logits [B, 1+K] = [q·k, q·Q_1, …, q·Q_K] / τ over cosine similarities.

    All three inputs are L2-normalized here (a no-op for already normalized ones), and the math
    runs in float32 outside autocast: under bf16 a logit of 5 would lose its second decimal.
    """
    if q_BD.ndim != 2 or q_BD.shape != k_BD.shape:
        raise ValueError(
            f"q and k must be [B, D] of one shape, got {tuple(q_BD.shape)}, {tuple(k_BD.shape)}"
        )
    if queue_KD.ndim != 2 or queue_KD.shape[1] != q_BD.shape[1]:
        raise ValueError(f"queue must be [K, {q_BD.shape[1]}], got {tuple(queue_KD.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    with torch.autocast(q_BD.device.type, enabled=False):
        q_BD = F.normalize(q_BD.float(), dim=1)
        k_BD = F.normalize(k_BD.float(), dim=1)
        queue_KD = F.normalize(queue_KD.float(), dim=1)
        pos_B1 = (q_BD * k_BD).sum(dim=1, keepdim=True)
        neg_BK = q_BD @ queue_KD.T
        return torch.cat([pos_B1, neg_BK], dim=1) / temperature


def info_nce(
    q_BD: torch.Tensor, k_BD: torch.Tensor, queue_KD: torch.Tensor, temperature: float
) -> torch.Tensor:
    """InfoNCE: cross-entropy of ``info_nce_logits`` with target 0 (the positive key), mean over
    the LOCAL batch. Under DDP this is the right loss: gradients are averaged over ranks."""
    logits = info_nce_logits(q_BD, k_BD, queue_KD, temperature)
    target_B = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, target_B)


def info_nce_with_metrics(
    q_BD: torch.Tensor, k_BD: torch.Tensor, queue_KD: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(InfoNCE loss, metrics): ``acc`` is the fraction of queries whose positive logit is the
    largest of the 1+K; ``pos_sim`` / ``neg_sim`` are mean cosine similarities to the positive key
    and to the queue (a collapse shows as both near 1)."""
    logits_B1K = info_nce_logits(q_BD, k_BD, queue_KD, temperature)  # [B, 1+K]
    target_B = torch.zeros(logits_B1K.shape[0], dtype=torch.long, device=logits_B1K.device)
    loss = F.cross_entropy(logits_B1K, target_B)
    with torch.no_grad():
        sims_B1K = logits_B1K.detach() * temperature
        metrics = {
            "acc": (logits_B1K.argmax(dim=1) == 0).float().mean(),
            "pos_sim": sims_B1K[:, 0].mean(),
            "neg_sim": sims_B1K[:, 1:].mean(),
        }
    return loss, metrics


# ------------------------------------------------------------------------------ shuffle-BN
# Why: with BatchNorm, a query and its positive key computed in the same BN batch can "cheat"
# through the batch statistics. MoCo therefore computes keys on a permuted batch: each GPU's key
# BN batch holds other samples than its query BN batch.
#
# Permutation: when ``keys_B`` (the samples' random keys, Batch.keys) are given, the permutation
# sorts the gathered batch by keyed_uniform(keys, stream=SHUFFLE_STREAM): every rank computes the
# same permutation without communication, it reads no global RNG (so resume is exact), and it does
# not depend on how the global batch is laid out over ranks (so 1 process == N processes). Without
# keys it is drawn with torch.randperm on rank 0 and broadcast.
#
# One process: shuffling the whole batch changes nothing (BN statistics of a whole batch are
# permutation invariant). To emulate N GPUs on one process, run the encoders with
# ``forward_in_groups`` (per-group BN statistics) on the shuffled batch; see ``shuffled_forward``.


@torch.no_grad()
def _permutation(x_GX: torch.Tensor, keys_G: torch.Tensor | None) -> torch.Tensor:
    g = x_GX.shape[0]
    if keys_G is not None:
        if keys_G.shape != (g,):
            raise ValueError(f"keys must be [{g}] to match the batch, got {tuple(keys_G.shape)}")
        u_G = keyed_uniform(keys_G, 1, SHUFFLE_STREAM)[:, 0]
        return torch.sort(u_G, stable=True).indices
    perm_G = torch.randperm(g, device=x_GX.device)
    if _world()[1] > 1:
        dist.broadcast(perm_G, src=0)
    return perm_G


@torch.no_grad()
def batch_shuffle(
    x_B: torch.Tensor, keys_B: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Permute the global batch; return this rank's slice of it and the global restore index.

    Under DDP the batch of every rank is gathered (equal local batches required), permuted with a
    permutation all ranks agree on, and rank r gets rows [r·B, (r+1)·B) of the permuted batch.
    One process: the whole batch, permuted. ``restore_idx_G`` undoes the permutation
    (``batch_unshuffle``).
    """
    rank, _ = _world()
    b = x_B.shape[0]
    x_GX = concat_all_gather(x_B)
    keys_G = None if keys_B is None else concat_all_gather(keys_B.to(x_B.device))
    perm_G = _permutation(x_GX, keys_G)
    restore_idx_G = torch.argsort(perm_G)
    return x_GX[perm_G[rank * b : (rank + 1) * b]], restore_idx_G


@torch.no_grad()
def batch_unshuffle(x_B: torch.Tensor, restore_idx_G: torch.Tensor) -> torch.Tensor:
    """Inverse of ``batch_shuffle``: gather the outputs of every rank, put them back in the
    original global order, and return this rank's own samples."""
    rank, world = _world()
    b = x_B.shape[0]
    if b * world != restore_idx_G.shape[0]:
        raise ValueError(
            f"batch_unshuffle: {b} rows x {world} rank(s) != {restore_idx_G.shape[0]} shuffled rows"
        )
    x_GX = concat_all_gather(x_B)[restore_idx_G]
    return x_GX[rank * b : (rank + 1) * b]


def forward_in_groups(
    fn: Callable[[torch.Tensor], torch.Tensor], x_B: torch.Tensor, groups: int
) -> torch.Tensor:
    """``fn`` applied to ``groups`` equal consecutive chunks of the batch, concatenated: each
    chunk gets its own BN statistics, as if it ran on its own GPU (MoCo's SplitBatchNorm idea)."""
    if groups == 1:
        return fn(x_B)
    if x_B.shape[0] % groups != 0:
        raise ValueError(
            f"a batch of {x_B.shape[0]} cannot be split into {groups} equal BN groups; make the "
            f"per-rank batch a multiple of the groups per rank ({groups})"
        )
    return torch.cat([fn(c) for c in x_B.chunk(groups)], dim=0)


def shuffled_forward(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x_B: torch.Tensor,
    keys_B: torch.Tensor | None = None,
    groups: int = 1,
) -> torch.Tensor:
    """Shuffle-BN in one call: shuffle the global batch, run ``fn`` on this rank's slice in
    ``groups`` BN groups, unshuffle. Meant for the (no-grad) key encoder.

    With one process and ``groups == 1`` shuffling could not change anything, so it is skipped.
    """
    if _world()[1] == 1 and groups == 1:
        return fn(x_B)
    x_shuffled_B, restore_idx_G = batch_shuffle(x_B, keys_B)
    return batch_unshuffle(forward_in_groups(fn, x_shuffled_B, groups), restore_idx_G)
