"""Video ResNet-18 trunks against spec contrastive-and-severe §1.1 (torchvision's layout).

Shape legend: B batch, C channels, T frames, H height, W width.
"""

import math

import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn
from vssl_backbones import resnet3d

FACTORIES = {"r2plus1d_18": resnet3d.r2plus1d_18, "r3d_18": resnet3d.r3d_18}
BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
WIDTHS = (64, 128, 256, 512)
MIDS = [144, 144, 230, 288, 460, 576, 921, 1152]  # spec §1.1, layer1.0 .. layer4.1


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {name: factory() for name, factory in FACTORIES.items()}


def _bn(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.{k}": () if k == "num_batches_tracked" else (channels,) for k in BN_KEYS}


def expected_state(name: str) -> dict[str, tuple[int, ...]]:
    """Every state_dict key and shape, written from the spec's prose (not from our code)."""
    factorized = name == "r2plus1d_18"
    if factorized:  # stem.{0,1,3,4}
        state = {"stem.0.weight": (45, 3, 1, 7, 7), **_bn("stem.1", 45)}
        state |= {"stem.3.weight": (64, 45, 3, 1, 1), **_bn("stem.4", 64)}
    else:
        state = {"stem.0.weight": (64, 3, 3, 7, 7), **_bn("stem.1", 64)}
    c_in, mids = 64, iter(MIDS)
    for layer, width in enumerate(WIDTHS, start=1):
        for b in (0, 1):
            p, mid = f"layer{layer}.{b}", next(mids)
            for conv, cin in (("conv1", c_in), ("conv2", width)):
                if factorized:  # conv{1,2}.0.{0,1,3}: spatial conv, BN(mid), temporal conv
                    state[f"{p}.{conv}.0.0.weight"] = (mid, cin, 1, 3, 3)
                    state |= _bn(f"{p}.{conv}.0.1", mid)
                    state[f"{p}.{conv}.0.3.weight"] = (width, mid, 3, 1, 1)
                else:
                    state[f"{p}.{conv}.0.weight"] = (width, cin, 3, 3, 3)
                state |= _bn(f"{p}.{conv}.1", width)
            if layer > 1 and b == 0:
                state[f"{p}.downsample.0.weight"] = (width, c_in, 1, 1, 1)
                state |= _bn(f"{p}.downsample.1", width)
            c_in = width
    return state


@pytest.mark.parametrize("name", FACTORIES)
def test_state_dict_keys_and_shapes_match_spec(models, name):
    state = {k: tuple(v.shape) for k, v in models[name].state_dict().items()}
    expected = expected_state(name)
    assert set(state) == set(expected), sorted(set(state) ^ set(expected))
    assert state == expected
    assert not any(k.startswith("fc.") for k in state), "the trunk must not carry a classifier"
    assert len(state) == (222 if name == "r2plus1d_18" else 120)


@pytest.mark.parametrize(
    "name, count",
    # torchvision totals with a 400-way fc, 31,505,325 and 33,371,472, less 512 * 400 + 400
    [("r2plus1d_18", 31_300_125), ("r3d_18", 33_166_272)],
)
def test_trunk_parameter_count_is_exact(models, name, count):
    assert sum(p.numel() for p in models[name].parameters()) == count


def test_mid_channels_formula_and_per_block_values(models):
    assert resnet3d.mid_channels(64, 64) == math.floor(27 * 64 * 64 / (9 * 64 + 3 * 64)) == 144
    assert resnet3d.mid_channels(64, 128) == 230  # 230.4 rounded down
    model = models["r2plus1d_18"]
    blocks = [block for i in range(1, 5) for block in getattr(model, f"layer{i}")]
    assert [b.conv1[0][0].out_channels for b in blocks] == MIDS
    assert [b.conv2[0][0].out_channels for b in blocks] == MIDS  # one value per block


def test_factorized_conv_geometry():
    conv = resnet3d.Conv2Plus1D(64, 128, 230, stride=2)
    spatial, bn, relu, temporal = conv
    assert (spatial.kernel_size, spatial.stride, spatial.padding) == (
        (1, 3, 3),
        (1, 2, 2),
        (0, 1, 1),
    )
    assert (temporal.kernel_size, temporal.stride, temporal.padding) == (
        (3, 1, 1),
        (2, 1, 1),
        (1, 0, 0),
    )
    assert isinstance(bn, nn.BatchNorm3d) and isinstance(relu, nn.ReLU)
    assert spatial.bias is None and temporal.bias is None


@pytest.mark.parametrize("name", FACTORIES)
def test_downsample_only_where_the_shape_changes(models, name):
    model = models[name]
    for layer in range(1, 5):
        for b, block in enumerate(getattr(model, f"layer{layer}")):
            has = block.downsample is not None
            assert has == (layer > 1 and b == 0), f"layer{layer}.{b}"
            if has:
                assert block.downsample[0].stride == (2, 2, 2)


@pytest.mark.parametrize("name", FACTORIES)
def test_batchnorm_defaults_and_torchvision_init(models, name):
    model = models[name]
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm3d)]
    assert bns and all(m.eps == 1e-5 and m.momentum == 0.1 for m in bns)
    assert all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in bns)
    # kaiming normal, fan_out, relu: std = sqrt(2 / (out_channels * kernel volume))
    conv = model.layer3[0].conv1[0][0] if name == "r2plus1d_18" else model.layer3[0].conv1[0]
    fan_out = conv.weight.shape[0] * math.prod(conv.weight.shape[2:])
    std = math.sqrt(2 / fan_out)
    assert conv.weight.std().item() == pytest.approx(std, rel=0.02)
    assert abs(conv.weight.mean().item()) < 0.05 * std


@pytest.mark.parametrize("frames, T4", [(16, 2), (32, 4)])
def test_stage_shapes_of_the_spec_table(frames, T4):
    with torch.device("meta"):  # shapes only: no memory, no FLOPs
        model = resnet3d.r2plus1d_18()
        x = torch.empty(2, 3, frames, 112, 112)
    shapes = []
    for layer in (model.stem, model.layer1, model.layer2, model.layer3, model.layer4):
        x = layer(x)
        shapes.append(tuple(x.shape))
    assert shapes == [
        (2, 64, frames, 56, 56),
        (2, 64, frames, 56, 56),
        (2, 128, frames // 2, 28, 28),
        (2, 256, frames // 4, 14, 14),
        (2, 512, T4, 7, 7),
    ]


@pytest.mark.parametrize("name", FACTORIES)
def test_forward_is_the_mean_of_forward_features(models, name):
    model = models[name].eval()
    clip_BCTHW = torch.randn(2, 3, 8, 48, 48)
    with torch.no_grad():
        features = model.forward_features(clip_BCTHW)
        pooled = model(clip_BCTHW)
    assert features.shape == (2, 512, 1, 3, 3)
    torch.testing.assert_close(pooled, features.mean(dim=(2, 3, 4)))


@pytest.mark.parametrize("name", FACTORIES)
def test_attributes_and_argument_checks(name):
    with torch.device("meta"):
        model = FACTORIES[name](img_size=96, num_frames=8)
    assert model.num_features == 512
    assert model.input_size == (8, 96, 96)
    assert model.capabilities == frozenset()
    with pytest.raises(ValueError, match="img_size"):
        FACTORIES[name](img_size=0)
    with pytest.raises(ValueError, match="num_frames"):
        FACTORIES[name](num_frames=-1)
    with pytest.raises(ValueError, match=r"\[B, 3, T, H, W\]"):
        model.forward_features(torch.empty(1, 1, 8, 96, 96, device="meta"))


@pytest.mark.slow
@pytest.mark.parametrize("name, conv_gflops", [("r2plus1d_18", 40.52), ("r3d_18", 40.70)])
def test_flops_per_clip_match_torchvision_docs(name, conv_gflops):
    """torchvision's docs give 40.52 / 40.70 GFLOPs per 16x112x112 clip, the convs in fvcore's
    multiply-add convention; fvcore (``vssl info``) also counts the BNs, about 0.1 GFLOPs more."""
    model = FACTORIES[name]().eval()
    analysis = FlopCountAnalysis(model, (torch.randn(1, 3, 16, 112, 112),))
    analysis.unsupported_ops_warnings(False)
    with torch.no_grad():  # one trace serves both counts
        assert analysis.by_operator()["conv"] / 1e9 == pytest.approx(conv_gflops, abs=0.005)
        assert 0 < analysis.total() / 1e9 - conv_gflops < 0.15


@pytest.mark.parametrize("name", FACTORIES)
def test_torchvision_checkpoint_loads_strictly_and_gives_the_same_features(models, name):
    video = pytest.importorskip("torchvision.models.video")
    torch.manual_seed(0)
    reference = getattr(video, name)()
    with torch.no_grad():  # non-trivial BN statistics, so eval mode really uses them
        for m in reference.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.running_mean.normal_(), m.running_var.uniform_(0.5, 2.0), m.bias.normal_()
    state = {k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    model = FACTORIES[name]()
    model.load_state_dict(state, strict=True)
    reference.fc = nn.Identity()
    clip_BCTHW = torch.randn(2, 3, 8, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(
            model.eval()(clip_BCTHW), reference.eval()(clip_BCTHW), rtol=0, atol=0
        )
