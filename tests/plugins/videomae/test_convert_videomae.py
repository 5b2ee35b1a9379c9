"""VideoMAE checkpoint formats (spec videomae-sigma §1.12): the official code's (``videomae``) and
transformers' (``videomae_hf``). transformers models with random weights are the reference for
the second: the converted vssl ViT must compute the same tokens and (with the source's
classifier on top) the same logits.

Shape legend: B batch, C channels, T frames, H height, W width, N tokens, D width, K classes.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from vssl_backbones.vit import VisionTransformer3D

from vssl_core.build import build_objective
from vssl_core.convert import ConversionError, convert, load_backbone_checkpoint

transformers = pytest.importorskip("transformers")

D, DEPTH, HEADS, SIZE, FRAMES, PATCH, TUBELET = 64, 2, 2, 32, 4, 16, 2
DECODER_D = 32


def vit(final_norm: bool = True) -> VisionTransformer3D:
    model = VisionTransformer3D(D, DEPTH, HEADS, SIZE, FRAMES, PATCH, TUBELET).eval()
    if not final_norm:  # the encoder of a fine-tuned model ends without a LayerNorm
        model.norm = nn.Identity()
    return model


def hf_config(**kw):
    return transformers.VideoMAEConfig(
        image_size=SIZE,
        patch_size=PATCH,
        num_frames=FRAMES,
        tubelet_size=TUBELET,
        hidden_size=D,
        num_hidden_layers=DEPTH,
        num_attention_heads=HEADS,
        intermediate_size=4 * D,
        decoder_hidden_size=DECODER_D,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=4 * DECODER_D,
        layer_norm_eps=1e-6,  # the official value, which vssl uses
        **kw,
    )


def randomized(model: nn.Module) -> nn.Module:
    """Random weights everywhere, biases included (transformers zero-inits them)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05).add_(1.0 if p.ndim == 1 and p.shape[0] == D else 0.0)
    return model.eval()


@pytest.fixture(scope="module")
def hf_pretraining():
    return randomized(transformers.VideoMAEForPreTraining(hf_config(use_mean_pooling=False)))


@pytest.fixture(scope="module")
def clip_BTCHW():
    torch.manual_seed(1)
    return torch.randn(2, FRAMES, 3, SIZE, SIZE)  # transformers' layout; ours is [B, C, T, H, W]


def test_hf_pretraining_model_gives_the_same_tokens(hf_pretraining, clip_BTCHW, host):
    ours = vit()
    report = load_backbone_checkpoint(ours, hf_pretraining.state_dict(), host=host)
    assert report.format == "videomae_hf"
    assert report.summary().startswith(f"loaded {len(ours.state_dict())} tensors from ")
    assert {k.split(".")[0] for k in report.dropped} == {
        "decoder",
        "encoder_to_decoder",
        "mask_token",
    }
    with torch.no_grad():
        expected_BND = hf_pretraining.videomae(clip_BTCHW).last_hidden_state
        got_BND = ours.forward_features(clip_BTCHW.transpose(1, 2))
    torch.testing.assert_close(got_BND, expected_BND, rtol=1e-5, atol=1e-5)


def test_hf_and_vssl_keep_the_same_visible_tokens_under_a_mask(hf_pretraining, clip_BTCHW, host):
    ours = vit()
    load_backbone_checkpoint(ours, hf_pretraining.state_dict(), host=host)
    mask_BN = torch.zeros(2, ours.num_tokens, dtype=torch.bool)
    mask_BN[0, ::2] = True
    mask_BN[1, 1::2] = True
    with torch.no_grad():
        expected = hf_pretraining.videomae(clip_BTCHW, bool_masked_pos=mask_BN).last_hidden_state
        got = ours.forward_features(clip_BTCHW.transpose(1, 2), mask_BN)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_hf_files_from_before_transformers_5_name_the_biases_q_bias_v_bias(hf_pretraining, host):
    new = hf_pretraining.state_dict()
    old = {
        k.replace("attention.query.bias", "attention.q_bias").replace(
            "attention.value.bias", "attention.v_bias"
        ): v
        for k, v in new.items()
    }
    assert any(k.endswith("attention.attention.q_bias") for k in old)
    a, b = convert("auto", new, host=host).state, convert("auto", old, host=host).state
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_query_key_value_become_the_fused_qkv_rows_in_that_order(hf_pretraining, host):
    state = dict(hf_pretraining.state_dict())
    base = "videomae.encoder.layer.1.attention.attention."
    for value, name in enumerate(("query", "key", "value"), start=1):
        state[base + f"{name}.weight"] = torch.full((D, D), float(value))
    state[base + "query.bias"] = torch.full((D,), 7.0)
    state[base + "value.bias"] = torch.full((D,), 9.0)
    out = convert("videomae_hf", state, host=host).state
    qkv = out["blocks.1.attn.qkv.weight"]
    assert qkv.shape == (3 * D, D)
    assert (qkv[:D] == 1).all() and (qkv[D : 2 * D] == 2).all() and (qkv[2 * D :] == 3).all()
    assert (out["blocks.1.attn.q_bias"] == 7).all() and (out["blocks.1.attn.v_bias"] == 9).all()


def test_hf_classifier_logits_are_reproduced_and_need_a_vit_without_final_norm(clip_BTCHW, host):
    hf = randomized(transformers.VideoMAEForVideoClassification(hf_config(num_labels=5)))
    state = hf.state_dict()
    with pytest.raises(ConversionError, match=r"not in the checkpoint:\n    norm.weight") as err:
        load_backbone_checkpoint(vit(), state, host=host)
    assert "fine-tuned encoder: it has no final `norm`" in str(err.value)
    ours = vit(final_norm=False)
    report = load_backbone_checkpoint(ours, state, host=host)
    assert set(report.dropped) == {
        "fc_norm.weight",
        "fc_norm.bias",
        "classifier.weight",
        "classifier.bias",
    }
    with torch.no_grad():
        pooled_BD = ours.forward_features(clip_BTCHW.transpose(1, 2)).mean(dim=1)
        normed_BD = F.layer_norm(pooled_BD, (D,), state["fc_norm.weight"], state["fc_norm.bias"])
        logits_BK = F.linear(normed_BD, state["classifier.weight"], state["classifier.bias"])
        expected_BK = hf(clip_BTCHW).logits
    torch.testing.assert_close(logits_BK, expected_BK, rtol=1e-5, atol=1e-5)


def test_a_bare_hf_videomae_model_is_recognized(host):
    hf = transformers.VideoMAEModel(hf_config(use_mean_pooling=False))
    report = load_backbone_checkpoint(vit(), hf.state_dict(), host=host)
    assert report.format == "videomae_hf" and report.dropped == {}


# ---------------------------------------------------------------------------------------------
# the official code's files: synthetic, with the spec's key names


def official_encoder(d: int, depth: int, prefix: str, final_norm: bool = True) -> dict:
    """Key -> shape of the official encoder (spec §1.12), for width d."""
    shapes = {f"{prefix}patch_embed.proj.weight": (d, 3, TUBELET, PATCH, PATCH)}
    shapes[f"{prefix}patch_embed.proj.bias"] = (d,)
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
    if final_norm:
        shapes |= {f"{prefix}norm.weight": (d,), f"{prefix}norm.bias": (d,)}
    return shapes


def official_pretraining(d: int, depth: int, dd: int, ddepth: int) -> dict:
    """Key -> shape of an official pretraining ``model`` dict (spec §1.12)."""
    shapes = official_encoder(d, depth, "encoder.")
    shapes |= {"encoder_to_decoder.weight": (dd, d), "mask_token": (1, 1, dd)}
    decoder = official_encoder(dd, ddepth, "decoder.")
    shapes |= {k: v for k, v in decoder.items() if ".blocks." in k or k.startswith("decoder.norm")}
    pixels = 3 * TUBELET * PATCH * PATCH
    return shapes | {"decoder.head.weight": (pixels, dd), "decoder.head.bias": (pixels,)}


def numbered(shapes: dict) -> dict[str, torch.Tensor]:
    """Tensor i filled with i: a value check shows where each one went."""
    return {k: torch.full(s, float(i)) for i, (k, s) in enumerate(shapes.items())}


def test_official_pretraining_checkpoint_gives_the_encoder(host):
    src = numbered(official_pretraining(D, DEPTH, DECODER_D, 1))
    ours = vit()
    report = load_backbone_checkpoint(ours, {"model": src, "epoch": 799}, host=host)
    assert report.format == "videomae"
    assert {k.split(".")[0] for k in report.dropped} == {
        "decoder",
        "encoder_to_decoder",
        "mask_token",
    }
    for k, v in ours.state_dict().items():
        assert torch.equal(v, src["encoder." + k]), k


def test_official_finetuned_checkpoint_under_module_needs_no_final_norm(host):
    shapes = official_encoder(D, DEPTH, "", final_norm=False)
    shapes |= {
        "fc_norm.weight": (D,),
        "fc_norm.bias": (D,),
        "head.weight": (400, D),
        "head.bias": (400,),
    }
    ckpt = {"module": numbered(shapes)}
    with pytest.raises(ConversionError, match="norm.bias"):
        load_backbone_checkpoint(vit(), ckpt, host=host)
    report = load_backbone_checkpoint(vit(final_norm=False), ckpt, host=host)
    assert report.format == "videomae"
    assert set(report.dropped) == {"fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"}


def test_our_videomae_objective_saves_the_official_layout(host):
    recipe = {
        "backbone": {
            "name": "vit_tiny",
            "img_size": 32,
            "num_frames": 4,
            "patch_size": 16,
            "depth": 2,
        },
        "objective": {"name": "videomae", "decoder_depth": 1},
    }
    model = build_objective(host.registry, recipe)
    ours = {
        k.replace("backbone.", "encoder.", 1): tuple(v.shape) for k, v in model.state_dict().items()
    }
    dd = model.encoder_to_decoder.out_features
    assert ours == official_pretraining(192, 2, dd, 1)


def test_a_wrong_format_names_the_right_one(hf_pretraining, host):
    with pytest.raises(ConversionError, match="look like format 'videomae_hf'"):
        convert("videomae", hf_pretraining.state_dict(), host=host)
