"""Transformer building blocks shared by the video ViT backbone and the masked-modeling decoders.

Module and parameter names equal those of the official VideoMAE code (MCG-NJU/VideoMAE,
``modeling_finetune.py``: ``norm1``, ``attn.{qkv,q_bias,v_bias,proj}``, ``norm2``,
``mlp.{fc1,fc2}``), so official checkpoints load into a :class:`Block` without renaming.

Shape legend: B batch, N tokens, D width, H heads, Dh head width (D / H), F MLP hidden width.
"""

import torch
import torch.nn.functional as F
from torch import nn

LN_EPS = 1e-6  # every VideoMAE LayerNorm (HF's ports use 1e-12 / 1e-5; the official code 1e-6)


def sinusoid_table(n_position: int, dim: int) -> torch.Tensor:
    """The fixed VideoMAE position table [1, n_position, dim], 1-D over the flat token index.

    Channel j of position p holds sin (j even) or cos (j odd) of p / 10000^(2*floor(j/2)/dim):
    sin and cos interleave, they are not two concatenated halves. Computed in float64 and cast to
    float32 like the official numpy code, because checkpoints carry no position table and a
    different table would silently change what the pretrained weights see.
    """
    if n_position < 1 or dim < 1:
        raise ValueError(
            f"sinusoid_table needs n_position >= 1 and dim >= 1, got {n_position}, {dim}"
        )
    position_N1 = torch.arange(n_position, dtype=torch.float64).unsqueeze(1)
    pair_D = torch.div(torch.arange(dim, dtype=torch.float64), 2, rounding_mode="floor")
    angle_ND = position_N1 / torch.pow(10000.0, 2.0 * pair_D / dim)
    table_ND = torch.empty_like(angle_ND)
    table_ND[:, 0::2] = torch.sin(angle_ND[:, 0::2])
    table_ND[:, 1::2] = torch.cos(angle_ND[:, 1::2])
    return table_ND.to(torch.float32).unsqueeze(0)


class DropPath(nn.Module):
    """Stochastic depth: during training, zero a sample's residual branch with probability
    ``drop_prob`` and rescale the kept ones, so the expected output is unchanged."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f"DropPath drop_prob must be in [0, 1), got {drop_prob}")
        self.drop_prob = drop_prob

    def forward(self, x_BND: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x_BND
        keep = 1.0 - self.drop_prob
        shape = (x_BND.shape[0],) + (1,) * (x_BND.ndim - 1)
        keep_B11 = x_BND.new_empty(shape).bernoulli_(keep)
        return x_BND * keep_B11 / keep

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class Attention(nn.Module):
    """Multi-head self-attention with VideoMAE's bias layout.

    ``qkv`` has no bias of its own; ``q_bias`` and ``v_bias`` are separate (zero-init) parameters
    and the key bias is a constant zero. A key bias would add the same q.b to every logit of a
    query, which softmax cancels, so the official model simply has none.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"attention width {dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias, self.v_bias = None, None
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def qkv_bias(self) -> torch.Tensor | None:
        """The effective fused bias [q_bias, 0, v_bias] of shape [3D], or None."""
        if self.q_bias is None:
            return None
        return torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))

    def forward(self, x_BND: torch.Tensor) -> torch.Tensor:
        B, N, D = x_BND.shape
        qkv = F.linear(x_BND, self.qkv.weight, self.qkv_bias())
        # rows [0, D) are q, [D, 2D) k, [2D, 3D) v; head h owns rows h*Dh ... h*Dh + Dh - 1 of each.
        # Split on the "3" axis, then swap N and H: the backward stacks the three gradients
        # straight into qkv's [B, N, 3, H, Dh] layout (one copy; permuting first costs two)
        q_BHND, k_BHND, v_BHND = (
            t.transpose(1, 2) for t in qkv.view(B, N, 3, self.num_heads, self.head_dim).unbind(2)
        )
        out_BHND = F.scaled_dot_product_attention(
            q_BHND,
            k_BHND,
            v_BHND,
            dropout_p=self.attn_drop if self.training else 0.0,
            scale=self.scale,
        )
        out_BND = out_BHND.transpose(1, 2).reshape(B, N, D)
        return self.proj_drop(self.proj(out_BND))


class Mlp(nn.Module):
    """fc1 -> exact GELU -> fc2 -> dropout (no dropout between GELU and fc2, as the official)."""

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x_BND: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.act(self.fc1(x_BND))))


class Block(nn.Module):
    """Pre-norm transformer block: x + DropPath(Attn(LN(x))), then x + DropPath(MLP(LN(x)))."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x_BND: torch.Tensor) -> torch.Tensor:
        x_BND = x_BND + self.drop_path(self.attn(self.norm1(x_BND)))
        return x_BND + self.drop_path(self.mlp(self.norm2(x_BND)))


def init_vit_weights(module: nn.Module) -> None:
    """VideoMAE's ``_init_weights`` (use with ``Module.apply``): xavier-uniform Linear weights,
    zero biases, LayerNorm (1, 0). Conv layers keep PyTorch's default init, as in the official."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def trunc_normal_sigma_(tensor: torch.Tensor, std: float = 0.02) -> torch.Tensor:
    """Normal(0, std) truncated at +-1 std (the official wrapper passes a=-std, b=std, unlike
    timm's default of +-2 absolute)."""
    return nn.init.trunc_normal_(tensor, mean=0.0, std=std, a=-std, b=std)
