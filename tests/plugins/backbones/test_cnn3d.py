"""The small CPU 3D CNN, and the contract every CNN backbone keeps (shapes, finite outputs,
gradients, BatchNorm train/eval behaviour), parametrized over cnn3d_small, r2plus1d_18, r3d_18.

Shape legend: B batch, C channels, T frames, H height, W width.
"""

import copy
import functools

import pytest
import torch
from torch import nn
from vssl_backbones import cnn3d, resnet3d

from vssl_core.info import count_flops
from vssl_core.interfaces import Backbone

# (factory, kwargs, clip shape [B, C, T, H, W], layer-final map shape without B)
CASES = {
    "cnn3d_small": (cnn3d.cnn3d_small, dict(img_size=32, num_frames=4, width=8), (64, 1, 2, 2)),
    "r2plus1d_18": (resnet3d.r2plus1d_18, dict(img_size=32, num_frames=4), (512, 1, 2, 2)),
    "r3d_18": (resnet3d.r3d_18, dict(img_size=32, num_frames=4), (512, 1, 2, 2)),
}
SLOW = pytest.mark.slow  # a backward pass through 31-33M parameters takes seconds on a CPU
PARAMS = [
    pytest.param(name, marks=() if name == "cnn3d_small" else SLOW, id=name) for name in CASES
]


@functools.cache
def _pristine(name: str) -> Backbone:
    factory, kwargs, _ = CASES[name]
    torch.manual_seed(0)
    return factory(**kwargs)


def build(name: str) -> tuple[Backbone, torch.Tensor]:
    """A fresh copy of the freshly initialized model (copying is cheaper than initializing 31M
    parameters) and a clip of its input size."""
    model = copy.deepcopy(_pristine(name))
    T, H, W = model.input_size
    return model, torch.randn(2, 3, T, H, W)


# ------------------------------------------------------------------------ every CNN backbone


@pytest.mark.parametrize("name", CASES)
def test_shapes_and_finite_outputs(name):
    model, clip_BCTHW = build(name)
    with torch.no_grad():
        features = model.forward_features(clip_BCTHW)
        pooled = model(clip_BCTHW)
    assert tuple(features.shape) == (2, *CASES[name][2])
    assert pooled.shape == (2, model.num_features)
    assert torch.isfinite(features).all() and torch.isfinite(pooled).all()
    assert model.capabilities == frozenset() and isinstance(model, Backbone)


@pytest.mark.parametrize("name", PARAMS)
def test_every_trainable_parameter_gets_a_gradient(name):
    model, clip_BCTHW = build(name)
    model.train()(clip_BCTHW).square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", CASES)
def test_eval_is_deterministic_per_sample_and_leaves_buffers_alone(name):
    model, clip_BCTHW = build(name)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        both = model(clip_BCTHW)
        first = model(clip_BCTHW[:1])
        again = model(clip_BCTHW)
    torch.testing.assert_close(both[:1], first, rtol=1e-4, atol=1e-5)  # no cross-sample path
    assert torch.equal(both, again)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize("name", CASES)
def test_train_mode_uses_batch_statistics_and_updates_running_ones(name):
    model, clip_BCTHW = build(name)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm3d)]
    assert bns, "MoCo's shuffle-BN needs BatchNorm in the backbone"
    with torch.no_grad():
        eval_out = model.eval()(clip_BCTHW)
        train_out = model.train()(clip_BCTHW)
    assert not torch.allclose(eval_out, train_out)  # fresh running stats differ from the batch's
    assert all(int(m.num_batches_tracked) == 1 for m in bns)
    assert any(not torch.all(m.running_mean == 0) for m in bns)


# ------------------------------------------------------------------------ cnn3d_small


def test_cnn3d_small_defaults_and_geometry():
    model = cnn3d.cnn3d_small()
    assert model.num_features == 256 and model.input_size == (16, 64, 64)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv3d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256]
    assert all(c.kernel_size == (3, 3, 3) and c.bias is None for c in convs)
    assert [c.stride for c in convs] == [(2, 2, 2), (2, 2, 2), (2, 2, 2), (1, 2, 2)]
    # 27 in out per conv + (gamma, beta) per BN channel
    assert sum(p.numel() for p in model.parameters()) == 1_164_768
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 3, 16, 64, 64)).shape == (1, 256, 2, 4, 4)


@pytest.mark.parametrize("width", [4, 16])
def test_cnn3d_small_width_sets_features(width):
    model = cnn3d.cnn3d_small(img_size=16, num_frames=2, width=width)
    assert model.num_features == 8 * width
    with torch.no_grad():
        assert model(torch.randn(2, 3, 2, 16, 16)).shape == (2, 8 * width)


def test_cnn3d_small_runs_down_to_a_single_voxel():
    model = cnn3d.cnn3d_small(img_size=1, num_frames=1, width=2).eval()
    with torch.no_grad():
        assert model.forward_features(torch.randn(2, 3, 1, 1, 1)).shape == (2, 16, 1, 1, 1)


def test_cnn3d_small_cost_per_clip():
    """135M multiply-adds per 16x64x64 clip (fvcore convention), what keeps CPU recipes fast."""
    model = cnn3d.cnn3d_small().eval()
    with torch.no_grad():
        flops, _ = count_flops(model, (torch.randn(1, 3, 16, 64, 64),))
    assert flops == pytest.approx(135.2e6, rel=0.01)


@pytest.mark.parametrize("arg", ["img_size", "num_frames", "width"])
def test_cnn3d_small_rejects_nonpositive_sizes(arg):
    with pytest.raises(ValueError, match=f"cnn3d_small: {arg} must be a positive integer"):
        cnn3d.cnn3d_small(**{arg: 0})


def test_cnn3d_small_rejects_non_rgb_clips():
    with pytest.raises(ValueError, match=r"\[B, 3, T, H, W\]"):
        cnn3d.cnn3d_small(width=2)(torch.randn(1, 3, 64, 64))
