"""The MoCo loss with its logged metrics: InfoNCE over [positive key, queue] (one direction,
query -> key, not symmetrized), as in MoCo v1/v2 (He et al., CVPR 2020; Chen et al., arXiv
2003.04297; official code facebookresearch/moco ``moco/builder.py``, CtP's video copy
``pyvrl/models/pretraining/moco/moco_model.py``). The logits come from the shared core function.

Shape legend: B batch, D embedding width, K queue size.
"""

import torch
import torch.nn.functional as F

from vssl_core.nn import info_nce_logits


def moco_loss(
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
