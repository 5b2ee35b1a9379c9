"""VCOP objective: order labels, keyed shuffles, tuple sampling, the pairwise head and a training
step (spec contrastive-and-severe §3.1-3.4).

Shape legend: B batch, N clips per tuple, C channels, T frames, H height, W width, P orders.
"""

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from vssl_clip_order.objective import ClipOrder, OrderHead, shuffle_clips, tuple_span, unshuffle
from vssl_clip_order.permutations import (
    draw_orders,
    inverse,
    permutation_index,
    permutation_table,
)

from vssl_core.config import load_config
from vssl_core.data.sampling import sequence_clip_indices
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


# ------------------------------------------------------------------------------ labels


def test_three_clips_are_labelled_in_the_spec_order():
    """Spec §3.1 step 5, verbatim."""
    spec = {(0, 1, 2): 0, (0, 2, 1): 1, (1, 0, 2): 2, (1, 2, 0): 3, (2, 0, 1): 4, (2, 1, 0): 5}
    table_PN = permutation_table(3)
    assert {tuple(row): y for y, row in enumerate(table_PN.tolist())} == spec
    assert {order: permutation_index(order) for order in spec} == spec


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_labels_are_a_bijection_onto_0_to_n_factorial(n):
    table_PN = permutation_table(n)
    assert table_PN.shape == (math.factorial(n), n)
    assert len({tuple(row) for row in table_PN.tolist()}) == math.factorial(n)  # distinct orders
    assert table_PN.sort(dim=1).values.eq(torch.arange(n)).all()  # each one a permutation
    assert [permutation_index(row) for row in table_PN.tolist()] == list(range(len(table_PN)))
    assert table_PN.tolist() == [list(p) for p in itertools.permutations(range(n))]


def test_permutation_index_refuses_a_non_permutation():
    with pytest.raises(ValueError, match="not a permutation"):
        permutation_index([0, 0, 2])


# ------------------------------------------------------------------------------ shuffling


def test_slot_j_holds_original_clip_order_j_and_the_inverse_restores_the_tuple():
    B, N = 64, 4
    clips_BNCTHW = (
        torch.arange(B * N, dtype=torch.float32).view(B, N, 1, 1, 1, 1).expand(B, N, 3, 2, 4, 4)
    )
    labels_B, order_BN = draw_orders(keys(B), permutation_table(N))
    shuffled_BNCTHW = shuffle_clips(clips_BNCTHW, order_BN)
    original_clip_BN = shuffled_BNCTHW[:, :, 0, 0, 0, 0].long() - N * torch.arange(B)[:, None]
    assert torch.equal(original_clip_BN, order_BN)
    assert torch.equal(unshuffle(shuffled_BNCTHW, order_BN), clips_BNCTHW)
    assert torch.equal(order_BN.gather(1, inverse(order_BN)), torch.arange(N).expand(B, N))
    assert [permutation_index(o) for o in order_BN.tolist()] == labels_B.tolist()


def test_draws_depend_only_on_the_key():
    table_PN = permutation_table(3)
    k = keys(6)
    labels, orders = draw_orders(torch.stack([k[4], k[1], k[4], k[2]]), table_PN)
    assert labels[0] == labels[2] == draw_orders(k[4:5], table_PN)[0][0]
    assert torch.equal(draw_orders(k, table_PN)[1][[1, 2]], orders[[1, 3]])
    assert not torch.equal(
        draw_orders(keys(64, 0), table_PN)[0], draw_orders(keys(64, 1), table_PN)[0]
    )


def test_draws_are_uniform_over_the_orders():
    labels_B, _ = draw_orders(keys(6000), permutation_table(3))
    freq_P = torch.bincount(labels_B, minlength=6).float() / 6000
    assert (freq_P - 1 / 6).abs().max() < 0.02  # ~4 sigma


def test_the_shuffle_ignores_the_global_rng():
    objective = ClipOrder(StandInBackbone())
    clips_BNCTHW = torch.randn(8, 3, 3, 4, 16, 16)
    torch.manual_seed(0)
    a = objective.shuffle(clips_BNCTHW, keys(8))
    torch.manual_seed(1)
    b = objective.shuffle(clips_BNCTHW, keys(8))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


# ------------------------------------------------------------------------------ sampling


@pytest.mark.parametrize(
    "num_clips, frames, stride, gap", [(3, 16, 1, 8), (3, 8, 1, 4), (4, 4, 2, 3), (2, 5, 3, 0)]
)
def test_tuple_clips_are_disjoint_in_temporal_order_and_gap_apart(num_clips, frames, stride, gap):
    spec = ClipOrder(
        StandInBackbone(frames=frames), num_clips=num_clips, gap=gap, sampling_stride=stride
    ).views()
    assert (spec.temporal, spec.num_clips, spec.gap, spec.stride) == (
        "sequence",
        num_clips,
        gap,
        stride,
    )
    span = tuple_span(num_clips, frames, stride, gap)
    for video_frames, seed in [(span, 0), (span + 7, 1), (span + 50, 2)]:
        rng = np.random.default_rng(seed)
        clips = sequence_clip_indices(
            video_frames, spec.frames, spec.stride, spec.num_clips, spec.gap, rng
        )
        assert len(clips) == num_clips and all(len(c) == frames for c in clips)
        flat = np.concatenate(clips)
        assert (np.diff(flat) > 0).all(), "clips overlap or are out of temporal order"
        assert flat.max() < video_frames and flat.max() - flat.min() + 1 == span  # no padding
        for before, after in itertools.pairwise(clips):
            assert after[0] - before[-1] == stride + gap  # gap frames skipped (at stride 1)


def test_vcop_default_tuple_matches_the_spec_frames():
    """Spec §3.1: clip i covers [s + i(l+g), s + i(l+g) + l), S = n l + (n-1) g = 64."""
    spec = ClipOrder(StandInBackbone(frames=16)).views()
    assert tuple_span(3, 16, 1, 8) == 64
    clips = sequence_clip_indices(
        100, spec.frames, spec.stride, 3, spec.gap, np.random.default_rng(0)
    )
    s = int(clips[0][0])
    for i, clip in enumerate(clips):
        assert clip.tolist() == list(range(s + i * 24, s + i * 24 + 16))


def test_a_too_short_video_repeats_frames_so_recipes_must_avoid_it():
    """Why the CPU recipe's videos are at least one tuple span long."""
    span = tuple_span(3, 8, 1, 4)
    clips = sequence_clip_indices(span - 5, 8, 1, 3, 4, np.random.default_rng(0))
    assert (np.diff(np.concatenate(clips)) == 0).any()


def test_cpu_recipe_validates_and_its_videos_cover_a_whole_tuple(host):
    data = load_config(ROOT / "recipes" / "clip_order.yaml", [], host).data
    objective, backbone = data["objective"], data["backbone"]
    assert (objective["name"], backbone["name"]) == ("clip_order", "cnn3d_small")
    span = tuple_span(
        objective["num_clips"],
        backbone["num_frames"],
        objective["sampling_stride"],
        objective["gap"],
    )
    assert data["data"]["dataset"]["num_frames"] >= span


# ------------------------------------------------------------------------------ network


def test_the_head_pairs_slots_i_before_j_in_vcopn_order():
    head = OrderHead(num_features=8, num_clips=3, hidden_dim=16, dropout=0.5)
    assert head.pairs == [(0, 1), (0, 2), (1, 2)]
    assert head.fc7.in_features == 16 and head.fc8.in_features == 48 and head.fc8.out_features == 6
    head.eval()
    features_BND = torch.randn(2, 3, 8)
    expected_BP = head.fc8(
        torch.cat(
            [
                torch.relu(head.fc7(torch.cat([features_BND[:, i], features_BND[:, j]], 1)))
                for i, j in head.pairs
            ],
            1,
        )
    )
    torch.testing.assert_close(head(features_BND), expected_BP)


@pytest.mark.parametrize("num_clips", [2, 3, 4])
def test_a_training_step_gives_a_finite_loss_and_gradients_everywhere(num_clips):
    torch.manual_seed(0)
    objective = ClipOrder(StandInBackbone(), num_clips=num_clips, hidden_dim=16).train()
    B = 6
    batch = Batch(
        clips=[torch.randn(B, 3, 4, 16, 16) for _ in range(num_clips)],
        label=torch.zeros(B),
        index=torch.arange(B),
        keys=keys(B),
    )
    out = objective(batch)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert set(out.metrics) == {"acc"} and 0 <= out.metrics["acc"].item() <= 1
    assert not out.metrics["acc"].requires_grad
    out.loss.backward()
    for name, p in objective.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_clips": 1}, "num_clips=1: choose 2..5"),
        ({"num_clips": 6}, "num_clips=6: choose 2..5"),
        ({"dropout": -0.1}, "dropout"),
        ({"hidden_dim": 0}, "hidden_dim"),
        ({"gap": -1}, "gap"),
    ],
)
def test_bad_arguments_name_the_argument_and_the_fix(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ClipOrder(StandInBackbone(), **kwargs)
