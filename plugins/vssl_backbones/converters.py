"""Checkpoint formats of the video ResNet-18 trunks: ``torchvision`` and ``pyvrl`` (CtP,
Tubelet-Contrast, and the SEVERE files made with that code; spec contrastive-and-severe §1.1-1.2,
§6.8).

Our ``r2plus1d_18`` / ``r3d_18`` already use torchvision's module names, so the torchvision
format only drops ``fc`` (the Kinetics classifier). pyvrl names every conv and BN differently and
uses BatchNorm eps 1e-3 where torchvision and vssl use 1e-5. The eps is not stored in a state
dict; loading pyvrl weights as is (what SEVERE does) silently changes every BN. We fold the
difference into the running variance instead: BN divides by sqrt(running_var + eps), so
``running_var + (1e-3 - 1e-5)`` under eps 1e-5 gives exactly the pyvrl network in eval mode, with
no backbone option to keep in sync. In train mode BN uses batch statistics with eps 1e-5, a
negligible change at fine-tuning time.
"""

import re

import torch

from vssl_core.convert import CheckpointFormat, ConversionError, SourceState, rename

RESNETS = ("r2plus1d_18", "r3d_18")
TORCH_BN_EPS = 1e-5
PYVRL_BN_EPS = 1e-3


def resnet_arch(keys) -> str:
    """``r2plus1d_18`` when the stem is factorized (torchvision ``stem.3`` exists), else
    ``r3d_18``."""
    return "r2plus1d_18" if "stem.3.weight" in keys else "r3d_18"


def _check_arch(found: str, backbone_name: str | None, fmt: str) -> None:
    if backbone_name is not None and backbone_name != found:
        raise ConversionError(
            f"this {fmt} checkpoint holds an {found} (its stem says so), not an {backbone_name}; "
            f"evaluate it with backbone {found}"
        )


# ---------------------------------------------------------------------------------------------
# torchvision


def _convert_torchvision(src: SourceState, backbone_name: str | None) -> dict[str, torch.Tensor]:
    _check_arch(resnet_arch(src), backbone_name, "torchvision")
    return {k: src[k] for k in src if re.match(r"(stem|layer[1-4])\.", k)}


def _detect_torchvision(keys: frozenset[str]) -> bool:
    return "stem.0.weight" in keys and "layer4.1.conv2.1.weight" in keys


TORCHVISION = CheckpointFormat(
    name="torchvision",
    summary="torchvision.models.video r2plus1d_18 / r3d_18 state dict (SEVERE's `supervised`)",
    convert=_convert_torchvision,
    backbones=RESNETS,
    drops=((r"fc\.(weight|bias)", "the classifier `fc` (vssl evaluation trains its own head)"),),
    detect=_detect_torchvision,
)


# ---------------------------------------------------------------------------------------------
# pyvrl

# pyvrl name -> torchvision name, after the ``backbone.`` prefix is stripped (spec §1.2 table)
_CONV = {  # inside conv1 / conv2 of a block
    "conv_s": "0.0",  # (2+1)D: spatial conv
    "bn_s": "0.1",
    "conv_t": "0.3",  # (2+1)D: temporal conv
    "conv": "0",  # R3D: the full 3x3x3 conv
}
_PARAM = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
PYVRL_RULES = [
    (rf"stem\.conv_s\.{_PARAM}", r"stem.0.\1"),
    (rf"stem\.bn_s\.{_PARAM}", r"stem.1.\1"),
    (rf"stem\.conv_t\.{_PARAM}", r"stem.3.\1"),
    (rf"stem\.bn_t\.{_PARAM}", r"stem.4.\1"),
    (rf"stem\.conv\.{_PARAM}", r"stem.0.\1"),  # R3D stem
    (rf"stem\.bn\.{_PARAM}", r"stem.1.\1"),
    *[
        (rf"(layer[1-4]\.\d+)\.(conv[12])\.{name}\.{_PARAM}", rf"\1.\2.{index}.\3")
        for name, index in _CONV.items()
    ],
    (rf"(layer[1-4]\.\d+)\.bn1\.{_PARAM}", r"\1.conv1.1.\2"),
    (rf"(layer[1-4]\.\d+)\.bn2\.{_PARAM}", r"\1.conv2.1.\2"),
    (rf"(layer[1-4]\.\d+)\.downsample\.conv\.{_PARAM}", r"\1.downsample.0.\2"),
    (rf"(layer[1-4]\.\d+)\.downsample_bn\.{_PARAM}", r"\1.downsample.1.\2"),
]


def _convert_pyvrl(src: SourceState, backbone_name: str | None) -> dict[str, torch.Tensor]:
    prefix = "backbone." if any(k.startswith("backbone.") for k in src) else ""
    out = rename(src, PYVRL_RULES, prefix)
    _check_arch(resnet_arch(out), backbone_name, "pyvrl")
    shift = PYVRL_BN_EPS - TORCH_BN_EPS
    for key in [k for k in out if k.endswith(".running_var")]:
        out[key] = out[key] + shift
    src.note(
        f"BatchNorm eps: pyvrl uses {PYVRL_BN_EPS:g}, vssl {TORCH_BN_EPS:g}; every running_var "
        f"was raised by {shift:g} so the eval-mode outputs are the pyvrl network's"
    )
    return out


def _detect_pyvrl(keys: frozenset[str]) -> bool:
    return any(re.fullmatch(r"(backbone\.)?stem\.(conv_s|conv)\.weight", k) for k in keys)


PYVRL = CheckpointFormat(
    name="pyvrl",
    summary="pyvrl R(2+1)D-18 / R3D-18 (CtP, Tubelet-Contrast; SEVERE's `ctp`, "
    "`tubelet_contrast`, `tubelet_contrast_r3d`): `backbone.stem.conv_s` ... names, BN eps 1e-3",
    convert=_convert_pyvrl,
    backbones=RESNETS,
    drops=(
        (r"key_encoder\..*", "the momentum key encoder (MoCo); the query `backbone` is kept"),
        (r"fc\..*", "the contrastive projection head"),
        (r"key_fc\..*", "the key projection head"),
        (r"queue(_ptr)?", "the queue of negative keys"),
    ),
    detect=_detect_pyvrl,
)

FORMATS = [TORCHVISION, PYVRL]
