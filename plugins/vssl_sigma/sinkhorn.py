"""Sinkhorn-Knopp equipartition of tokens over prototypes, across ranks.

Follows SwAV's ``distributed_sinkhorn`` (facebookresearch/swav ``main_swav.py``) as SIGMA calls
it (QUVA-Lab/SIGMA ``utils.sinkhorn`` / ``find_optimal_assignment``): P = exp(S / eps); then
``iterations`` times, scale every prototype's total mass over the GLOBAL batch to 1/K (row sums
all-reduced) and every token's mass to 1/B (local, B = tokens on all ranks); finally each token's
row is renormalized to sum to 1.

Equivalent to the official code, not a copy of it:
- The iterations update two scaling vectors, P = diag(v) exp(S / eps) diag(u) (spec
  videomae-sigma.md §3), not the [M, K] matrix: one pass over the scores per half-step instead
  of a rewrite of the whole matrix. At SIGMA ViT-B's size (batch 408, ~576k masked tokens x 3,000
  prototypes, 6.9 GB in float32) the matrix-update form moved ~16 such matrices per iteration,
  >= 237 ms per call at an H200's memory bandwidth, twice per step; this form moves ~28 per
  call in all (``benchmarks/sinkhorn_speed.py``).
- The vectors live in the log domain (float32), so neither overflows nor underflows. The passes
  over the scores take one of two forms:
  - scores with a known bound |S| <= b (cosines: b = 1) and a kernel range 2b / eps <= 80 use
    the kernel G = exp((S - b) / eps) in (e^-80, 1], built once, and two matrix-vector products
    per iteration (each sum keeps a term >= e^-80, above float32's smallest normal number);
  - any other scores use log-sum-exp passes over S / eps + log-scale.
- The official first step (divide P by its global total) is skipped: the first row step absorbs
  any constant factor. For the same reason the column target (1/B here, W/M in SIGMA's code)
  does not change the result (spec videomae-sigma.md §2.4, remark a).

Shape legend: M tokens on this rank, K prototypes.
"""

import math

import torch
import torch.distributed as dist

MAX_KERNEL_RANGE = 80.0  # e^-80 = 1.8e-35 > float32's smallest normal (1.2e-38)


def _group_size(group: dist.ProcessGroup | None) -> int:
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size(group)


class _Scaling:
    """The half-steps of Sinkhorn on fixed scores: log sum over tokens (all ranks) and over
    prototypes of exp(S / eps) times a scaling vector, without rewriting the [M, K] matrix."""

    def __init__(
        self,
        scores_MK: torch.Tensor,
        epsilon: float,
        score_bound: float | None,
        group: dist.ProcessGroup | None,
        distributed: bool,
    ) -> None:
        self.group, self.distributed = group, distributed
        scores_MK = scores_MK.detach().float()
        self.use_kernel = score_bound is not None and 2 * score_bound / epsilon <= MAX_KERNEL_RANGE
        if self.use_kernel:  # log G = S / eps - b / eps: a constant shift, absorbed by the scaling
            self.kernel_MK = torch.sub(scores_MK, score_bound).mul_(1.0 / epsilon).exp_()
        else:
            self.log_kernel_MK = scores_MK / epsilon

    def over_tokens(self, log_v_M: torch.Tensor) -> torch.Tensor:
        """log sum_m G[m, k] v[m] over the tokens of every rank, [K]."""
        if self.use_kernel:
            if log_v_M.numel():
                shift = log_v_M.amax()
            else:  # a rank without tokens must not raise the shared shift
                shift = log_v_M.new_full((), -math.inf)
            if self.distributed:  # one shift on every rank, so the sums add up
                shift = shift.clone()
                dist.all_reduce(shift, op=dist.ReduceOp.MAX, group=self.group)
            shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
            sum_K = _sum_over_tokens(torch.exp(log_v_M - shift), self.kernel_MK)
            if self.distributed:
                dist.all_reduce(sum_K, op=dist.ReduceOp.SUM, group=self.group)
            return sum_K.log() + shift
        return _global_logsumexp_over_tokens(
            self.log_kernel_MK + log_v_M[:, None], self.group, self.distributed
        )

    def over_prototypes(self, log_u_K: torch.Tensor) -> torch.Tensor:
        """log sum_k G[m, k] u[k] for every token of this rank, [M]."""
        if self.use_kernel:
            shift = log_u_K.amax()
            return (self.kernel_MK @ torch.exp(log_u_K - shift)).log() + shift
        return torch.logsumexp(self.log_kernel_MK + log_u_K, dim=1)


TOKEN_BLOCK = 4096


def _sum_over_tokens(w_M: torch.Tensor, kernel_MK: torch.Tensor) -> torch.Tensor:
    """sum_m w[m] G[m, k], [K], in blocks of ``TOKEN_BLOCK`` tokens whose partial sums are then
    added: one float32 vector-matrix product over ~576k tokens can accumulate in sequence (a CPU
    BLAS does), 5e-4 relative error against 5e-6 in blocks. One batched product reads G once."""
    M, K = kernel_MK.shape
    whole = M - M % TOKEN_BLOCK
    sum_K = kernel_MK.new_zeros(K)
    if whole:
        blocks = whole // TOKEN_BLOCK
        partial_b1K = w_M[:whole].view(blocks, 1, TOKEN_BLOCK) @ kernel_MK[:whole].view(
            blocks, TOKEN_BLOCK, K
        )
        sum_K = partial_b1K.sum(dim=(0, 1))
    if whole < M:
        sum_K = sum_K + w_M[whole:] @ kernel_MK[whole:]
    return sum_K


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
def prototype_log_scale(
    scores_MK: torch.Tensor,
    epsilon: float,
    iterations: int,
    group: dist.ProcessGroup | None = None,
    score_bound: float | None = None,
) -> torch.Tensor:
    """log u [K] after ``iterations`` Sinkhorn steps, up to a constant: token m's code is
    softmax_k(S[m, k] / eps + log u[k]), its hard label the argmax of S[m, k] + eps log u[k].

    ``score_bound``: a bound b on |S| that holds for every score (1 for cosine similarities);
    it lets the iterations run on the exponential kernel (see the module docstring). Identical
    on every rank of ``group`` (default: the world, when torch.distributed is initialized).
    """
    if scores_MK.ndim != 2:
        raise ValueError(f"sinkhorn takes scores [M, K], got shape {list(scores_MK.shape)}")
    if epsilon <= 0:
        raise ValueError(f"sinkhorn epsilon must be > 0, got {epsilon}")
    if iterations < 1:
        raise ValueError(f"sinkhorn iterations must be >= 1, got {iterations}")
    if score_bound is not None and score_bound <= 0:
        raise ValueError(f"sinkhorn score_bound must be > 0 (1 for cosines), got {score_bound}")
    M, K = scores_MK.shape
    distributed = _group_size(group) > 1
    if distributed:  # the global token count stays on the device: no host sync
        num_tokens = scores_MK.new_full((), float(M), dtype=torch.float64)  # a fill, no copy
        dist.all_reduce(num_tokens, group=group)
        log_B = num_tokens.clamp_min(1.0).log().float()
    else:
        log_B = math.log(max(M, 1))

    scaling = _Scaling(scores_MK, epsilon, score_bound, group, distributed)
    log_v_M = scores_MK.new_zeros(M, dtype=torch.float32)
    for step in range(iterations):
        # rows: every prototype's mass over the global batch -> 1/K
        log_u_K = -(scaling.over_tokens(log_v_M) + math.log(K))
        if step < iterations - 1:  # the last column step is the final per-token renormalization
            # columns: every token's mass -> 1/B (local: a token's column lives on one rank)
            log_v_M = -(scaling.over_prototypes(log_u_K) + log_B)
    return log_u_K


def sinkhorn(
    scores_MK: torch.Tensor,
    epsilon: float,
    iterations: int,
    group: dist.ProcessGroup | None = None,
    score_bound: float | None = None,
) -> torch.Tensor:
    """Soft codes Q [M, K] (each row sums to 1) of this rank's tokens; the prototype marginal is
    balanced over the tokens of every rank in ``group`` (default: the world, when
    torch.distributed is initialized). No gradient flows: the codes are pseudo-labels.

    Every rank must call it with its own tokens (M may differ between ranks).
    """
    log_u_K = prototype_log_scale(scores_MK, epsilon, iterations, group, score_bound)
    with torch.no_grad():
        return torch.softmax(scores_MK.detach().float() / epsilon + log_u_K, dim=1)


def sinkhorn_labels(
    scores_MK: torch.Tensor,
    epsilon: float,
    iterations: int,
    group: dist.ProcessGroup | None = None,
    score_bound: float | None = None,
) -> torch.Tensor:
    """Hard pseudo-labels [M] (int64): the argmax of ``sinkhorn``'s codes, without building them."""
    log_u_K = prototype_log_scale(scores_MK, epsilon, iterations, group, score_bound)
    with torch.no_grad():
        return torch.argmax(scores_MK.detach().float() + epsilon * log_u_K, dim=1)
