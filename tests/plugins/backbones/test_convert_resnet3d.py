"""Checkpoint formats of the video ResNet-18 trunks (spec contrastive-and-severe §1.1-1.2, §6.8):
``torchvision`` (our names; only ``fc`` dropped) and ``pyvrl`` (CtP / Tubelet-Contrast names, MoCo
parts dropped, BatchNorm eps 1e-3 folded into the running variance).

Synthetic checkpoints use the spec's key names, written here from its tables (not from our code);
tensor i of a synthetic dict is the one-element [i / 1000], so a value check shows where each one went.

Shape legend: B batch, C channels, T frames, H height, W width.
"""

import copy

import pytest
import torch
from torch import nn
from vssl_backbones import resnet3d

from vssl_core.convert import ConversionError, convert, load_backbone_checkpoint

NAMES = ("r2plus1d_18", "r3d_18")
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def torchvision_keys(name: str) -> list[str]:
    """torchvision's state_dict keys less ``fc``, from the spec's key patterns (§1.1)."""
    factorized = name == "r2plus1d_18"
    convs, bns = (("0.0", "0.3"), ("0.1",)) if factorized else (("0",), ())
    stem_convs, stem_bns = (("0", "3"), ("1", "4")) if factorized else (("0",), ("1",))
    keys = [f"stem.{i}.weight" for i in stem_convs] + [
        f"stem.{i}.{p}" for i in stem_bns for p in BN
    ]
    for layer in range(1, 5):
        for block in (0, 1):
            pre = f"layer{layer}.{block}"
            for c in ("conv1", "conv2"):
                keys += [f"{pre}.{c}.{i}.weight" for i in convs]
                keys += [f"{pre}.{c}.{i}.{p}" for i in (*bns, "1") for p in BN]
            if layer > 1 and block == 0:
                keys += [f"{pre}.downsample.0.weight"] + [f"{pre}.downsample.1.{p}" for p in BN]
    return keys


def numbered(keys: list[str]) -> dict[str, torch.Tensor]:
    """Tensor i is [i / 1000]: distinct, and small enough that float32 resolves the eps shift."""
    return {k: torch.tensor([i / 1000]) for i, k in enumerate(keys)}


# torchvision name -> pyvrl name, from the spec's tables (§1.2)
PYVRL_NAMES = {
    "r2plus1d_18": [
        ("stem.0.", "stem.conv_s."),
        ("stem.1.", "stem.bn_s."),
        ("stem.3.", "stem.conv_t."),
        ("stem.4.", "stem.bn_t."),
        ("conv1.0.0.", "conv1.conv_s."),
        ("conv1.0.1.", "conv1.bn_s."),
        ("conv1.0.3.", "conv1.conv_t."),
        ("conv1.1.", "bn1."),
        ("conv2.0.0.", "conv2.conv_s."),
        ("conv2.0.1.", "conv2.bn_s."),
        ("conv2.0.3.", "conv2.conv_t."),
        ("conv2.1.", "bn2."),
        ("downsample.0.", "downsample.conv."),
        ("downsample.1.", "downsample_bn."),
    ],
    "r3d_18": [
        ("stem.0.", "stem.conv."),
        ("stem.1.", "stem.bn."),
        ("conv1.0.", "conv1.conv."),
        ("conv1.1.", "bn1."),
        ("conv2.0.", "conv2.conv."),
        ("conv2.1.", "bn2."),
        ("downsample.0.", "downsample.conv."),
        ("downsample.1.", "downsample_bn."),
    ],
}


def pyvrl_name(key: str, name: str) -> str:
    for ours, theirs in PYVRL_NAMES[name]:
        if key.startswith(ours) or f".{ours}" in key:
            return key.replace(ours, theirs, 1)
    raise AssertionError(f"the spec's table has no name for {key}")


def pyvrl_checkpoint(ours: dict[str, torch.Tensor], name: str) -> dict:
    """A CtP / Tubelet-Contrast training file: {'state_dict': backbone + MoCo parts}."""
    state = {f"backbone.{pyvrl_name(k, name)}": v for k, v in ours.items()}
    state |= {f"key_encoder.{k[len('backbone.') :]}": v for k, v in state.items()}
    state |= {"fc.0.weight": torch.randn(8, 512), "fc.2.weight": torch.randn(4, 8)}
    state |= {"key_fc.0.weight": torch.randn(8, 512), "queue": torch.randn(4, 16)}
    state |= {"queue_ptr": torch.zeros(1, dtype=torch.long)}
    return {"state_dict": state, "meta": {"epoch": 100}}


@pytest.fixture(scope="module")
def pyvrl_net() -> nn.Module:
    """An R(2+1)D-18 with realistic BN statistics (one train-mode pass), then variances x0.01 and
    gammas x0.1: the same function without eps, but eps now matters 100x more."""
    torch.manual_seed(1)
    model = resnet3d.r2plus1d_18()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm3d)]
    for m in bns:
        m.momentum = 1.0  # running stats := this batch's
    with torch.no_grad():
        model.train()(torch.randn(4, 3, 4, 16, 16))
        for m in bns:
            m.running_var.mul_(0.01)
            m.weight.mul_(0.1)
            m.bias.normal_(0, 0.1)
    return model.eval()


# ---------------------------------------------------------------------------------------------
# torchvision


@pytest.mark.parametrize("name", NAMES)
def test_torchvision_layout_converts_with_only_fc_dropped(name, host):
    src = numbered([*torchvision_keys(name), "fc.weight", "fc.bias"])
    conversion = convert("auto", src, backbone_name=name, host=host)
    assert conversion.format == "torchvision"
    assert set(conversion.dropped) == {"fc.weight", "fc.bias"}
    assert set(conversion.state) == set(torchvision_keys(name))
    assert all(torch.equal(conversion.state[k], src[k]) for k in conversion.state)


def test_our_r2plus1d_has_exactly_the_torchvision_keys(pyvrl_net):
    assert sorted(pyvrl_net.state_dict()) == sorted(torchvision_keys("r2plus1d_18"))


def test_an_r3d_checkpoint_is_refused_for_r2plus1d(host):
    src = numbered([*torchvision_keys("r3d_18"), "fc.weight", "fc.bias"])
    with pytest.raises(ConversionError, match="holds an r3d_18 .*, not an r2plus1d_18"):
        convert("torchvision", src, "r2plus1d_18", host=host)


def test_a_torchvision_model_gives_the_same_outputs(host):
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    reference = tv.models.video.r2plus1d_18(num_classes=400).eval()
    ours = resnet3d.r2plus1d_18().eval()
    report = load_backbone_checkpoint(ours, reference.state_dict(), host=host)
    assert report.format == "torchvision" and set(report.dropped) == {"fc.weight", "fc.bias"}
    clip_BCTHW = torch.randn(1, 3, 4, 32, 32)
    reference.fc = nn.Identity()
    with torch.no_grad():
        torch.testing.assert_close(ours(clip_BCTHW), reference(clip_BCTHW), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# pyvrl


@pytest.mark.parametrize("name", NAMES)
def test_every_pyvrl_key_is_placed_and_only_moco_parts_are_dropped(name, host):
    ours = numbered(torchvision_keys(name))
    conversion = convert("auto", pyvrl_checkpoint(ours, name), backbone_name=name, host=host)
    assert conversion.format == "pyvrl"
    assert set(conversion.state) == set(ours)
    dropped = {k.split(".")[0] for k in conversion.dropped}
    assert dropped == {"key_encoder", "fc", "key_fc", "queue", "queue_ptr"}
    for k, v in ours.items():
        shift = 1e-3 - 1e-5 if k.endswith("running_var") else 0.0
        assert abs(conversion.state[k].item() - v.item() - shift) < 1e-7, k


def test_outputs_match_the_pyvrl_network_with_its_eps(pyvrl_net, host):
    pyvrl_net = copy.deepcopy(pyvrl_net)
    ckpt = pyvrl_checkpoint(pyvrl_net.state_dict(), "r2plus1d_18")
    ours = copy.deepcopy(pyvrl_net)  # every tensor is overwritten by the load
    report = load_backbone_checkpoint(ours, ckpt, host=host)
    assert report.format == "pyvrl" and any("eps" in n for n in report.notes)
    clip_BCTHW = torch.randn(2, 3, 4, 16, 16)
    with torch.no_grad():
        got_BC = ours(clip_BCTHW)
        ours.load_state_dict(pyvrl_net.state_dict())  # SEVERE's way: eps silently 1e-5
        naive_BC = ours(clip_BCTHW)
        for m in pyvrl_net.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.eps = 1e-3  # pyvrl's BatchNorm
        expected_BC = pyvrl_net(clip_BCTHW)
    assert torch.isfinite(expected_BC).all() and expected_BC.abs().mean() > 1e-2
    torch.testing.assert_close(got_BC, expected_BC, rtol=1e-4, atol=1e-5)
    assert (naive_BC - expected_BC).abs().max() > 1e-2 * expected_BC.abs().max()  # fold matters


def test_an_unknown_pyvrl_key_is_named_with_the_closest_known_one(host):
    ckpt = pyvrl_checkpoint(numbered(torchvision_keys("r3d_18")), "r3d_18")
    ckpt["state_dict"]["backbone.layer1.0.conv1.conv_x.weight"] = torch.zeros(1)
    with pytest.raises(ConversionError, match=r"no place for 1 of its keys:\n.*conv_x.weight "):
        convert("pyvrl", ckpt, host=host)


def test_a_missing_tensor_fails_the_load_and_names_it(pyvrl_net, host):
    target = copy.deepcopy(pyvrl_net)
    ckpt = pyvrl_checkpoint(target.state_dict(), "r2plus1d_18")
    del ckpt["state_dict"]["backbone.layer2.0.downsample_bn.running_var"]
    with pytest.raises(
        ConversionError, match=r"not in the checkpoint:\n    layer2.0.downsample.1.running_var"
    ):
        load_backbone_checkpoint(target, ckpt, host=host)
