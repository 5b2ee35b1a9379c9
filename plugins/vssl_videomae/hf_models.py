"""vssl <-> transformers VideoMAE beyond the encoder: ``vssl convert --to videomae_hf`` writes a
vssl video ViT as ``VideoMAEModel``, a ``videomae`` pretraining checkpoint (with its decoder) as
``VideoMAEForPreTraining`` and a fine-tuned ``supervised`` checkpoint (a ViT without final norm
and a ``linear_head`` with ``norm: true``) as ``VideoMAEForVideoClassification``, each with its
``config.json``; ``--from videomae_hf`` reads the pretraining decoder back into a ``videomae``
objective. The round trip gives the same tensors.

Attention biases are written as ``q_bias``/``v_bias``, the names of the official code and of
transformers 4, which transformers 5 also reads. transformers' decoder norm and ``fc_norm`` use
PyTorch's LayerNorm eps 1e-5 (not the config's), vssl's 1e-6: outputs agree to float rounding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from vssl_core.convert import (
    ConversionError,
    Exported,
    ExportSource,
    ObjectivePart,
    SourceState,
    rename,
)
from vssl_core.nn import default_decoder_heads
from vssl_videomae.converters import DECODER_LAYERS, HF_DECODER_RULES, fuse_qkv

Tensor = torch.Tensor


# ---------------------------------------------------------------------------------- vssl -> hf


def _block(state: Mapping[str, Tensor], ours: str, theirs: str) -> dict[str, Tensor]:
    """One vssl Block (``ours``: e.g. ``backbone.blocks.3``) as a transformers layer."""
    qkv = state[f"{ours}.attn.qkv.weight"]
    q, k, v = qkv.chunk(3, dim=0)
    attn = f"{theirs}.attention.attention."
    out = {f"{attn}query.weight": q, f"{attn}key.weight": k, f"{attn}value.weight": v}
    out[f"{attn}q_bias"] = state[f"{ours}.attn.q_bias"]
    out[f"{attn}v_bias"] = state[f"{ours}.attn.v_bias"]
    for mine, hf in (
        ("attn.proj", "attention.output.dense"),
        ("mlp.fc1", "intermediate.dense"),
        ("mlp.fc2", "output.dense"),
        ("norm1", "layernorm_before"),
        ("norm2", "layernorm_after"),
    ):
        for p in ("weight", "bias"):
            out[f"{theirs}.{hf}.{p}"] = state[f"{ours}.{mine}.{p}"]
    return out


def _encoder(state: Mapping[str, Tensor], backbone: nn.Module, prefix: str) -> dict[str, Tensor]:
    out = {
        f"{prefix}embeddings.patch_embeddings.projection.{p}": state[
            f"backbone.patch_embed.proj.{p}"
        ]
        for p in ("weight", "bias")
    }
    for i in range(len(backbone.blocks)):
        out |= _block(state, f"backbone.blocks.{i}", f"{prefix}encoder.layer.{i}")
    if _has_final_norm(backbone):
        out |= {f"{prefix}layernorm.{p}": state[f"backbone.norm.{p}"] for p in ("weight", "bias")}
    return out


def _has_final_norm(backbone: nn.Module) -> bool:
    return isinstance(backbone.norm, nn.LayerNorm)


def _config(backbone: nn.Module, architecture: str, **extra: Any) -> dict[str, Any]:
    """transformers' VideoMAEConfig of the backbone's architecture (plain JSON values)."""
    block = backbone.blocks[0]
    frames, size, _ = backbone.input_size
    return {
        "model_type": "videomae",
        "architectures": [architecture],
        "image_size": size,
        "patch_size": backbone.patch_size,
        "num_channels": 3,
        "num_frames": frames,
        "tubelet_size": backbone.tubelet_size,
        "hidden_size": backbone.embed_dim,
        "num_hidden_layers": len(backbone.blocks),
        "num_attention_heads": block.attn.num_heads,
        "intermediate_size": block.mlp.fc1.out_features,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "initializer_range": 0.02,
        "layer_norm_eps": block.norm1.eps,
        "qkv_bias": True,  # transformers 4's name
        "qv_bias": True,  # transformers 5's
        "use_mean_pooling": not _has_final_norm(backbone),
        **extra,
    }


def _decoder(state: Mapping[str, Tensor], spec: Mapping[str, Any]) -> tuple[dict, dict]:
    """The videomae objective's decoder as transformers names it, and its config entries."""
    dim = state["encoder_to_decoder.weight"].shape[0]
    depth = len({k.split(".")[2] for k in state if k.startswith("decoder.blocks.")})
    heads = spec.get("decoder_heads") or default_decoder_heads(dim)
    out = {"encoder_to_decoder.weight": state["encoder_to_decoder.weight"]}
    out["mask_token"] = state["mask_token"]
    for i in range(depth):
        out |= _block(state, f"decoder.blocks.{i}", f"decoder.decoder_layers.{i}")
    for part in ("norm", "head"):
        out |= {f"decoder.{part}.{p}": state[f"decoder.{part}.{p}"] for p in ("weight", "bias")}
    config = {
        "decoder_hidden_size": dim,
        "decoder_num_hidden_layers": depth,
        "decoder_num_attention_heads": heads,
        "decoder_intermediate_size": state["decoder.blocks.0.mlp.fc1.weight"].shape[0],
        "norm_pix_loss": bool(spec.get("normalize_target", True)),
    }
    return out, config


def _classifier(state: Mapping[str, Tensor], backbone: nn.Module) -> tuple[dict, dict]:
    if _has_final_norm(backbone) or "head.norm.weight" not in state:
        raise ConversionError(
            "VideoMAEForVideoClassification averages the tokens, then applies fc_norm and the "
            "classifier: export a supervised checkpoint of a ViT built with final_norm: false "
            "and a linear_head with norm: true (VideoMAE's fine-tuning recipe, "
            "eval/videomae_finetune.yaml)"
        )
    out = {f"fc_norm.{p}": state[f"head.norm.{p}"] for p in ("weight", "bias")}
    out |= {f"classifier.{p}": state[f"head.fc.{p}"] for p in ("weight", "bias")}
    labels = state["head.fc.weight"].shape[0]
    config = {"id2label": {str(i): f"LABEL_{i}" for i in range(labels)}}
    config["label2id"] = {f"LABEL_{i}": i for i in range(labels)}
    return out, config


def export_hf(source: ExportSource) -> Exported:
    """The checkpoint as the transformers VideoMAE model that holds all of it."""
    backbone = source.backbone
    state = source.state
    if not any(k.startswith("backbone.") for k in state):
        state = {f"backbone.{k}": v for k, v in state.items()}  # a bare backbone
    state = SourceState(state)  # records what is read: a tensor left over is an error
    objective = source.objective_spec.get("name")
    own = sorted({k.split(".")[0] for k in state if not k.startswith("backbone.")})
    notes = []
    if objective == "videomae":
        out, extra = _decoder(state, source.objective_spec)
        out |= _encoder(state, backbone, "videomae.")
        architecture = "VideoMAEForPreTraining"
    elif objective == "supervised":
        out, extra = _classifier(state, backbone)
        out |= _encoder(state, backbone, "videomae.")
        architecture = "VideoMAEForVideoClassification"
    else:
        out, extra, architecture = _encoder(state, backbone, ""), {}, "VideoMAEModel"
        if own:
            notes.append(
                f"the {objective} objective's own modules ({', '.join(own)}) have no place in a "
                "transformers VideoMAE model; only the encoder is written"
            )
    left = [
        k for k in state.unused() if architecture != "VideoMAEModel" or k.startswith("backbone.")
    ]
    if left:
        raise ConversionError(
            f"{architecture} has no place for {len(left)} tensors of the checkpoint: "
            f"{', '.join(left[:8])}; is the recipe's backbone the one the weights were trained with?"
        )
    config = _config(backbone, architecture, **extra)
    return Exported(
        {k: v.contiguous().clone() for k, v in out.items()}, config, architecture, notes
    )


# ---------------------------------------------------------------------------------- hf -> vssl


def objective_part(state: Mapping[str, Tensor], config: dict) -> ObjectivePart | None:
    """A VideoMAEForPreTraining file's decoder as the ``videomae`` objective's tensors (None for
    other transformers models); the backbone spec too when ``config`` (its config.json) is
    given."""
    if "encoder_to_decoder.weight" not in state:
        return None
    src = SourceState({k: v for k, v in state.items() if not k.startswith("videomae.")})
    tensors = {
        **rename(src, HF_DECODER_RULES),
        **fuse_qkv(src, "", DECODER_LAYERS, "decoder.blocks"),
    }
    dim = tensors["encoder_to_decoder.weight"].shape[0]
    depth = len({k.split(".")[2] for k in tensors if k.startswith("decoder.blocks.")})
    notes = []
    heads = config.get("decoder_num_attention_heads")
    if heads is None:
        heads = default_decoder_heads(dim)
        notes.append(f"no config.json: decoder heads assumed {heads} (64-wide heads, as official)")
    spec = {
        "name": "videomae",
        "decoder_depth": depth,
        "decoder_dim": dim,
        "decoder_heads": heads,
        "normalize_target": bool(config.get("norm_pix_loss", True)),
    }
    return ObjectivePart(spec, tensors, sorted(src.used), _backbone_spec(config), notes)


_WIDTHS = {
    192: ("vit_tiny", 3),
    384: ("vit_small", 6),
    768: ("vit_base", 12),
    1024: ("vit_large", 16),
}


def _backbone_spec(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The vssl ViT of a transformers VideoMAE config (None: no config, or no vssl ViT has its
    width and heads)."""
    if not config:
        return None
    name, heads = _WIDTHS.get(config.get("hidden_size"), (None, None))
    if name is None or config.get("num_attention_heads") != heads:
        return None
    return {
        "name": name,
        "img_size": config["image_size"],
        "num_frames": config["num_frames"],
        "patch_size": config["patch_size"],
        "tubelet_size": config["tubelet_size"],
        "depth": config["num_hidden_layers"],
        "final_norm": not config.get("use_mean_pooling", True),
    }
