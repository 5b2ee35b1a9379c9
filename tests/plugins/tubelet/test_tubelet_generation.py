"""Tubelet generation (spec contrastive-and-severe.md §5.2-5.8): boxes, paths, key frames,
transformations, patches, alpha masks, compositing, shared colour jitter.

Shape legend: B batch, N tubelets, C channels, T frames, H height, W width, K key-frame slots.
"""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from vssl_tubelet import keyframes
from vssl_tubelet.color import hsv_to_rgb, rgb_to_hsv, shared_color_jitter
from vssl_tubelet.tubelets import (
    RECTANGLE,
    TubeletConfig,
    Tubelets,
    anchors,
    box_shapes,
    composite,
    gaussian_smooth,
    overlay_pair,
    render,
    sample_tubelets,
)

from vssl_core.interfaces import IMAGENET_MEAN, IMAGENET_STD
from vssl_core.random import sample_key

TRANSFORMS = ("rotation", "shear", "scale", "none")
# opaque, hard-edged rectangles: alpha is exactly 1 inside every untransformed box
OPAQUE = TubeletConfig(shape_probs=(1.0, 0.0, 0.0), soft_edge_prob=0.0, opacity=(1.0, 1.0))


def keys(n: int, seed: int = 0) -> torch.Tensor:
    return torch.tensor([sample_key(seed, 0, i) for i in range(n)], dtype=torch.int64)


def clips(b: int, t: int = 8, s: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, 3, t, s, s, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------ box shapes


def test_anchors_are_the_42_scale_ratio_pairs_and_scale_with_the_crop():
    wh_A2 = anchors(TubeletConfig(), 112, torch.device("cpu"))
    assert wh_A2.shape == (42, 2)
    area = sorted({round(float(a), 1) for a in wh_A2.prod(-1)})
    assert area == [s * s for s in (16.0, 24.0, 28.0, 32.0, 48.0, 64.0)]
    assert torch.allclose(anchors(TubeletConfig(), 224, torch.device("cpu")), 2 * wh_A2)


def test_box_shapes_are_jittered_anchors_inside_the_frame():
    cfg = TubeletConfig()
    wh_BN2 = box_shapes(keys(500), cfg, 112, 112)
    assert wh_BN2.shape == (500, 2, 2)
    assert wh_BN2.min() >= 1 and wh_BN2.max() <= 111
    # every side is some anchor side times exp(U(-0.18, 0.18))
    sides = torch.tensor(
        [s * math.sqrt(r) for s in cfg.scales for r in cfg.ratios]
        + [s / math.sqrt(r) for s in cfg.scales for r in cfg.ratios]
    )
    ratio = (wh_BN2.reshape(-1, 1) / sides).log().abs().min(dim=1).values
    assert ratio.max() <= 0.18 + 1e-5


# ------------------------------------------------------------------------------ motion


def test_gaussian_smooth_matches_a_reflect_padded_convolution():
    x = np.random.default_rng(0).random((3, 48))
    radius = int(4 * 8 + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / 8.0) ** 2)
    taps /= taps.sum()
    ref = np.stack([np.convolve(np.pad(r, radius, mode="symmetric"), taps, "valid") for r in x])
    assert np.allclose(gaussian_smooth(torch.from_numpy(x), 8.0).numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("motion", ["nonlinear", "linear"])
@pytest.mark.parametrize("T, size", [(16, 112), (4, 32), (8, 64)])
def test_paths_and_boxes_stay_inside_the_frame_on_every_frame(motion, T, size):
    cfg = TubeletConfig(motion=motion)
    tub = sample_tubelets(keys(200), cfg, T, size, size)
    c = tub.centers_BNT2
    assert c.shape == (200, 2, T, 2) and torch.equal(c, c.floor())
    assert c.min() >= 0 and c.max() <= size - 1  # the centre never leaves the frame
    b = tub.boxes_BNT4
    assert b.min() >= 0 and b.max() <= size and torch.equal(b, b.round())
    assert (b[..., 2:] > b[..., :2]).all()  # clipped at the border but never empty


def test_nonlinear_paths_span_at_most_the_drawn_amplitude():
    tub = sample_tubelets(keys(300), TubeletConfig(), 16, 112, 112)
    span_BN2 = tub.centers_BNT2.amax(2) - tub.centers_BNT2.amin(2)
    assert span_BN2.max() <= 89  # A ~ UniformInt[20, 90) at 112 px
    assert span_BN2.amax(-1).min() >= 10  # 16 of 48 points of a path spanning >= 20 px
    steps = tub.centers_BNT2.diff(dim=2).abs()
    assert not (steps == 0).all()  # they move


def test_linear_paths_have_constant_velocity():
    c = sample_tubelets(keys(100), TubeletConfig(motion="linear"), 16, 112, 112).centers_BNT2
    assert c.diff(dim=2).diff(dim=2).abs().max() <= 1  # up to the integer rounding


# ------------------------------------------------------------------------------ key frames


def test_key_frames_are_sorted_and_start_and_end_the_clip():
    kf_BSK = keyframes.sample_key_frames(keys(4000), 1, 16, (0.5, 0.3, 0.2), stream=7)
    assert kf_BSK.shape == (4000, 1, 4)
    assert (kf_BSK[..., 0] == 0).all() and (kf_BSK[..., -1] == 15).all()
    assert (kf_BSK.diff(dim=-1) >= 0).all()
    interior = (kf_BSK[..., 1:3] > 0).sum(-1).flatten()
    freq = torch.bincount(interior, minlength=3).float() / 4000
    assert torch.allclose(freq, torch.tensor([0.5, 0.3, 0.2]), atol=0.03)
    kf_BK = kf_BSK[:, 0]
    one = kf_BK[interior == 1][:, -2]  # floor(16/2) + U{-2..1}
    assert one.min() == 6 and one.max() == 9
    two = kf_BK[interior == 2][:, 1:3]  # floor(16/3) + U{-1, 0}, floor(32/3) + U{-1, 0}
    assert set(two[:, 0].tolist()) == {4.0, 5.0} and set(two[:, 1].tolist()) == {9.0, 10.0}


def test_rotation_starts_at_zero_and_turns_at_most_6_degrees_per_frame():
    tub = sample_tubelets(keys(300), TubeletConfig(), 16, 112, 112)
    m = tub.inverse_BNT22
    deg_BNT = torch.rad2deg(torch.atan2(m[..., 0, 1], m[..., 0, 0]))
    assert torch.allclose(m @ m.transpose(-1, -2), torch.eye(2).expand_as(m), atol=1e-5)
    assert (deg_BNT[:, :, 0] == 0).all()
    assert torch.allclose(deg_BNT, deg_BNT.round(), atol=1e-3)  # whole degrees
    assert deg_BNT.abs().max() <= 6 * 15  # a walk of 6 deg/frame over 15 frames
    assert deg_BNT[:, :, -1].abs().max() > 60  # the walk reaches large angles


def test_interpolation_hits_the_key_values_and_stays_between_them():
    kf_BSK = torch.tensor([[[0.0, 5.0, 10.0, 15.0]]])
    value_BSK = torch.tensor([[[0.0, 10.0, -5.0, 3.0]]])
    for mode in (0.0, 0.75, 0.9):  # linear, accelerate, decelerate
        out_T = keyframes.interpolate(kf_BSK, value_BSK, torch.full((1, 1, 4), mode), 16)[0, 0]
        assert out_T[[0, 5, 10, 15]].tolist() == [0.0, 10.0, -5.0, 3.0]
        assert out_T[:6].min() >= 0 and out_T[:6].max() <= 10
    linear_T = keyframes.interpolate(kf_BSK, value_BSK, torch.zeros(1, 1, 4), 16)[0, 0]
    assert linear_T[:6].tolist() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]


# ------------------------------------------------------------------------------ randomness


@pytest.mark.parametrize("transformation", TRANSFORMS)
def test_draws_depend_only_on_the_key_not_the_batch_position(transformation):
    cfg = TubeletConfig(transformation=transformation)
    k = keys(6)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    a, b = sample_tubelets(k, cfg, 8, 32, 32), sample_tubelets(k[perm], cfg, 8, 32, 32)
    alone = sample_tubelets(k[2:3], cfg, 8, 32, 32)
    for name in Tubelets.__dataclass_fields__:
        x = getattr(a, name)
        assert torch.equal(x[perm], getattr(b, name)), name
        assert torch.equal(x[2:3], getattr(alone, name)), name
    source = clips(6)
    patch_a, alpha_a = render(source, a)
    patch_b, alpha_b = render(source[perm], b)
    assert torch.equal(patch_a[perm], patch_b) and torch.equal(alpha_a[perm], alpha_b)


def test_different_keys_give_different_tubelets():
    tub = sample_tubelets(keys(2), TubeletConfig(), 8, 32, 32)
    assert not torch.equal(tub.boxes_BNT4[0], tub.boxes_BNT4[1])


# ------------------------------------------------------------------------------ rendering


def test_the_patch_is_cut_from_the_source_clip_at_the_source_frame():
    cfg = replace(OPAQUE, transformation="none")
    source = clips(32, t=8, s=64)
    tub = sample_tubelets(keys(32), cfg, 8, 64, 64)
    patch_BNCTHW, alpha_BNTHW = render(source, tub)
    checked = 0
    for b in range(32):
        for n in range(2):
            j = int(tub.source_BN[b, n])
            x1, y1, x2, y2 = (int(v) for v in tub.boxes_BNT4[b, n, j])
            src = source[b, :, j, y1:y2, x1:x2]
            for t in range(8):  # every frame whose box has the source box's size
                tx1, ty1, tx2, ty2 = (int(v) for v in tub.boxes_BNT4[b, n, t])
                if (tx2 - tx1, ty2 - ty1) != (x2 - x1, y2 - y1):
                    continue
                got = patch_BNCTHW[b, n, :, t, ty1:ty2, tx1:tx2]
                assert torch.allclose(got, src, atol=1e-4), (b, n, t)
                assert (alpha_BNTHW[b, n, t, ty1:ty2, tx1:tx2] == 1).all()
                checked += 1
    assert checked >= 64


def test_a_90_degree_rotation_turns_the_patch_clockwise():
    source = torch.arange(3 * 16 * 16, dtype=torch.float32).view(1, 3, 1, 16, 16)
    theta = torch.tensor(math.pi / 2)
    inverse = torch.tensor([[theta.cos(), theta.sin()], [-theta.sin(), theta.cos()]])
    tub = Tubelets(
        centers_BNT2=torch.tensor([[[[8.0, 8.0]]]]),
        boxes_BNT4=torch.tensor([[[[4.0, 6.0, 12.0, 14.0]]]]),  # 8 x 8, centre (8, 10)
        source_BN=torch.tensor([[0]]),
        inverse_BNT22=inverse.view(1, 1, 1, 2, 2),
        shape_BN=torch.tensor([[RECTANGLE]]),
        soft_edge_BN=torch.tensor([[0.5]]),
        opacity_BNT=torch.ones(1, 1, 1),
    )
    patch, alpha = render(source, tub)
    src = source[0, :, 0, 6:14, 4:12]
    assert torch.allclose(patch[0, 0, :, 0, 6:14, 4:12], torch.rot90(src, k=-1, dims=(1, 2)))
    assert alpha[0, 0, 0, 6:14, 4:12].eq(1).all() and alpha.sum() == 64


@pytest.mark.parametrize("transformation", TRANSFORMS)
def test_alpha_is_in_0_1_and_zero_far_from_the_box(transformation):
    tub = sample_tubelets(keys(16), TubeletConfig(transformation=transformation), 8, 64, 64)
    _, alpha_BNTHW = render(clips(16, s=64), tub)
    assert alpha_BNTHW.min() >= 0 and alpha_BNTHW.max() <= 1
    b = tub.boxes_BNT4
    half_diag = ((b[..., 2:] - b[..., :2]) ** 2).sum(-1).sqrt() / 2  # rotation stays within it
    # shear by up to |f| <= 0.066 * 15 stretches further; test its bound
    reach_BNT = half_diag * (2.0 if transformation == "shear" else 1.0) + 1.5
    ys, xs = torch.meshgrid(torch.arange(64) + 0.5, torch.arange(64) + 0.5, indexing="ij")
    centre = (b[..., :2] + b[..., 2:]) / 2
    dist = ((xs - centre[..., 0, None, None]) ** 2 + (ys - centre[..., 1, None, None]) ** 2).sqrt()
    assert (alpha_BNTHW[dist > reach_BNT[..., None, None]] == 0).all()


def test_default_masks_mix_shapes_soft_edges_and_opacity():
    tub = sample_tubelets(keys(2000), TubeletConfig(), 16, 112, 112)
    freq = torch.bincount(tub.shape_BN.flatten(), minlength=3).float() / 4000
    assert torch.allclose(freq, torch.tensor([0.5, 0.35, 0.15]), atol=0.03)
    soft = tub.soft_edge_BN < 0.5
    assert abs(soft.float().mean() - 0.5) < 0.03
    assert tub.soft_edge_BN[soft].min() >= 0.3 and tub.soft_edge_BN[soft].max() < 0.45
    assert tub.opacity_BNT.min() >= 0.8 and tub.opacity_BNT.max() <= 1.0


# ------------------------------------------------------------------------------ compositing


def test_composite_is_exact_where_alpha_is_1_and_untouched_where_0():
    bg = clips(2, t=2, s=8)
    patch = clips(4, t=2, s=8, seed=1).view(2, 2, 3, 2, 8, 8)
    alpha = torch.rand(2, 2, 2, 8, 8, generator=torch.Generator().manual_seed(2))
    alpha[alpha < 0.3] = 0.0
    alpha[alpha > 0.7] = 1.0
    out = composite(bg, patch, alpha)
    a_bottom, a_top = alpha[:, 0].unsqueeze(1), alpha[:, 1].unsqueeze(1)  # pasted 0 then 1
    one = (a_top == 1).expand_as(bg)
    assert torch.equal(out[one], patch[:, 1][one])
    none = ((a_top == 0) & (a_bottom == 0)).expand_as(bg)
    assert torch.equal(out[none], bg[none])
    blend = bg * (1 - a_bottom) + patch[:, 0] * a_bottom
    assert torch.allclose(out, blend * (1 - a_top) + patch[:, 1] * a_top, atol=1e-6)


def test_tubelets_come_in_pasting_order_largest_first():
    tub = sample_tubelets(keys(64), TubeletConfig(num_tubelets=4), 8, 64, 64)
    size = tub.boxes_BNT4[..., 2:] - tub.boxes_BNT4[..., :2]
    area_BN = size.mean(2).prod(-1)
    assert (area_BN[:, :-1] >= area_BN[:, 1:]).all()


@pytest.mark.parametrize("transformation", TRANSFORMS)
def test_both_clips_carry_identical_tubelets(transformation):
    cfg = replace(OPAQUE, transformation=transformation)
    q_bg, k_bg = clips(8, s=64), clips(8, s=64, seed=1)
    query, key, tub = overlay_pair(q_bg, k_bg, keys(8), cfg)
    same_q, same_k, _ = overlay_pair(q_bg, q_bg.clone(), keys(8), cfg)
    assert torch.equal(same_q, same_k)  # same background: the two clips are equal
    patch, alpha = render(q_bg, tub)
    covered = (alpha == 1).any(1, keepdim=True).expand_as(query)
    assert covered.sum() > 0
    assert torch.equal(query[covered], key[covered])  # tubelet pixels match on every frame
    # elsewhere the difference is the backgrounds' seen through both alphas
    through = torch.ones_like(alpha[:, 0])
    for n in range(alpha.shape[1]):
        through = through * (1 - alpha[:, n])
    assert torch.allclose(query - key, (q_bg - k_bg) * through.unsqueeze(1), atol=1e-5)
    assert torch.equal(
        query[~covered & (through.unsqueeze(1) == 1).expand_as(query)],
        q_bg[~covered & (through.unsqueeze(1) == 1).expand_as(query)],
    )


# ------------------------------------------------------------------------------ colour


def test_hsv_round_trip():
    rgb = torch.rand(2, 3, 2, 5, 5, generator=torch.Generator().manual_seed(0))
    hsv = rgb_to_hsv(rgb)
    assert hsv.min() >= 0 and hsv.max() <= 1
    assert torch.allclose(hsv_to_rgb(hsv), rgb, atol=1e-6)


def test_colour_jitter_is_shared_by_both_clips_and_keyed():
    x = clips(64, t=2, s=8)
    q, k = shared_color_jitter([x, x.clone()], keys(64), IMAGENET_MEAN, IMAGENET_STD)
    assert torch.equal(q, k)
    changed = (q != x).flatten(1).any(1)
    assert 0.25 < changed.float().mean() < 0.75  # 1 - 0.8^3 = 0.49 of the samples
    assert torch.equal(q[~changed], x[~changed])  # untouched samples are bit-exact
    mean_3, std_3 = (torch.tensor(v).view(1, 3, 1, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
    pixels = q[changed] * std_3 + mean_3  # jittered values are clipped to [0, 255] / 255
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    again = shared_color_jitter([x[5:6]], keys(64)[5:6], IMAGENET_MEAN, IMAGENET_STD)[0]
    assert torch.allclose(again, q[5:6], atol=1e-6)


def test_compiled_jitter_path_equals_the_eager_subset_path():
    """Inside torch.compile the jitter runs on every sample and keeps it where drawn (no
    data-dependent shapes); it must give the eager path's numbers."""
    from vssl_tubelet.color import S_COLOR, _jitter_every_sample

    from vssl_core.random import keyed_uniform

    x = clips(64, t=2, s=8)
    eager = shared_color_jitter([x, x * 0.5], keys(64), IMAGENET_MEAN, IMAGENET_STD)
    u_B7 = keyed_uniform(keys(64), 7, S_COLOR)
    dense = _jitter_every_sample([x, x * 0.5], u_B7, IMAGENET_MEAN, IMAGENET_STD)
    for a, b in zip(eager, dense, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert not torch.equal(eager[0], x)  # some samples were jittered
    # bf16 clips (autocast training) stay bf16 on both paths, within bf16 rounding
    half = x.bfloat16()
    eager = shared_color_jitter([half], keys(64), IMAGENET_MEAN, IMAGENET_STD)[0]
    dense = _jitter_every_sample([half], u_B7.bfloat16(), IMAGENET_MEAN, IMAGENET_STD)[0]
    assert eager.dtype == dense.dtype == torch.bfloat16
    torch.testing.assert_close(eager.float(), dense.float(), rtol=0, atol=0.05)
