"""Neural-network building blocks shared by backbones and objectives (plugins import them from
here so that a ViT encoder and a masked-modeling decoder use one and the same block)."""

from vssl_core.nn.transformer import (
    LN_EPS,
    Attention,
    Block,
    DropPath,
    Mlp,
    init_vit_weights,
    sinusoid_table,
    trunc_normal_sigma_,
)

__all__ = [
    "LN_EPS",
    "Attention",
    "Block",
    "DropPath",
    "Mlp",
    "init_vit_weights",
    "sinusoid_table",
    "trunc_normal_sigma_",
]
