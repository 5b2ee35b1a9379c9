"""Checkpoint formats of VideoMAE encoders: the official code's (``videomae``) and Hugging Face
transformers' (``videomae_hf``), per spec videomae-sigma §1.12.

The vssl video ViT uses the official fine-tuning model's names (``patch_embed.proj``,
``blocks.i.{norm1,attn.{qkv,q_bias,v_bias,proj},norm2,mlp.{fc1,fc2}}``, ``norm``), so the
official format only strips ``encoder.`` (pretraining files) and drops what is not the encoder.
transformers splits the fused ``qkv`` into ``query``/``key``/``value`` and renames every module;
its q/v biases are ``q_bias``/``v_bias`` in files written before transformers 5 and
``query.bias``/``value.bias`` after, and both are read.

A fine-tuned encoder (official ``fc_norm`` + ``head``, or transformers with
``use_mean_pooling``) ends without the final ``norm``: that model averages the tokens and then
normalizes. Such a checkpoint fills a ViT built without a final norm; into one with ``norm`` it
fails with the two ``norm`` keys named as missing, rather than loading a different network.
"""

import re

import torch

from vssl_core.convert import CheckpointFormat, ConversionError, SourceState, rename

VITS = ("vit_tiny", "vit_small", "vit_base", "vit_large")
NO_FINAL_NORM = (
    "this is a fine-tuned encoder: it has no final `norm` (the fine-tuned model averages the "
    "tokens, then applies `fc_norm`, dropped with the classifier); load it into a ViT without a "
    "final norm"
)

# the official encoder's key names (without ``encoder.``); anything else is not the encoder
_ENCODER_KEY = re.compile(
    r"patch_embed\.proj\.(weight|bias)"
    r"|blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)"
    r"|blocks\.\d+\.attn\.[qv]_bias"
    r"|norm\.(weight|bias)"
)


# ---------------------------------------------------------------------------------------------
# official (MCG-NJU/VideoMAE)


def _convert_official(src: SourceState, backbone_name: str | None) -> dict[str, torch.Tensor]:
    del backbone_name
    pretraining = any(k.startswith("encoder.") for k in src)
    prefix = "encoder." if pretraining else ""
    out = {
        k[len(prefix) :]: src[k]
        for k in src
        if k.startswith(prefix) and _ENCODER_KEY.fullmatch(k[len(prefix) :])
    }
    if out and "norm.weight" not in out:
        src.note(NO_FINAL_NORM)
    return out


def _detect_official(keys: frozenset[str]) -> bool:
    pretraining = "encoder.patch_embed.proj.weight" in keys and "prototypes" not in keys
    finetuned = "patch_embed.proj.weight" in keys and (
        "fc_norm.weight" in keys or "head.weight" in keys
    )
    return pretraining or finetuned


VIDEOMAE = CheckpointFormat(
    name="videomae",
    summary="official VideoMAE (MCG-NJU/VideoMAE) pretraining `checkpoint-*.pth` (`encoder.*`) "
    "or fine-tuned checkpoint (`blocks.*`, `fc_norm`, `head`)",
    convert=_convert_official,
    backbones=VITS,
    drops=(
        (r"decoder\..*", "the pretraining decoder"),
        (r"encoder_to_decoder\.weight", "the encoder-to-decoder projection"),
        (r"mask_token", "the decoder's mask token"),
        (r"fc_norm\.(weight|bias)|head\.(weight|bias)", "the fine-tuned classifier"),
    ),
    detect=_detect_official,
)


# ---------------------------------------------------------------------------------------------
# Hugging Face transformers


def layer_rules(layer: str, block: str) -> list[tuple[str, str]]:
    """Rename rules of transformers' layers ``{layer}.i.*`` (a regex) to vssl's Block names
    ``{block}.i.*``; the fused ``qkv`` weight is made by :func:`fuse_qkv`."""
    at = layer + r"\.(\d+)\."
    return [
        (at + r"layernorm_before\.(weight|bias)", block + r".\1.norm1.\2"),
        (at + r"layernorm_after\.(weight|bias)", block + r".\1.norm2.\2"),
        (at + r"attention\.attention\.(q_bias|query\.bias)", block + r".\1.attn.q_bias"),
        (at + r"attention\.attention\.(v_bias|value\.bias)", block + r".\1.attn.v_bias"),
        (at + r"attention\.output\.dense\.(weight|bias)", block + r".\1.attn.proj.\2"),
        (at + r"intermediate\.dense\.(weight|bias)", block + r".\1.mlp.fc1.\2"),
        (at + r"output\.dense\.(weight|bias)", block + r".\1.mlp.fc2.\2"),
    ]


ENCODER_LAYERS, DECODER_LAYERS = r"encoder\.layer", r"decoder\.decoder_layers"
HF_RULES = [
    (r"embeddings\.patch_embeddings\.projection\.(weight|bias)", r"patch_embed.proj.\1"),
    *layer_rules(ENCODER_LAYERS, "blocks"),
    (r"layernorm\.(weight|bias)", r"norm.\1"),
]
HF_DECODER_RULES = [  # VideoMAEForPreTraining's own modules -> the videomae objective's names
    *layer_rules(DECODER_LAYERS, "decoder.blocks"),
    (r"decoder\.(norm|head)\.(weight|bias)", r"decoder.\1.\2"),
    (r"encoder_to_decoder\.weight", "encoder_to_decoder.weight"),
    (r"mask_token", "mask_token"),
]


def fuse_qkv(
    src: SourceState, prefix: str, layer: str = ENCODER_LAYERS, block: str = "blocks"
) -> dict[str, torch.Tensor]:
    """``{block}.i.attn.qkv.weight`` [3D, D] from the separate query, key and value weights
    [D, D] of each layer: rows [0, D) are q, [D, 2D) k, [2D, 3D) v (the official fused order)."""
    pattern = re.compile(layer + r"\.(\d+)\.attention\.attention\.(query|key|value)\.weight")
    parts: dict[str, dict[str, str]] = {}
    for key in src:
        match = pattern.fullmatch(key[len(prefix) :]) if key.startswith(prefix) else None
        if match:
            parts.setdefault(match.group(1), {})[match.group(2)] = key
    out = {}
    for layer_id, found in sorted(parts.items(), key=lambda item: int(item[0])):
        absent = {"query", "key", "value"} - set(found)
        if absent:
            raise ConversionError(
                f"layer {layer_id} of the transformers checkpoint lacks its attention "
                f"{', '.join(sorted(absent))} weight; the file is incomplete"
            )
        q, k, v = (src[found[name]] for name in ("query", "key", "value"))
        out[f"{block}.{layer_id}.attn.qkv.weight"] = torch.cat((q, k, v), dim=0)
    return out


def _convert_hf(src: SourceState, backbone_name: str | None) -> dict[str, torch.Tensor]:
    del backbone_name
    prefix = "videomae." if any(k.startswith("videomae.") for k in src) else ""
    out = {**rename(src, HF_RULES, prefix), **fuse_qkv(src, prefix)}
    if out and "norm.weight" not in out:
        src.note(NO_FINAL_NORM)  # use_mean_pooling=True: no `videomae.layernorm`
    src.note(
        "transformers' LayerNorm eps is its config's layer_norm_eps (default 1e-12); vssl uses "
        "the official 1e-6, which changes features by float rounding only"
    )
    return out


def _detect_hf(keys: frozenset[str]) -> bool:
    return any(k.endswith("embeddings.patch_embeddings.projection.weight") for k in keys)


VIDEOMAE_HF = CheckpointFormat(
    name="videomae_hf",
    summary="Hugging Face transformers VideoMAEModel / VideoMAEForPreTraining / "
    "VideoMAEForVideoClassification (a folder with config.json, or its `pytorch_model.bin` / "
    "`model.safetensors`); read with the pretraining decoder, written with --to",
    convert=_convert_hf,
    backbones=VITS,
    drops=(
        (r"decoder\..*", "the pretraining decoder"),
        (r"encoder_to_decoder\.weight", "the encoder-to-decoder projection"),
        (r"mask_token", "the decoder's mask token"),
        (r"fc_norm\.(weight|bias)|classifier\.(weight|bias)", "the fine-tuned classifier"),
    ),
    detect=_detect_hf,
    objective=lambda state, config: _hf_models().objective_part(state, config),
    export=lambda source: _hf_models().export_hf(source),
)


def _hf_models():
    from vssl_videomae import hf_models  # imports this module: load it when used

    return hf_models


FORMATS = [VIDEOMAE, VIDEOMAE_HF]
