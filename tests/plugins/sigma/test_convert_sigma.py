"""The ``sigma`` checkpoint format (spec videomae-sigma §2.10): VideoMAE's pretraining layout
plus ``prototypes`` and the SIGMA-MLP projection ``head.{0,2,4,6}``, written here from the spec's
key names; and our own SIGMA objective saves exactly that layout (``backbone.`` for ``encoder.``).

Shape legend: D encoder width, Dd decoder width, d feature width, K prototypes.
"""

import pytest
import torch
from torch import nn
from vssl_backbones.vit import VisionTransformer3D

from vssl_core.build import build_objective
from vssl_core.convert import ConversionError, convert, load_backbone_checkpoint

D, DEPTH, HEADS, SIZE, FRAMES, PATCH, TUBELET = 64, 2, 2, 32, 4, 16, 2
PIXELS = 3 * TUBELET * PATCH * PATCH


def official_blocks(d: int, depth: int, prefix: str) -> dict:
    """Key -> shape of official ViT blocks (spec §1.12), for width d."""
    shapes = {}
    for i in range(depth):
        b = f"{prefix}blocks.{i}."
        shapes |= {b + "norm1.weight": (d,), b + "norm1.bias": (d,)}
        shapes |= {
            b + "attn.q_bias": (d,),
            b + "attn.v_bias": (d,),
            b + "attn.qkv.weight": (3 * d, d),
        }
        shapes |= {b + "attn.proj.weight": (d, d), b + "attn.proj.bias": (d,)}
        shapes |= {b + "norm2.weight": (d,), b + "norm2.bias": (d,)}
        shapes |= {b + "mlp.fc1.weight": (4 * d, d), b + "mlp.fc1.bias": (4 * d,)}
        shapes |= {b + "mlp.fc2.weight": (d, 4 * d), b + "mlp.fc2.bias": (d,)}
    return shapes


def official_sigma(d_enc: int, depth: int, dd: int, hidden: list[int], d: int, k: int) -> dict:
    """Key -> shape of an official SIGMA-MLP pretraining ``model`` dict (spec §2.10)."""
    shapes = {"encoder.patch_embed.proj.weight": (d_enc, 3, TUBELET, PATCH, PATCH)}
    shapes |= {"encoder.patch_embed.proj.bias": (d_enc,)}
    shapes |= official_blocks(d_enc, depth, "encoder.")
    shapes |= {"encoder.norm.weight": (d_enc,), "encoder.norm.bias": (d_enc,)}
    shapes |= {"encoder_to_decoder.weight": (dd, d_enc), "mask_token": (1, 1, dd)}
    shapes |= official_blocks(dd, 1, "decoder.")
    shapes |= {"decoder.norm.weight": (dd,), "decoder.norm.bias": (dd,)}
    shapes |= {"decoder.head.weight": (d, dd), "decoder.head.bias": (d,)}  # d, not pixels
    widths = [PIXELS, *hidden, d]
    for j, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        shapes |= {f"head.{2 * j}.weight": (w_out, w_in), f"head.{2 * j}.bias": (w_out,)}
    return shapes | {"prototypes": (k, d)}


def numbered(shapes: dict) -> dict[str, torch.Tensor]:
    return {key: torch.full(s, float(i)) for i, (key, s) in enumerate(shapes.items())}


def test_official_sigma_checkpoint_gives_the_encoder_and_drops_the_rest(host):
    src = numbered(official_sigma(D, DEPTH, 32, [48, 48, 24], 16, 30))
    assert {"head.0.weight", "head.6.bias"} <= set(src)  # the spec's 4-layer phi
    ours = VisionTransformer3D(D, DEPTH, HEADS, SIZE, FRAMES, PATCH, TUBELET)
    report = load_backbone_checkpoint(ours, {"model": src, "epoch": 799}, host=host)
    assert report.format == "sigma"
    dropped = {k.split(".")[0] for k in report.dropped}
    assert dropped == {"decoder", "encoder_to_decoder", "mask_token", "head", "prototypes"}
    assert report.dropped["prototypes"] == "the Sinkhorn prototypes"
    for k, v in ours.state_dict().items():
        assert torch.equal(v, src["encoder." + k]), k


def test_detection_tells_sigma_from_videomae_by_the_prototypes(host):
    src = numbered(official_sigma(D, 1, 32, [8], 8, 4))
    assert convert("auto", src, host=host).format == "sigma"
    without = {k: v for k, v in src.items() if not k.startswith(("prototypes", "head."))}
    assert convert("auto", without, host=host).format == "videomae"


def test_an_unknown_key_such_as_a_teacher_is_an_error(host):
    src = numbered(official_sigma(D, 1, 32, [8], 8, 4))
    src["teacher.blocks.0.norm1.weight"] = torch.ones(D)  # SIGMA stores no teacher
    with pytest.raises(ConversionError, match=r"no place for 1 of its keys:\n    teacher"):
        convert("sigma", src, host=host)


def test_our_sigma_objective_saves_the_official_layout(host):
    recipe = {
        "backbone": {
            "name": "vit_tiny",
            "img_size": 32,
            "num_frames": 4,
            "patch_size": 16,
            "depth": 2,
        },
        "objective": {
            "name": "sigma",
            "decoder_depth": 1,
            "projection_hidden": [48, 48, 24],
            "projection_dim": 16,
            "num_prototypes": 30,
        },
    }
    model = build_objective(host.registry, recipe)
    assert isinstance(model.head, nn.Sequential)
    ours = {
        k.replace("backbone.", "encoder.", 1): tuple(v.shape) for k, v in model.state_dict().items()
    }
    dd = model.encoder_to_decoder.out_features
    assert ours == official_sigma(192, 2, dd, [48, 48, 24], 16, 30)
