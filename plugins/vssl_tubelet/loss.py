"""The tubelet-contrast loss: MoCo's InfoNCE over [positive key, queue], one direction (query ->
key), as in fmthoker/tubelet-contrast ``pyvrl/models/pretraining/tubeletcontrast/model.py``
(``nce_loss``, forked from microsoft/CtP's MoCo; spec contrastive-and-severe.md §4.1, §5.9).
The loss and its metrics come from the shared core function.

Shape legend: B batch, D embedding width, K queue size.
"""

import torch

from vssl_core.nn import info_nce_with_metrics


def nce_loss(
    q_BD: torch.Tensor, k_BD: torch.Tensor, queue_KD: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(loss, metrics): ``acc`` is the fraction of queries whose own key (same tubelets, other
    video) beats every queued key; ``pos_sim`` / ``neg_sim`` are the mean cosine similarities to
    it and to the queue (a collapse shows as both near 1)."""
    return info_nce_with_metrics(q_BD, k_BD, queue_KD, temperature)
