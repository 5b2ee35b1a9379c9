"""Sinkhorn-Knopp equipartition of tokens over prototypes, in the log domain, across ranks.

Follows SwAV's ``distributed_sinkhorn`` (facebookresearch/swav ``main_swav.py``) as SIGMA calls
it (QUVA-Lab/SIGMA ``utils.sinkhorn`` / ``find_optimal_assignment``): P = exp(S / eps); then
``iterations`` times, scale every prototype's total mass over the GLOBAL batch to 1/K (row sums
all-reduced) and every token's mass to 1/B (local, B = tokens on all ranks); finally each token's
row is renormalized to sum to 1.

Equivalent to the official code, not a copy of it:
- Log domain in float32 (logsumexp instead of exp then sums), so exp(1/eps) never overflows and
  an unpopular prototype never underflows to a zero mass and a NaN.
- The official first step (divide P by its global total) is skipped: the first row step absorbs
  any constant factor. For the same reason the column target (1/B here, W/M in SIGMA's code)
  does not change the result (spec videomae-sigma.md §2.4, remark a).

Shape legend: M tokens on this rank, K prototypes.
"""

import math

import torch
import torch.distributed as dist


def _group_size(group: dist.ProcessGroup | None) -> int:
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size(group)


def _global_logsumexp_over_tokens(
    log_p_MK: torch.Tensor, group: dist.ProcessGroup | None, distributed: bool
) -> torch.Tensor:
    """log sum_m exp(log_p[m, k]) over the tokens of every rank, [K]. Two all-reduces (max, then
    the sum of the shifted exponentials), each a K-vector."""
    if not distributed:
        return torch.logsumexp(log_p_MK, dim=0)
    if log_p_MK.shape[0] == 0:  # a rank without tokens still joins the all-reduces
        max_K = log_p_MK.new_full(log_p_MK.shape[1:], -math.inf)
    else:
        max_K = log_p_MK.amax(dim=0)
    dist.all_reduce(max_K, op=dist.ReduceOp.MAX, group=group)
    max_K = torch.where(torch.isfinite(max_K), max_K, torch.zeros_like(max_K))
    sum_K = torch.exp(log_p_MK - max_K).sum(dim=0)
    dist.all_reduce(sum_K, op=dist.ReduceOp.SUM, group=group)
    return sum_K.log() + max_K


@torch.no_grad()
def sinkhorn(
    scores_MK: torch.Tensor,
    epsilon: float,
    iterations: int,
    group: dist.ProcessGroup | None = None,
) -> torch.Tensor:
    """Soft codes Q [M, K] (each row sums to 1) of this rank's tokens; the prototype marginal is
    balanced over the tokens of every rank in ``group`` (default: the world, when
    torch.distributed is initialized). No gradient flows: the codes are pseudo-labels.

    Every rank must call it with its own tokens (M may differ between ranks).
    """
    if scores_MK.ndim != 2:
        raise ValueError(f"sinkhorn takes scores [M, K], got shape {list(scores_MK.shape)}")
    if epsilon <= 0:
        raise ValueError(f"sinkhorn epsilon must be > 0, got {epsilon}")
    if iterations < 1:
        raise ValueError(f"sinkhorn iterations must be >= 1, got {iterations}")
    M, K = scores_MK.shape
    distributed = _group_size(group) > 1
    if distributed:  # the global token count stays on the device: no host sync
        num_tokens = torch.tensor(float(M), dtype=torch.float64, device=scores_MK.device)
        dist.all_reduce(num_tokens, group=group)
        log_B = num_tokens.clamp_min(1.0).log().float()
    else:
        log_B = math.log(max(M, 1))

    log_p_MK = scores_MK.detach().float() / epsilon
    for _ in range(iterations):
        # rows: every prototype's mass over the global batch -> 1/K
        log_p_MK = log_p_MK - (
            _global_logsumexp_over_tokens(log_p_MK, group, distributed) + math.log(K)
        )
        # columns: every token's mass -> 1/B (local: a token's column lives on one rank)
        log_p_MK = log_p_MK - (torch.logsumexp(log_p_MK, dim=1, keepdim=True) + log_B)
    return torch.softmax(log_p_MK, dim=1)  # = B * P: each token's code sums to 1
