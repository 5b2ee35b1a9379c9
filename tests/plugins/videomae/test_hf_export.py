"""Checkpoints out: `vssl convert --to videomae_hf` writes vssl models that transformers loads
strictly with the same outputs, and `--from videomae_hf` reads them back to the same tensors.

Shape legend: B batch, C channels, T frames, H height, W width, N tokens, M masked tokens,
P pixels per token, K classes.
"""

import pytest
import torch

from vssl_core.build import build_objective
from vssl_core.cli.main import main
from vssl_core.engine.checkpoint import load_checkpoint, save_atomic
from vssl_core.nn import order_visible_first, tube_mask

transformers = pytest.importorskip("transformers")

BACKBONE = {"name": "vit_tiny", "img_size": 32, "num_frames": 4, "patch_size": 16, "depth": 2}
VIDEOMAE = {"name": "videomae", "decoder_depth": 1, "mask_ratio": 0.5}


def randomized(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights everywhere, biases and norms included (init leaves many at 0 or 1)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.add_(1.0)  # near-zero scales would hide a misplaced tensor
    return model.eval()


def save_vssl(model, recipe: dict, path) -> None:
    save_atomic(
        {"format": "vssl", "version": 1, "model": model.state_dict(), "recipe": recipe}, path
    )


@pytest.fixture
def clip_BCTHW():
    torch.manual_seed(1)
    return torch.randn(2, 3, 4, 32, 32)


def test_a_videomae_pretraining_checkpoint_round_trips_through_transformers(
    host, tmp_path, clip_BCTHW, capsys
):
    recipe = {"backbone": BACKBONE, "objective": VIDEOMAE}
    ours = randomized(build_objective(host.registry, recipe))
    save_vssl(ours, recipe, tmp_path / "ours.pt")

    assert (
        main(["convert", "--to", "videomae_hf", str(tmp_path / "ours.pt"), str(tmp_path / "hf")])
        == 0
    )
    assert "VideoMAEForPreTraining" in capsys.readouterr().out
    hf, info = transformers.VideoMAEForPreTraining.from_pretrained(
        tmp_path / "hf", output_loading_info=True
    )
    assert info == {
        "missing_keys": set(),
        "unexpected_keys": set(),
        "mismatched_keys": set(),
        "error_msgs": [],
    }
    hf.eval()
    keys_B = torch.tensor([3, 4])
    mask_BN = tube_mask(keys_B, ours.grid_size, ours.mask_ratio)
    with torch.no_grad():
        visible_BVD = ours.backbone.forward_features(clip_BCTHW, mask_BN)
        pred_BMP = ours.decode(ours.encoder_to_decoder(visible_BVD), order_visible_first(mask_BN))
        out = hf(clip_BCTHW.transpose(1, 2), bool_masked_pos=mask_BN)
        tokens = hf.videomae(clip_BCTHW.transpose(1, 2)).last_hidden_state
    torch.testing.assert_close(
        tokens, ours.backbone.forward_features(clip_BCTHW), rtol=1e-5, atol=1e-5
    )
    # the decoder's norm: transformers' eps 1e-5, vssl's 1e-6
    torch.testing.assert_close(out.logits, pred_BMP, rtol=1e-4, atol=1e-4)

    assert (
        main(["convert", "--from", "videomae_hf", str(tmp_path / "hf"), str(tmp_path / "back.pt")])
        == 0
    )
    printed = capsys.readouterr().out
    assert (
        "kept the videomae objective's" in printed and "fits backbone vit_tiny exactly" in printed
    )
    back = load_checkpoint(tmp_path / "back.pt")
    original = ours.state_dict()
    assert back["model"].keys() == original.keys()
    for k, v in original.items():
        assert torch.equal(back["model"][k], v), k
    assert back["recipe"]["objective"]["decoder_depth"] == 1
    rebuilt = build_objective(host.registry, back["recipe"])  # the saved specs build the model
    rebuilt.load_state_dict(back["model"])
    assert back["recipe"]["backbone"]["final_norm"] is True


def test_a_fine_tuned_classifier_is_written_as_video_classification(host, tmp_path, clip_BCTHW):
    recipe = {
        "backbone": {**BACKBONE, "final_norm": False},
        "objective": {
            "name": "supervised",
            "num_classes": 5,
            "task": "classification",
            "head": {"name": "linear_head", "norm": True},
        },
    }
    ours = randomized(build_objective(host.registry, recipe))
    save_vssl(ours, recipe, tmp_path / "ft.pt")
    assert (
        main(["convert", "--to", "videomae_hf", str(tmp_path / "ft.pt"), str(tmp_path / "hf")]) == 0
    )
    hf, info = transformers.VideoMAEForVideoClassification.from_pretrained(
        tmp_path / "hf", output_loading_info=True
    )
    assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"])
    with torch.no_grad():
        expected_BK = ours.logits(clip_BCTHW)
        got_BK = hf.eval()(clip_BCTHW.transpose(1, 2)).logits
    torch.testing.assert_close(got_BK, expected_BK, rtol=1e-4, atol=1e-4)  # fc_norm eps 1e-5


def test_a_bare_backbone_becomes_a_videomae_model_and_comes_back(host, tmp_path, clip_BCTHW):
    from vssl_core.build import build

    ours = randomized(build(host.registry, "backbone", BACKBONE))
    save_vssl(ours, {"backbone": BACKBONE}, tmp_path / "bb.pt")
    assert (
        main(["convert", "--to", "videomae_hf", str(tmp_path / "bb.pt"), str(tmp_path / "hf")]) == 0
    )
    hf, info = transformers.VideoMAEModel.from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert not (info["missing_keys"] or info["unexpected_keys"])
    with torch.no_grad():
        torch.testing.assert_close(
            hf.eval()(clip_BCTHW.transpose(1, 2)).last_hidden_state,
            ours.forward_features(clip_BCTHW),
            rtol=1e-5,
            atol=1e-5,
        )
    assert main(["convert", str(tmp_path / "hf"), str(tmp_path / "back.pt")]) == 0
    back = load_checkpoint(tmp_path / "back.pt")["model"]
    assert back.keys() == {f"backbone.{k}" for k in ours.state_dict()}
    assert all(torch.equal(back[f"backbone.{k}"], v) for k, v in ours.state_dict().items())


def test_export_refuses_what_it_cannot_write_and_never_overwrites(host, tmp_path, capsys):
    recipe = {
        "backbone": BACKBONE,  # with a final norm: not VideoMAE's fine-tuning layout
        "objective": {"name": "supervised", "num_classes": 3, "task": "classification"},
    }
    save_vssl(build_objective(host.registry, recipe), recipe, tmp_path / "ft.pt")
    assert (
        main(["convert", "--to", "videomae_hf", str(tmp_path / "ft.pt"), str(tmp_path / "a")]) == 2
    )
    assert "final_norm: false and a linear_head with norm: true" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    assert (
        main(["convert", "--to", "videomae_hf", str(tmp_path / "ft.pt"), str(tmp_path / "full")])
        == 2
    )
    assert "not an empty folder; nothing was overwritten" in capsys.readouterr().err
    assert main(["convert", "--to", "videomae", str(tmp_path / "ft.pt"), str(tmp_path / "b")]) == 2
    assert "can be read, not written; --to takes videomae_hf" in capsys.readouterr().err


def test_an_official_videomae_file_is_written_with_the_backbone_named(host, tmp_path):
    from vssl_core.build import build

    ours = randomized(build(host.registry, "backbone", BACKBONE))
    official = {"model": {f"encoder.{k}": v for k, v in ours.state_dict().items()}}
    torch.save(official, tmp_path / "checkpoint-799.pth")
    spec = "{name: vit_tiny, img_size: 32, num_frames: 4, patch_size: 16, depth: 2}"
    args = ["convert", "--to", "videomae_hf", "--backbone", spec]
    assert main([*args, str(tmp_path / "checkpoint-799.pth"), str(tmp_path / "hf")]) == 0
    hf = transformers.VideoMAEModel.from_pretrained(tmp_path / "hf")
    for i, layer in enumerate(hf.encoder.layer):
        qkv = ours.blocks[i].attn.qkv.weight
        assert torch.equal(layer.attention.attention.key.weight, qkv[192:384])
