"""The tubelet-contrast loss: MoCo's InfoNCE over [positive key, queue], one direction (query ->
key), as in fmthoker/tubelet-contrast ``pyvrl/models/pretraining/tubeletcontrast/model.py``
(``nce_loss``, forked from microsoft/CtP's MoCo; spec contrastive-and-severe.md §4.1, §5.9).
The loss and its metrics come from the shared core function.

Shape legend: B batch, D embedding width, K queue size.
"""

import torch
import torch.nn.functional as F

from vssl_core.nn import info_nce_with_metrics


def nce_loss(
    q_BD: torch.Tensor, k_BD: torch.Tensor, queue_KD: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(loss, metrics): ``acc`` is the fraction of queries whose own key (same tubelets, other
    video) beats every queued key; ``pos_sim`` / ``neg_sim`` are the mean cosine similarities to
    it and to the queue (a collapse shows as both near 1); ``batch_acc`` (below)."""
    loss, metrics = info_nce_with_metrics(q_BD, k_BD, queue_KD, temperature)
    metrics["batch_acc"] = batch_acc(q_BD.detach(), k_BD.detach())
    return loss, metrics


def batch_acc(q_BD: torch.Tensor, k_BD: torch.Tensor) -> torch.Tensor:
    """Fraction of queries whose own key is the most similar of this batch's keys (chance 1/B).

    Unlike ``acc`` it cannot be inflated by stale queued keys: while the key encoder drifts,
    every fresh key is closer to the queries than the queue is, whatever its tubelets."""
    sim_BB = F.normalize(q_BD.float(), dim=1) @ F.normalize(k_BD.float(), dim=1).T
    own_B = torch.arange(q_BD.shape[0], device=q_BD.device)
    return (sim_BB.argmax(dim=1) == own_B).float().mean()
