"""The MoCo loss with its logged metrics: InfoNCE over [positive key, queue] (one direction,
query -> key, not symmetrized), as in MoCo v1/v2 (He et al., CVPR 2020; Chen et al., arXiv
2003.04297; official code facebookresearch/moco ``moco/builder.py``, CtP's video copy
``pyvrl/models/pretraining/moco/moco_model.py``). The loss and its metrics come from the shared core function.

Shape legend: B batch, D embedding width, K queue size.
"""

import torch

from vssl_core.nn import info_nce_with_metrics


def moco_loss(
    q_BD: torch.Tensor, k_BD: torch.Tensor, queue_KD: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(InfoNCE loss, metrics): ``acc`` is the fraction of queries whose positive logit is the
    largest of the 1+K; ``pos_sim`` / ``neg_sim`` are mean cosine similarities to the positive key
    and to the queue (a collapse shows as both near 1)."""
    return info_nce_with_metrics(q_BD, k_BD, queue_KD, temperature)
