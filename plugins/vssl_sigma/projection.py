"""SIGMA's projection networks phi, which turn each masked tubelet into a target feature.

Two variants, as in the official code (QUVA-Lab/SIGMA ``modeling_pretrain.py``,
``engine_for_pretraining.py``; spec videomae-sigma.md §2.2):

- SIGMA-MLP: a per-token MLP over the (no-grad) VideoMAE normalized-pixel target,
  1536 -> 1024 -> 1024 -> 512 -> 256 with GELUs, trained jointly (through L1 only). Its layers sit
  at ``head.{0,2,4,6}`` of the objective, the official checkpoint keys.
- SIGMA-DINO: a frozen image ViT (DINO v1) run on the first frame of every tubelet; its patch
  tokens, normalized per video and per channel ACROSS tokens, are the targets.

The image teacher is built from the core transformer blocks with DINO/timm key names
(``cls_token``, ``pos_embed``, ``patch_embed.proj``, ``blocks.i.*``, ``norm``), so a DINO
ViT-S/16 or ViT-B/16 backbone checkpoint loads; its fused ``attn.qkv.bias`` is split into the
core block's ``q_bias``/``v_bias`` (the key bias is dropped: softmax cancels it exactly).

Shape legend: B batch, C channels, T frames, T' = T / tubelet, H height, W width, G images
(B * T'), S patches per image, N = T' * S tokens, D teacher width, X any width.
"""

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vssl_core.engine.checkpoint import unsafe_global
from vssl_core.nn import LN_EPS, Block, init_vit_weights

DEFAULT_MLP_HIDDEN = (1024, 1024, 512)
DEFAULT_MLP_DIM = 256
TARGET_EPS = 1e-6  # added to the std, as the pixel target
TEACHERS = {"dino_s": (384, 12, 6), "dino_b": (768, 12, 12)}  # name: (width, depth, heads)


def mlp_projection(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    """Linear/GELU pairs then a final Linear; PyTorch's default init, as the official phi (it
    lives on the top-level model, which never applies ``_init_weights`` to its children)."""
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, h), nn.GELU()]
        width = h
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def normalize_over_tokens(features_BNX: torch.Tensor) -> torch.Tensor:
    """Per video and per channel, across the token axis: (f - mean) / (unbiased std + 1e-6).

    The official DINO-target normalization (dim -2 of [B, N, X]); deliberately not a per-token
    LayerNorm, which would be a different method (spec §2.11 pitfall 4).
    """
    f = features_BNX.float()
    mean_B1X = f.mean(dim=1, keepdim=True)
    std_B1X = f.var(dim=1, unbiased=True, keepdim=True).sqrt()
    return (f - mean_B1X) / (std_B1X + TARGET_EPS)


class ImageViT(nn.Module):
    """A 2-D ViT with a CLS token and a learned position table: the DINO v1 image backbone."""

    def __init__(
        self, embed_dim: int, depth: int, num_heads: int, img_size: int, patch_size: int
    ) -> None:
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"image teacher: img_size {img_size} % patch_size {patch_size} != 0")
        self.patch_size, self.grid = patch_size, img_size // patch_size
        self.embed_dim = embed_dim
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, embed_dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid**2, embed_dim))
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, qkv_bias=True) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=LN_EPS)  # DINO's ViTs use eps 1e-6 too
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.apply(init_vit_weights)

    def patch_tokens(self, images_GCHW: torch.Tensor) -> torch.Tensor:
        """Post-norm patch tokens [G, S, D] (``forward_features`` without the CLS token)."""
        G = images_GCHW.shape[0]
        x = self.patch_embed.proj(images_GCHW).flatten(2).transpose(1, 2)
        assert x.shape[1] == self.grid**2, (
            f"image teacher built for {self.grid}x{self.grid} patches, got {x.shape[1]} patches"
        )
        x = torch.cat((self.cls_token.expand(G, -1, -1), x), dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 1:]


def image_teacher(name: str, img_size: int, patch_size: int) -> ImageViT:
    """The frozen image teacher ``dino_s`` (ViT-S) or ``dino_b`` (ViT-B); eval mode, no grads."""
    width, depth, heads = TEACHERS[name]
    teacher = ImageViT(width, depth, heads, img_size, patch_size)
    return teacher.requires_grad_(False).eval()


def teacher_targets(
    teacher: ImageViT, clip_BCTHW: torch.Tensor, tubelet_size: int, normalize: bool
) -> torch.Tensor:
    """Target features [B, N, D] aligned with the tubelet tokens (t, h, w): the teacher sees the
    first frame of every tubelet (every other frame for tubelet 2), one frame at a time."""
    B, C, T, H, W = clip_BCTHW.shape
    frames_BCtHW = clip_BCTHW[:, :, ::tubelet_size]
    t = frames_BCtHW.shape[2]
    images_GCHW = frames_BCtHW.transpose(1, 2).reshape(B * t, C, H, W)
    tokens_GSD = teacher.patch_tokens(images_GCHW)
    features_BND = tokens_GSD.reshape(B, t * tokens_GSD.shape[1], tokens_GSD.shape[2])
    return normalize_over_tokens(features_BND) if normalize else features_BND.float()


# ---------------------------------------------------------------------------------- weights


def _unwrap(state: dict) -> dict[str, torch.Tensor]:
    """The backbone tensors of a DINO file: the hub backbone dict itself, or the ``teacher``
    (DINO training checkpoint), ``state_dict`` or ``model`` entry, with ``module.`` and
    ``backbone.`` prefixes stripped."""
    for key in ("teacher", "state_dict", "model"):
        if key in state and isinstance(state[key], dict):
            state = state[key]
            break
    out = {}
    for k, v in state.items():
        for prefix in ("module.", "backbone."):
            k = k.removeprefix(prefix)
        out[k] = v
    return out


def _split_qkv_bias(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``blocks.i.attn.qkv.bias`` [3D] -> ``q_bias``, ``v_bias`` [D]; the k third is dropped."""
    out = {}
    for k, v in state.items():
        if k.endswith("attn.qkv.bias"):
            q, _, vb = v.chunk(3)
            out[k.replace("qkv.bias", "q_bias")] = q
            out[k.replace("qkv.bias", "v_bias")] = vb
        else:
            out[k] = v
    return out


def _resize_pos_embed(pos_1LD: torch.Tensor, grid: int) -> torch.Tensor:
    """Bicubic resize of the patch part of a [1, 1 + g*g, D] table to ``grid`` x ``grid`` (as
    DINO's ``interpolate_pos_encoding``); the CLS entry is kept."""
    old = math.isqrt(pos_1LD.shape[1] - 1)
    if old == grid:
        return pos_1LD
    D = pos_1LD.shape[2]
    patch = pos_1LD[:, 1:].float().reshape(1, old, old, D).permute(0, 3, 1, 2)
    patch = F.interpolate(patch, size=(grid, grid), mode="bicubic", align_corners=False)
    patch = patch.permute(0, 2, 3, 1).reshape(1, grid * grid, D).to(pos_1LD.dtype)
    return torch.cat((pos_1LD[:, :1], patch), dim=1)


def load_teacher_weights(teacher: ImageViT, path: str | Path) -> None:
    """Load a DINO v1 (or timm ``vit_*_patch16_224.dino``) backbone file into ``teacher``.

    Only projection-head keys (``head.*``) may be left over and no teacher key may be missing:
    a silent ``strict=False`` that drops the backbone would train against random features
    (spec §2.11 pitfall 9).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"sigma teacher_weights {str(path)!r} is not a file; download the DINO backbone "
            "(e.g. dino_vitbase16_pretrain.pth from the DINO repository) and give its path"
        )
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # not a zip/pickle, or it pickles code (weights_only refuses it)
        unsafe = unsafe_global(exc)
        why = (
            f"it stores a Python object ({unsafe}) besides tensors, and loading it could run code"
            if unsafe
            else f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        )
        raise ValueError(
            f"sigma teacher_weights {str(path)!r} cannot be read safely: {why}. Give the DINO "
            "backbone file itself (a dict of tensors), or re-save only its weights"
        ) from exc
    state = _split_qkv_bias(_unwrap(loaded))
    proj = state.get("patch_embed.proj.weight")
    own = teacher.patch_embed.proj.weight
    if proj is not None and tuple(proj.shape) != tuple(own.shape):
        raise ValueError(
            f"teacher checkpoint {path.name} has patch embedding {list(proj.shape)}, the teacher "
            f"needs {list(own.shape)}: the checkpoint's width and patch size must match the "
            "teacher (dino_s 384 / dino_b 768) and the video backbone's patch_size"
        )
    if "pos_embed" in state:
        state["pos_embed"] = _resize_pos_embed(state["pos_embed"], teacher.grid)
    result = teacher.load_state_dict(state, strict=False)
    stray = [k for k in result.unexpected_keys if not k.startswith("head.")]
    if result.missing_keys or stray:
        raise ValueError(
            f"teacher checkpoint {path.name} does not match the DINO ViT: missing "
            f"{result.missing_keys[:8]}, unexpected {stray[:8]} (only head.* may be left over)"
        )
