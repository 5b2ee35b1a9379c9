"""Video Vision Transformer with tubelet embedding, as the VideoMAE encoder (Tong et al., NeurIPS
2022; official code MCG-NJU/VideoMAE ``modeling_finetune.py`` / ``modeling_pretrain.py``).

Names match the official fine-tune model (``patch_embed.proj``, ``blocks.i.*``, ``norm``), so an
official pretraining checkpoint loads after stripping its ``encoder.`` prefix. The position table
is the fixed 1-D sinusoid over the flat token index; like the official model it is not saved.

Shape legend: B batch, C channels (3), T frames, H height, W width, N tokens (T' * H' * W' with
T' = T / tubelet, H' = H / patch, W' = W / patch), V visible tokens, D width.
"""

from typing import Any

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from vssl_core.interfaces import Backbone
from vssl_core.nn import (
    LN_EPS,
    Block,
    cut_tubelets,
    init_vit_weights,
    order_visible_first,
    sinusoid_table,
)
from vssl_core.registry import component


class PatchEmbed3D(nn.Module):
    """Non-overlapping tubelets -> tokens: a Conv3d with kernel = stride = (tubelet, p, p).

    The forward is the same map as one matmul over flattened tubelets, with the Conv3d's own
    weights (so checkpoints are unchanged). cuDNN's bf16 3-D convolution took 23% of a VideoMAE
    ViT-B step on an H200 (docs/performance.md); the matmul is a few percent, and with a token
    index it embeds only the visible tubelets. All tokens on a CPU still go through the conv,
    which oneDNN runs faster than the tubelet copy plus matmul.
    """

    def __init__(self, embed_dim: int, patch_size: int, tubelet_size: int, in_chans: int = 3):
        super().__init__()
        size = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=size, stride=size)

    def forward(
        self, clip_BCTHW: torch.Tensor, index_BV: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Tokens [B, N, D] in (t, h, w) order (token n = t*H'*W' + h*W' + w), or [B, V, D] for
        the tokens ``index_BV``."""
        if index_BV is None and clip_BCTHW.device.type == "cpu":  # oneDNN's conv beats the
            return self.proj(clip_BCTHW).flatten(2).transpose(1, 2)  # tubelet copy on CPUs
        tubelet, patch, _ = self.proj.kernel_size
        rows = cut_tubelets(clip_BCTHW, tubelet, patch, index_BV, channels_first=True)
        return F.linear(rows, self.proj.weight.flatten(1), self.proj.bias)


def _check_divisible(what: str, size: int, by: int, by_name: str) -> None:
    if size < 1 or by < 1 or size % by != 0:
        raise ValueError(
            f"video ViT: {what}={size} must be a positive multiple of {by_name}={by}; "
            f"choose a {what} divisible by {by} (or another {by_name})"
        )


class VisionTransformer3D(Backbone):
    """A plain video ViT (no CLS token) over 3-D tubelet tokens with a fixed sinusoid table.

    ``forward_features`` accepts a boolean token mask (True = masked) and then runs only the
    visible tokens, which is what makes masked video modeling cheap.
    """

    capabilities = frozenset({"token_mask"})

    def __init__(
        self,
        embed_dim: int,
        depth: int,
        num_heads: int,
        img_size: int = 224,
        num_frames: int = 16,
        patch_size: int = 16,
        tubelet_size: int = 2,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        grad_checkpointing: bool = False,
        final_norm: bool = True,
    ) -> None:
        super().__init__()
        _check_divisible("img_size", img_size, patch_size, "patch_size")
        _check_divisible("num_frames", num_frames, tubelet_size, "tubelet_size")
        if depth < 1:
            raise ValueError(f"video ViT: depth must be >= 1, got {depth}")
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"video ViT: drop_path_rate must be in [0, 1), got {drop_path_rate}")
        self.embed_dim = self.num_features = embed_dim
        self.input_size = (num_frames, img_size, img_size)
        self.patch_size, self.tubelet_size = patch_size, tubelet_size
        self.grid_size = (
            num_frames // tubelet_size,
            img_size // patch_size,
            img_size // patch_size,
        )
        self.num_tokens = self.grid_size[0] * self.grid_size[1] * self.grid_size[2]
        self.grad_checkpointing = grad_checkpointing

        self.patch_embed = PatchEmbed3D(embed_dim, patch_size, tubelet_size)
        # a buffer (moves with .to()) that is not persistent: absent from state_dict like upstream
        self.register_buffer(
            "pos_embed", sinusoid_table(self.num_tokens, embed_dim), persistent=False
        )
        # stochastic depth rises linearly from 0 at the first block to drop_path_rate at the last
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, drop_path=r) for r in rates
        )
        # VideoMAE's fine-tuning model has no final norm (Identity): it mean-pools the tokens and
        # norms the pooled feature in the head (``fc_norm``); its checkpoints have no ``norm.*``
        self.norm = nn.LayerNorm(embed_dim, eps=LN_EPS) if final_norm else nn.Identity()
        why = "the backbone is built without its final norm (final_norm: false)"
        # read by vssl_core.convert: a pretraining checkpoint's norm is dropped and reported
        self.unused_checkpoint_keys = {} if final_norm else {"norm.weight": why, "norm.bias": why}
        self.apply(init_vit_weights)  # Linear + LayerNorm only: the Conv3d keeps PyTorch's init

    def no_weight_decay(self) -> set[str]:
        """None: the position table is a buffer, not a parameter."""
        return set()

    def _check_clip(self, clip_BCTHW: torch.Tensor) -> None:
        if clip_BCTHW.ndim != 5 or tuple(clip_BCTHW.shape[2:]) != self.input_size:
            raise ValueError(
                f"video ViT built for clips [B, 3, {', '.join(map(str, self.input_size))}] got "
                f"{list(clip_BCTHW.shape)}; build it with num_frames/img_size matching the clip "
                "(the position table is fixed to the token grid)"
            )

    def forward_features(
        self,
        clip_BCTHW: torch.Tensor,
        mask_BN: torch.Tensor | None = None,
        num_visible: int | None = None,
    ) -> torch.Tensor:
        """Normed tokens [B, N, D] (un-normed without ``final_norm``), or [B, V, D] for the
        visible tokens (ascending index) when a boolean ``mask_BN`` (True = masked, the same
        count in every row) is given.

        A caller that knows how many tokens every row keeps passes ``num_visible``: the forward
        then never reads the mask on the host, so it has no device sync and no
        ``torch.compile`` graph break. The count is still checked, on the device: on a CPU a
        mismatch raises here with a message; on CUDA it is a device-side assert that surfaces
        at the next sync without the message (and builds without kernel asserts skip it), so
        pass it only where the mask is built to keep that count (tube masking).
        """
        self._check_clip(clip_BCTHW)
        if mask_BN is None:
            if num_visible is not None:
                raise ValueError("num_visible is the visible count of a mask_BN; pass both")
            tokens_BND = self.patch_embed(clip_BCTHW) + self.pos_embed
        else:  # embed the visible tubelets only
            index_BV = _visible_index(mask_BN, clip_BCTHW.shape[0], self.num_tokens, num_visible)
            tokens_BND = self.patch_embed(clip_BCTHW, index_BV) + self.pos_embed[0][index_BV]
        for block in self.blocks:
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                tokens_BND = torch.utils.checkpoint.checkpoint(
                    block, tokens_BND, use_reentrant=False
                )
            else:
                tokens_BND = block(tokens_BND)
        return self.norm(tokens_BND)

    def forward(self, clip_BCTHW: torch.Tensor) -> torch.Tensor:
        """Mean of the tokens of ``forward_features``, [B, D]."""
        return self.forward_features(clip_BCTHW).mean(dim=1)


def _visible_index(
    mask_BN: torch.Tensor, B: int, N: int, num_visible: int | None = None
) -> torch.Tensor:
    """The unmasked token indices of each row in ascending order, [B, V]."""
    if mask_BN.dtype != torch.bool or tuple(mask_BN.shape) != (B, N):
        raise ValueError(
            f"token mask must be bool of shape [B, N] = [{B}, {N}], got "
            f"{mask_BN.dtype} {list(mask_BN.shape)}"
        )
    visible_B = (~mask_BN).sum(dim=1)
    if num_visible is not None:
        if not 0 < num_visible <= N:
            raise ValueError(f"num_visible={num_visible} must be in 1..{N} (the token count)")
        # checked on the device: no host sync (a CUDA mismatch surfaces as a device assert)
        torch._assert_async(
            (visible_B == num_visible).all(),
            f"token mask does not keep num_visible={num_visible} tokens in every row",
        )
        return order_visible_first(mask_BN)[:, :num_visible]
    lo, hi = torch.stack(torch.aminmax(visible_B)).tolist()  # one host sync per masked forward
    if lo != hi:
        raise ValueError(
            f"token mask keeps between {lo} and {hi} tokens per sample; every sample must keep "
            "the same number (tube masking does)"
        )
    return order_visible_first(mask_BN)[:, :lo]


_SIZES: dict[str, tuple[int, int, int]] = {  # name: (width, depth, heads)
    "tiny": (192, 12, 3),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
    "large": (1024, 24, 16),
}


def _build(size: str, depth: int | None, **kwargs: Any) -> VisionTransformer3D:
    width, default_depth, heads = _SIZES[size]
    depth = default_depth if depth is None else depth
    return VisionTransformer3D(embed_dim=width, depth=depth, num_heads=heads, **kwargs)


@component("backbone", capabilities=("token_mask",))
def vit_tiny(
    img_size: int = 224,
    num_frames: int = 16,
    patch_size: int = 16,
    tubelet_size: int = 2,
    drop_path_rate: float = 0.0,
    depth: int | None = None,
    grad_checkpointing: bool = False,
    final_norm: bool = True,
) -> VisionTransformer3D:
    """Video ViT-Ti (D 192, 12 blocks, 3 heads); ``depth`` overrides the block count."""
    return _build("tiny", **locals())  # every argument, passed through by name


@component("backbone", capabilities=("token_mask",))
def vit_small(
    img_size: int = 224,
    num_frames: int = 16,
    patch_size: int = 16,
    tubelet_size: int = 2,
    drop_path_rate: float = 0.0,
    depth: int | None = None,
    grad_checkpointing: bool = False,
    final_norm: bool = True,
) -> VisionTransformer3D:
    """Video ViT-S (D 384, 12 blocks, 6 heads); ``depth`` overrides the block count."""
    return _build("small", **locals())  # every argument, passed through by name


@component("backbone", capabilities=("token_mask",))
def vit_base(
    img_size: int = 224,
    num_frames: int = 16,
    patch_size: int = 16,
    tubelet_size: int = 2,
    drop_path_rate: float = 0.0,
    depth: int | None = None,
    grad_checkpointing: bool = False,
    final_norm: bool = True,
) -> VisionTransformer3D:
    """Video ViT-B (D 768, 12 blocks, 12 heads); ``depth`` overrides the block count."""
    return _build("base", **locals())  # every argument, passed through by name


@component("backbone", capabilities=("token_mask",))
def vit_large(
    img_size: int = 224,
    num_frames: int = 16,
    patch_size: int = 16,
    tubelet_size: int = 2,
    drop_path_rate: float = 0.0,
    depth: int | None = None,
    grad_checkpointing: bool = False,
    final_norm: bool = True,
) -> VisionTransformer3D:
    """Video ViT-L (D 1024, 24 blocks, 16 heads); ``depth`` overrides the block count."""
    return _build("large", **locals())  # every argument, passed through by name
