"""3DRotNet objective: the rotation transform, its labels, keyed draws, and a training step
(spec contrastive-and-severe §2).

Shape legend: B batch, R rotated clips, C channels, T frames, H height, W width, D features.
"""

from pathlib import Path

import pytest
import torch
from torch import nn
from vssl_rotation.objective import (
    NUM_ROTATIONS,
    Rotation,
    all_rotations,
    draw_rotations,
    rotate_clips,
)

from vssl_core.config import load_config
from vssl_core.interfaces import Backbone, Batch
from vssl_core.random import sample_key

ROOT = Path(__file__).resolve().parents[3]


class StandInBackbone(Backbone):
    """Conv3d + BN + ReLU + global pool: the smallest CNN with the Backbone attributes."""

    num_features = 8
    capabilities = frozenset()

    def __init__(self, size: int = 16, frames: int = 4):
        super().__init__()
        self.input_size = (frames, size, size)
        self.conv = nn.Conv3d(3, self.num_features, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm3d(self.num_features)

    def forward_features(self, clip_BCTHW: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(clip_BCTHW)))

    def forward(self, clip_BCTHW: torch.Tensor) -> torch.Tensor:
        return self.forward_features(clip_BCTHW).mean((2, 3, 4))


def keys(n: int, seed: int = 0) -> torch.Tensor:
    return torch.tensor([sample_key(seed, 0, i) for i in range(n)], dtype=torch.int64)


def numbered_clips(B: int, T: int = 3, S: int = 5) -> torch.Tensor:
    """Every element distinct, so any misplaced pixel, frame or clip shows."""
    return torch.arange(B * 3 * T * S * S, dtype=torch.float32).reshape(B, 3, T, S, S)


def batch_of(clip_BCTHW: torch.Tensor, keys_B: torch.Tensor) -> Batch:
    B = clip_BCTHW.shape[0]
    return Batch(clips=[clip_BCTHW], label=torch.zeros(B), index=torch.arange(B), keys=keys_B)


# ------------------------------------------------------------------------------ the transform


def test_one_quarter_turn_is_counter_clockwise_on_every_frame():
    """A mark in the top-right corner of every frame goes to the top-left (CtP: +90 degrees)."""
    clip_BCTHW = torch.zeros(1, 3, 4, 6, 6)
    clip_BCTHW[..., 0, 5] = 1.0  # row 0 (top), last column (right)
    out_BCTHW = rotate_clips(clip_BCTHW, torch.tensor([1]))
    assert out_BCTHW[..., 0, 0].eq(1).all() and out_BCTHW.sum() == clip_BCTHW.sum()


@pytest.mark.parametrize("rotations_per_clip", [1, 4])
def test_undoing_the_labelled_rotation_restores_every_clip(rotations_per_clip):
    objective = Rotation(StandInBackbone(size=5, frames=3), rotations_per_clip=rotations_per_clip)
    clip_BCTHW = numbered_clips(16)
    rotated_RCTHW, labels_R = objective.rotate(clip_BCTHW, keys(16))
    source = torch.arange(16).repeat_interleave(rotations_per_clip)  # clip b of row r
    for r in range(rotated_RCTHW.shape[0]):
        undone = torch.rot90(rotated_RCTHW[r], -int(labels_R[r]), dims=(-2, -1))
        assert torch.equal(undone, clip_BCTHW[source[r]]), f"row {r}, label {labels_R[r]}"


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
def test_four_quarter_turns_are_the_identity(turns):
    clip_BCTHW = numbered_clips(2)
    turns_B = torch.full((2,), turns)
    out_BCTHW = clip_BCTHW
    for _ in range(NUM_ROTATIONS):
        out_BCTHW = rotate_clips(out_BCTHW, turns_B)
    assert torch.equal(out_BCTHW, clip_BCTHW)
    assert torch.equal(
        rotate_clips(clip_BCTHW, turns_B + NUM_ROTATIONS), rotate_clips(clip_BCTHW, turns_B)
    )


def test_rotated_clips_differ_from_each_other():
    clip_BCTHW = numbered_clips(1).expand(4, -1, -1, -1, -1)
    out_BCTHW = rotate_clips(clip_BCTHW, torch.arange(4)).flatten(1)
    assert torch.cdist(out_BCTHW, out_BCTHW).fill_diagonal_(1.0).gt(0).all()


def test_all_rotations_gives_four_clips_per_clip_labelled_0_to_3():
    clip_BCTHW = numbered_clips(3)
    rotated_RCTHW, labels_R = all_rotations(clip_BCTHW)
    assert rotated_RCTHW.shape == (12, *clip_BCTHW.shape[1:])
    assert labels_R.tolist() == [0, 1, 2, 3] * 3
    for b in range(3):
        for k in range(4):
            expected = torch.rot90(clip_BCTHW[b], k, dims=(-2, -1))
            assert torch.equal(rotated_RCTHW[4 * b + k], expected)


# ------------------------------------------------------------------------------ keyed draws


def test_draws_depend_only_on_the_key():
    k = keys(5)
    turns = draw_rotations(torch.stack([k[3], k[0], k[3], k[1]]))
    assert turns[0] == turns[2] == draw_rotations(k[3:4])[0]
    assert torch.equal(draw_rotations(k)[[0, 1]], turns[[1, 3]])  # other batch, other size
    assert not torch.equal(draw_rotations(keys(64, seed=0)), draw_rotations(keys(64, seed=1)))


def test_draws_are_uniform_over_the_four_rotations():
    counts = torch.bincount(draw_rotations(keys(4000)), minlength=4).float()
    assert counts.shape == (4,) and (counts / 4000 - 0.25).abs().max() < 0.03  # ~4 sigma


def test_the_transform_ignores_the_global_rng():
    objective = Rotation(StandInBackbone(size=5, frames=3))
    torch.manual_seed(0)
    a = objective.rotate(numbered_clips(8), keys(8))
    torch.manual_seed(1)
    b = objective.rotate(numbered_clips(8), keys(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# ------------------------------------------------------------------------------ objective


@pytest.mark.parametrize("rotations_per_clip", [1, 4])
def test_a_training_step_gives_a_finite_loss_and_gradients_everywhere(rotations_per_clip):
    torch.manual_seed(0)
    objective = Rotation(StandInBackbone(), rotations_per_clip=rotations_per_clip).train()
    out = objective(batch_of(torch.randn(4, 3, 4, 16, 16), keys(4)))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.loss.item() == pytest.approx(torch.log(torch.tensor(4.0)).item(), abs=0.05)
    assert set(out.metrics) == {"acc"} and 0 <= out.metrics["acc"].item() <= 1
    assert not out.metrics["acc"].requires_grad
    out.loss.backward()
    for name, p in objective.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_views_follow_the_backbone_and_arguments():
    objective = Rotation(StandInBackbone(size=16, frames=4), sampling_stride=2, flip=False)
    spec = objective.views()
    assert (spec.frames, spec.crop_size, spec.stride, spec.num_clips) == (4, 16, 2, 1)
    assert spec.augmentation == "multiscale_crop" and spec.flip is False


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"rotations_per_clip": 2}, "rotations_per_clip=2: choose 1 .* or 4"),
        ({"dropout": 1.0}, "dropout"),
        ({"sampling_stride": 0}, "stride"),
    ],
)
def test_bad_arguments_name_the_argument_and_the_fix(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Rotation(StandInBackbone(), **kwargs)


def test_non_square_input_is_refused():
    backbone = StandInBackbone()
    backbone.input_size = (4, 16, 12)
    with pytest.raises(ValueError, match="square"):
        Rotation(backbone)


def test_cpu_recipe_validates_and_uses_the_fragment(host):
    data = load_config(ROOT / "recipes" / "rotation.yaml", [], host).data
    assert (data["objective"]["name"], data["backbone"]["name"]) == ("rotation", "cnn3d_small")
    assert (data["optim"]["name"], data["train"]["grad_clip"]) == ("sgd", 40.0)  # from §2.2
