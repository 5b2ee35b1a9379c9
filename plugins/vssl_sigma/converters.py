"""The checkpoint format of the official SIGMA code (QUVA-Lab/SIGMA), spec videomae-sigma §2.10.

SIGMA is a fork of the VideoMAE code, so a pretraining file has VideoMAE's ``model`` layout
(``encoder.*``, ``decoder.*``, ``encoder_to_decoder``, ``mask_token``) plus the ``prototypes`` and,
for SIGMA-MLP, the projection network ``head.{0,2,4,6}.*``. The encoder keeps the official names
that the vssl video ViT uses, so the backbone is ``encoder.*`` without the prefix. No teacher is
stored. SIGMA's fine-tuned checkpoints are VideoMAE fine-tuned checkpoints: use ``videomae``.
"""

import re

import torch

from vssl_core.convert import CheckpointFormat, SourceState

VITS = ("vit_tiny", "vit_small", "vit_base", "vit_large")

# the official encoder's key names (without ``encoder.``)
_ENCODER_KEY = re.compile(
    r"patch_embed\.proj\.(weight|bias)"
    r"|blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)"
    r"|blocks\.\d+\.attn\.[qv]_bias"
    r"|norm\.(weight|bias)"
)


def _convert_sigma(src: SourceState, backbone_name: str | None) -> dict[str, torch.Tensor]:
    del backbone_name
    return {
        k[len("encoder.") :]: src[k]
        for k in src
        if k.startswith("encoder.") and _ENCODER_KEY.fullmatch(k[len("encoder.") :])
    }


def _detect_sigma(keys: frozenset[str]) -> bool:
    return "encoder.patch_embed.proj.weight" in keys and "prototypes" in keys


SIGMA = CheckpointFormat(
    name="sigma",
    summary="official SIGMA (QUVA-Lab/SIGMA) pretraining checkpoint: VideoMAE's layout plus "
    "`prototypes` and the SIGMA-MLP projection `head.{0,2,4,6}`",
    convert=_convert_sigma,
    backbones=VITS,
    drops=(
        (r"decoder\..*", "the pretraining decoder (it predicts prototype scores)"),
        (r"encoder_to_decoder\.weight", "the encoder-to-decoder projection"),
        (r"mask_token", "the decoder's mask token"),
        (r"prototypes", "the Sinkhorn prototypes"),
        (r"head\.\d+\.(weight|bias)", "the SIGMA-MLP projection network (phi)"),
    ),
    detect=_detect_sigma,
)

FORMATS = [SIGMA]
