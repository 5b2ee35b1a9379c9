"""Heads: what sits on top of a backbone's pooled features in downstream evaluation.

A head component is built by the ``supervised`` objective with two injected arguments,
``in_features`` (the backbone's ``num_features``) and ``num_outputs`` (classes, or 1 for
counting); everything else comes from the recipe's ``objective.head`` mapping.

Shape legend: B batch, D feature width, K outputs.
"""

from typing import Literal

import torch
from torch import nn

from vssl_core.nn import LN_EPS
from vssl_core.registry import component


class LinearHead(nn.Module):
    """[B, D] -> optional LayerNorm -> dropout -> Linear -> [B, K]."""

    def __init__(
        self,
        in_features: int,
        num_outputs: int,
        dropout: float,
        norm: bool,
        init: str,
        init_std: float,
        init_scale: float,
    ) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_features, eps=LN_EPS) if norm else nn.Identity()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_features, num_outputs)
        if init == "normal":
            nn.init.normal_(self.fc.weight, std=init_std)
            nn.init.zeros_(self.fc.bias)
        elif init == "trunc_normal":
            nn.init.trunc_normal_(self.fc.weight, std=init_std, a=-2 * init_std, b=2 * init_std)
            nn.init.zeros_(self.fc.bias)
        with torch.no_grad():  # VideoMAE scales weight and bias of its fresh head by 0.001
            self.fc.weight.mul_(init_scale)
            self.fc.bias.mul_(init_scale)

    def forward(self, features_BD: torch.Tensor) -> torch.Tensor:
        if features_BD.ndim != 2 or features_BD.shape[1] != self.fc.in_features:
            raise ValueError(
                f"head expects pooled features [B, {self.fc.in_features}], got "
                f"{list(features_BD.shape)}"
            )
        return self.fc(self.dropout(self.norm(features_BD)))


@component("head")
def linear_head(
    in_features: int,
    num_outputs: int,
    dropout: float = 0.0,
    norm: bool = False,
    init: Literal["pytorch", "normal", "trunc_normal"] = "pytorch",
    init_std: float = 0.01,
    init_scale: float = 1.0,
) -> LinearHead:
    """Dropout + Linear, optionally after a fresh LayerNorm (VideoMAE's fc_norm).

    SEVERE fine-tuning: defaults (PyTorch init, no dropout). SEVERE linear eval: init normal,
    init_std 0.01. Charades: dropout 0.5, init normal 0.01. VideoMAE/SIGMA: norm true,
    init trunc_normal, init_std 0.02, init_scale 0.001.
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"linear_head: dropout must be in [0, 1), got {dropout}")
    if init_std <= 0 or init_scale <= 0:
        raise ValueError(
            f"linear_head: init_std and init_scale must be positive, got {init_std}, {init_scale}"
        )
    if init == "pytorch" and init_std != 0.01:
        raise ValueError(
            "linear_head: init_std is used by init 'normal' or 'trunc_normal' only; "
            "set init to one of them or remove init_std"
        )
    return LinearHead(in_features, num_outputs, dropout, norm, init, init_std, init_scale)
