"""Masked video modeling pieces shared by VideoMAE-style objectives (VideoMAE, SIGMA, ...).

Follows the official VideoMAE code (MCG-NJU/VideoMAE @ 14ef8d8): ``masking_generator.py``
(``TubeMaskingGenerator``), ``engine_for_pretraining.py`` (normalized-pixel targets) and
``modeling_pretrain.py`` (``PretrainVisionTransformerDecoder`` and the decoder input order).
SIGMA (QUVA-Lab/SIGMA) forks that code and changes only the decoder's output width, so both
methods build on these functions instead of importing each other.

Shape legend: B batch, C channels (3), T frames, H height, W width, T' temporal slots,
S = H' * W' spatial positions per slot, N = T' * S tokens, V visible tokens, M masked tokens,
E decoder width, Q pixels per tubelet (tubelet * patch * patch), P = Q * C target length,
O decoder output width, X any trailing width.
"""

from collections.abc import Sequence

import torch
from torch import nn

from vssl_core.device_constants import device_constant
from vssl_core.nn.transformer import LN_EPS, Block, init_vit_weights
from vssl_core.random import keyed_uniform

MASK_STREAM = 0  # keyed_uniform stream of the tube-mask noise
TARGET_EPS = 1e-6  # added to the std of a tubelet, not to its variance

# ---------------------------------------------------------------------------------- tube mask


def masked_per_slot(grid: tuple[int, int, int], mask_ratio: float) -> int:
    """How many spatial positions a tube mask hides: ``int(mask_ratio * H' * W')`` (floor)."""
    _, h, w = grid
    return int(mask_ratio * h * w)


def tube_mask(
    keys_B: torch.Tensor, grid: tuple[int, int, int], mask_ratio: float, stream: int = MASK_STREAM
) -> torch.Tensor:
    """Boolean tube mask [B, N] (True = masked) over a (T', H', W') token grid, flattened in
    (t, h, w) order; row b depends only on ``keys_B[b]``. Runs on the device of ``keys_B``.

    One spatial mask of ``int(mask_ratio * H'W')`` positions per clip, repeated over every
    temporal slot, as ``TubeMaskingGenerator``. The official draw is a numpy shuffle in the data
    loader; here the positions with the smallest keyed noise are masked, so a sample's mask
    depends only on its key (not on its rank, batch or worker). Same distribution: a uniform
    m-subset of the positions.
    """
    t, h, w = grid
    num_masked = masked_per_slot(grid, mask_ratio)
    if not 0 < num_masked < h * w:
        raise ValueError(
            f"mask_ratio={mask_ratio} masks {num_masked} of the {h * w} positions of a {h}x{w} "
            "slot; it must mask at least one and keep at least one (VideoMAE uses 0.9)"
        )
    noise_BS = keyed_uniform(keys_B, h * w, stream=stream)
    # stable: ties in the 24-bit noise break by position, identically on every device
    order_BS = torch.argsort(noise_BS, dim=1, stable=True)
    rank_BS = torch.argsort(order_BS, dim=1)  # each position's rank in the noise order
    mask_BS = rank_BS < num_masked
    return mask_BS.unsqueeze(1).expand(-1, t, -1).reshape(mask_BS.shape[0], t * h * w)


def order_visible_first(mask_BN: torch.Tensor) -> torch.Tensor:
    """Token indices [B, N]: the visible ones ascending, then the masked ones ascending (the
    order of the official boolean indexing ``x[~mask]`` followed by ``x[mask]``)."""
    return torch.argsort(mask_BN.to(torch.uint8), dim=1, stable=True)


def gather_tokens(x_BNX: torch.Tensor, index_BK: torch.Tensor) -> torch.Tensor:
    """Rows ``index_BK`` of each sample, [B, K, X]."""
    return x_BNX.gather(1, index_BK.unsqueeze(-1).expand(-1, -1, x_BNX.shape[-1]))


# ---------------------------------------------------------------------------------- pixel target


def cut_tubelets(
    clip_BCTHW: torch.Tensor,
    tubelet_size: int,
    patch_size: int,
    index_BK: torch.Tensor | None = None,
    channels_first: bool = False,
) -> torch.Tensor:
    """The clip's tubelets as rows [B, K, tubelet * patch^2 * C]: all N in (t, h, w) order, or
    only the tokens ``index_BK``. Pixels within a row are ordered (time, row, col, channel), or
    (channel, time, row, col) when ``channels_first`` (the layout of a Conv3d weight).

    With an index, only the chosen tubelets are copied: a masked model never moves the pixels
    it does not use.
    """
    B, C, T, H, W = clip_BCTHW.shape
    if T % tubelet_size or H % patch_size or W % patch_size:
        raise ValueError(
            f"clip {list(clip_BCTHW.shape)} does not tile into {tubelet_size}x{patch_size}x"
            f"{patch_size} tubelets"
        )
    t, h, w = T // tubelet_size, H // patch_size, W // patch_size
    x = clip_BCTHW.reshape(B, C, t, tubelet_size, h, patch_size, w, patch_size)
    x = x.permute((0, 2, 4, 6, 1, 3, 5, 7) if channels_first else (0, 2, 4, 6, 3, 5, 7, 1))
    if index_BK is None:
        return x.reshape(B, t * h * w, -1)
    b_B1 = torch.arange(B, device=clip_BCTHW.device).unsqueeze(1)
    rows = x[b_B1, index_BK // (h * w), index_BK // w % h, index_BK % w]  # [B, K, pixel dims]
    return rows.reshape(B, index_BK.shape[1], -1)


def patchify_target(
    clip_BCTHW: torch.Tensor,
    tubelet_size: int,
    patch_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    normalize: bool = True,
    index_BK: torch.Tensor | None = None,
) -> torch.Tensor:
    """Normalized-pixel target [B, N, P] of a normalized clip ([B, K, P] for the tokens
    ``index_BK``); raw [0, 1] pixels in the same layout when ``normalize`` is False. Index within
    a token: ((p0 * patch + p1) * patch + p2) * C + c.

    The official recipe un-normalizes the clip to [0, 1], cuts it into tubelets with pixel order
    (time in tubelet, row, col), standardizes each tubelet per colour channel over its pixels
    (unbiased variance, eps added to the std) and flattens with the channel fastest. Unlike image
    MAE the statistics are per channel, so a per-channel affine colour change leaves the target
    unchanged; that is also why the un-normalization is skipped here: standardizing
    ``x * std_c + mean_c`` with eps equals standardizing ``x`` with eps / std_c.
    """
    B, C = clip_BCTHW.shape[:2]
    if len(mean) != C or len(std) != C:
        raise ValueError(f"mean/std need {C} values (one per channel), got {mean}, {std}")
    dtype = torch.promote_types(clip_BCTHW.dtype, torch.float32)  # statistics in >= float32
    rows_BKP = cut_tubelets(clip_BCTHW, tubelet_size, patch_size, index_BK).to(dtype)
    K, P = rows_BKP.shape[1:]
    rows_BKQC = rows_BKP.reshape(B, K, P // C, C)
    std_C = device_constant(std, clip_BCTHW.device, dtype)
    if not normalize:
        mean_C = device_constant(mean, clip_BCTHW.device, dtype)
        return (rows_BKQC * std_C + mean_C).reshape(B, K, P)
    # shifting by a pixel of the tubelet first makes a flat tubelet exactly 0 (its target then
    # is 0, not rounding noise divided by eps) without changing mean-free values
    rows_BKQC = rows_BKQC - rows_BKQC[:, :, :1]
    var_BK1C, mu_BK1C = torch.var_mean(rows_BKQC, dim=2, correction=1, keepdim=True)
    rows_BKQC = (rows_BKQC - mu_BK1C) / (var_BK1C.sqrt() + TARGET_EPS / std_C)
    return rows_BKQC.reshape(B, K, P)


# ---------------------------------------------------------------------------------- decoder


def default_decoder_heads(decoder_dim: int) -> int:
    """64-wide heads as every official decoder up to ViT-L (S 192/3, B 384/6, L 512/8), but at
    least 3 heads so a narrow CPU-scale decoder still attends in several subspaces (tiny: 96 ->
    3 heads of 32); lowered until it divides the width. (Official ViT-H, 640/8, is the exception.)
    """
    heads = max(decoder_dim // 64, 3)
    while decoder_dim % heads:
        heads -= 1
    return heads


class MaskedDecoder(nn.Module):
    """``blocks`` -> ``norm`` -> ``head`` on the last ``num_predict`` tokens.

    Names match the official ``decoder.*`` keys. ``out_dim`` is the head width: 3 * tubelet *
    patch^2 pixels for VideoMAE, the feature width d (256 / 384 / 768) for SIGMA.
    """

    def __init__(self, dim: int, depth: int, num_heads: int, out_dim: int) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"decoder_depth must be >= 1, got {depth}")
        if out_dim < 1:
            raise ValueError(f"decoder output width must be >= 1, got {out_dim}")
        self.blocks = nn.ModuleList(Block(dim, num_heads, qkv_bias=True) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.head = nn.Linear(dim, out_dim)
        self.apply(init_vit_weights)

    def forward(self, tokens_BNE: torch.Tensor, num_predict: int) -> torch.Tensor:
        """Predictions [B, num_predict, O] for the trailing ``num_predict`` tokens."""
        for block in self.blocks:
            tokens_BNE = block(tokens_BNE)
        return self.head(self.norm(tokens_BNE[:, -num_predict:]))


def decoder_input(
    visible_BVE: torch.Tensor,
    mask_token_11E: torch.Tensor,
    pos_table_1NE: torch.Tensor,
    order_BN: torch.Tensor,
) -> torch.Tensor:
    """Decoder tokens [B, N, E]: [visible + pos[visible], mask_token + pos[masked]].

    ``order_BN`` (from :func:`order_visible_first`) lists the visible tokens then the masked
    ones; the position table is gathered in that order instead of un-shuffling the tokens, and it
    is added to both groups, as in the official forward.
    """
    B, V, E = visible_BVE.shape
    N = order_BN.shape[1]
    assert pos_table_1NE.shape[1:] == (N, E), (
        f"position table {list(pos_table_1NE.shape)} for {N} tokens of width {E}"
    )
    pos_BNE = gather_tokens(pos_table_1NE.expand(B, -1, -1), order_BN)
    masked_BME = mask_token_11E.expand(B, N - V, E) + pos_BNE[:, V:]
    return torch.cat((visible_BVE + pos_BNE[:, :V], masked_BME), dim=1)
