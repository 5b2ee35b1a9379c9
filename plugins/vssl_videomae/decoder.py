"""The VideoMAE pixel decoder: transformer blocks, a final LayerNorm and a linear head applied
to the trailing (masked) tokens only. Names match the official ``decoder.*`` keys
(MCG-NJU/VideoMAE ``modeling_pretrain.py`` ``PretrainVisionTransformerDecoder``).

Shape legend: B batch, N decoder tokens (visible then masked), M masked tokens, E decoder width,
P output length per token (3 * tubelet * patch * patch).
"""

import torch
from torch import nn

from vssl_core.nn import LN_EPS, Block, init_vit_weights


class VideoMAEDecoder(nn.Module):
    """``blocks`` -> ``norm`` -> ``head`` on the last ``num_predict`` tokens."""

    def __init__(self, dim: int, depth: int, num_heads: int, out_dim: int) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"videomae decoder_depth must be >= 1, got {depth}")
        self.blocks = nn.ModuleList(Block(dim, num_heads, qkv_bias=True) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.head = nn.Linear(dim, out_dim)
        self.apply(init_vit_weights)

    def forward(self, tokens_BNE: torch.Tensor, num_predict: int) -> torch.Tensor:
        """Predictions [B, num_predict, P] for the trailing ``num_predict`` tokens."""
        for block in self.blocks:
            tokens_BNE = block(tokens_BNE)
        return self.head(self.norm(tokens_BNE[:, -num_predict:]))
