"""Neural-network building blocks shared by backbones and objectives (plugins import them from
here so that a ViT encoder and a masked-modeling decoder use one and the same block; the tube
mask, pixel target and decoder of masked video modeling are shared by VideoMAE and SIGMA)."""

from vssl_core.nn.contrastive import (
    KeyQueue,
    batch_shuffle,
    batch_unshuffle,
    concat_all_gather,
    forward_in_groups,
    info_nce,
    info_nce_logits,
    info_nce_with_metrics,
    momentum_update_,
    shuffled_forward,
)
from vssl_core.nn.masked_modeling import (
    MaskedDecoder,
    cut_tubelets,
    decoder_input,
    default_decoder_heads,
    gather_tokens,
    masked_per_slot,
    order_visible_first,
    patchify_target,
    tube_mask,
)
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
    "KeyQueue",
    "MaskedDecoder",
    "Mlp",
    "batch_shuffle",
    "batch_unshuffle",
    "concat_all_gather",
    "decoder_input",
    "default_decoder_heads",
    "forward_in_groups",
    "gather_tokens",
    "info_nce",
    "info_nce_logits",
    "info_nce_with_metrics",
    "init_vit_weights",
    "masked_per_slot",
    "momentum_update_",
    "order_visible_first",
    "cut_tubelets",
    "patchify_target",
    "shuffled_forward",
    "sinusoid_table",
    "trunc_normal_sigma_",
    "tube_mask",
]
