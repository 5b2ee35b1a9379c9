"""SIGMA's symmetric swapped-prediction loss over Sinkhorn pseudo-labels.

Paper: Salehi, Dorkenwald, Thoker, Gavves, Snoek, Asano, "SIGMA: Sinkhorn-Guided Masked Video
Modeling", ECCV 2024. Official code followed: QUVA-Lab/SIGMA @ 9876f09
(``engine_for_pretraining.py``, ``modeling_pretrain.py`` ``extract_assignments``, ``utils.py``),
itself built on SwAV's swapped prediction (facebookresearch/swav ``main_swav.py``).

With phi the projected targets, psi the decoder predictions (masked tubelets only), C the
row-normalized prototypes, sg a stop-gradient and y = argmax Sinkhorn(scores):

    L1 = CE(cos(phi, C) / tau,     y_psi)   the projection predicts the decoder's cluster
    L2 = CE(cos(psi, sg(C)) / tau, y_phi)   the decoder predicts the projection's cluster
    L  = L1 + L2                             (a sum, averaged over tokens within each term)

So the prototypes learn only from L1, the video model only from L2, and the pseudo-labels carry
no gradient (spec videomae-sigma.md §2.4-2.6). Scores, Sinkhorn and cross-entropies run in
float32 with autocast off: exp(1/eps) overflows half precision.

Shape legend: M masked tokens (of every sample on this rank), D feature width, K prototypes.
"""

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

from vssl_sigma.sinkhorn import sinkhorn, sinkhorn_labels


def prototype_scores(features_MD: torch.Tensor, prototypes_KD: torch.Tensor) -> torch.Tensor:
    """Cosine similarities [M, K] in float32 (the prototypes are already unit rows)."""
    assert features_MD.ndim == 2 and prototypes_KD.ndim == 2, (
        f"features {list(features_MD.shape)} and prototypes {list(prototypes_KD.shape)} must be 2-D"
    )
    assert features_MD.shape[1] == prototypes_KD.shape[1], (
        f"feature width {features_MD.shape[1]} != prototype width {prototypes_KD.shape[1]}"
    )
    with torch.autocast(features_MD.device.type, enabled=False):
        unit_MD = F.normalize(features_MD.float(), dim=1)
        return unit_MD @ prototypes_KD.float().t()


def assignments(
    scores_MK: torch.Tensor,
    epsilon: float,
    iterations: int,
    soft: bool,
    group: dist.ProcessGroup | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(targets, labels [M]) of cosine scores: the targets are the hard labels (argmax, as
    SIGMA's released code) or the soft Sinkhorn codes [M, K] (as SwAV)."""
    if soft:
        codes_MK = sinkhorn(scores_MK, epsilon, iterations, group, score_bound=1.0)
        return codes_MK, codes_MK.argmax(dim=1)
    labels_M = sinkhorn_labels(scores_MK, epsilon, iterations, group, score_bound=1.0)
    return labels_M, labels_M


def swapped_cross_entropy(
    scores_MK: torch.Tensor, targets: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Mean over tokens of CE(softmax(scores / tau), targets); targets [M] labels or [M, K]."""
    assert targets.shape in (scores_MK.shape[:1], scores_MK.shape), (
        f"targets {list(targets.shape)} for scores {list(scores_MK.shape)}"
    )
    with torch.autocast(scores_MK.device.type, enabled=False):
        return F.cross_entropy(scores_MK.float() / temperature, targets.detach())


@dataclass
class SigmaLossTerms:
    """The two terms and the hard pseudo-labels of each branch (for logging)."""

    projection: torch.Tensor  # L1
    prediction: torch.Tensor  # L2
    labels_projection_M: torch.Tensor
    labels_prediction_M: torch.Tensor
    # the pretext accuracy: the fraction of masked tubelets whose predicted prototype (the
    # decoder's best score) is the one Sinkhorn assigned to their projected pixels (L2's target)
    acc: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        return self.projection + self.prediction


def sigma_loss(
    projected_MD: torch.Tensor,
    predicted_MD: torch.Tensor,
    prototypes_KD: torch.Tensor,
    temperature: float,
    epsilon: float,
    iterations: int,
    soft_targets: bool = False,
    group: dist.ProcessGroup | None = None,
) -> SigmaLossTerms:
    """L1 and L2 of the symmetric swapped prediction; Sinkhorn is balanced over every rank."""
    assert projected_MD.shape == predicted_MD.shape, (
        f"projected targets {list(projected_MD.shape)} vs predictions {list(predicted_MD.shape)}"
    )
    # the Sinkhorn kernel needs |scores| <= 1: unit prototypes (checked on the device, no sync)
    norms_K = prototypes_KD.detach().float().norm(dim=1)
    torch._assert_async((norms_K - 1).abs().amax() < 1e-3, "sigma prototypes must be unit rows")
    scores_phi_MK = prototype_scores(projected_MD, prototypes_KD)
    scores_psi_MK = prototype_scores(predicted_MD, prototypes_KD.detach())
    targets_phi, labels_phi_M = assignments(scores_phi_MK, epsilon, iterations, soft_targets, group)
    targets_psi, labels_psi_M = assignments(scores_psi_MK, epsilon, iterations, soft_targets, group)
    return SigmaLossTerms(
        projection=swapped_cross_entropy(scores_phi_MK, targets_psi, temperature),
        prediction=swapped_cross_entropy(scores_psi_MK, targets_phi, temperature),
        labels_projection_M=labels_phi_M,
        labels_prediction_M=labels_psi_M,
        acc=(scores_psi_MK.detach().argmax(dim=1) == labels_phi_M).float().mean(),
    )
