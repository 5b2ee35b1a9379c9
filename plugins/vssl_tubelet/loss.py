"""The tubelet-contrast loss: MoCo's InfoNCE over [positive key, queue], one direction (query ->
key), as in fmthoker/tubelet-contrast ``pyvrl/models/pretraining/tubeletcontrast/model.py``
(``nce_loss``, forked from microsoft/CtP's MoCo; spec contrastive-and-severe.md §4.1, §5.9).
The logits come from the shared core function.

Shape legend: B batch, D embedding width, K queue size.
"""

import torch
import torch.nn.functional as F

from vssl_core.nn import info_nce_logits


def nce_loss(
    q_BD: torch.Tensor, k_BD: torch.Tensor, queue_KD: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(loss, metrics): ``acc`` is the fraction of queries whose own key (same tubelets, other
    video) beats every queued key; ``pos_sim`` / ``neg_sim`` are the mean cosine similarities to
    it and to the queue (a collapse shows as both near 1)."""
    logits_B1K = info_nce_logits(q_BD, k_BD, queue_KD, temperature)
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
