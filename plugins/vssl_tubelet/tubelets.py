"""Synthetic tubelets: boxes, motion, transformations, patches, alpha masks and compositing.

Follows spec contrastive-and-severe.md §5.2-5.8, i.e. the official code fmthoker/tubelet-contrast
@ 5f9a715 (``pyvrl/models/pretraining/tubeletcontrast/{tubelets,utils,tubelet_transformation}.py``,
the ``Tubelets`` transform), rewritten to run on a whole batch on the device: every draw is a
``keyed_uniform`` row of the sample's key (one stream per kind of draw), and the patches are
rendered by one ``grid_sample`` per batch instead of per-sample crops, resizes and rotations.

Rendering maps each output pixel of frame t back through the tubelet's transformation (rotation
or shear about the box centre, an "expanding canvas" in the official code, so nothing of the
patch is cut) and the resize from the frame-t box to the source box, then samples the source
frame once (bilinear) and evaluates the alpha mask analytically at the same point. Kept from the
official code: the resize of the patch and alpha to each frame's box, which squashes a patch
whose box is clipped at the frame border. Fixed: a rotated patch crossing the top or left
border is not shifted (the official code pastes the top-left sub-block there), the blend is not
truncated to uint8, and the patch is resampled once rather than resized and then rotated.

Shape legend: B batch, N tubelets per sample, C channels, T frames, H height, W width,
P trajectory points, K key-frame slots, A anchors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vssl_core.device_constants import device_constant
from vssl_core.random import keyed_uniform
from vssl_tubelet import keyframes
from vssl_tubelet.keyframes import categorical, uniform_int

MOTIONS = ("nonlinear", "linear")
TRANSFORMATIONS = ("rotation", "shear", "scale", "none")
RECTANGLE, ELLIPSE, RHOMBUS = 0, 1, 2

# one keyed_uniform stream per kind of draw, so that changing one draw's size leaves the others
S_SHAPE, S_TRAJ, S_AMP, S_LINEAR = 101, 102, 103, 104
S_SIZE_KF, S_SIZE, S_XFORM_KF, S_ROT, S_SHEAR_X, S_SHEAR_Y, S_SHEAR_MODE = range(105, 112)
S_SOURCE, S_ALPHA, S_OPACITY_KF, S_OPACITY = 112, 113, 114, 115


@dataclass(frozen=True)
class TubeletConfig:
    """Generator settings; defaults are the released Mini-Kinetics config at 112 px. Lengths
    (anchor scales, motion amplitude) are given at ``reference_size`` and scale with the crop
    (the official I3D/224 config doubles both)."""

    num_tubelets: int = 2  # num_rois
    motion: str = "nonlinear"
    transformation: str = "rotation"  # patch_transformation
    scales: tuple[float, ...] = (16, 24, 28, 32, 48, 64)
    ratios: tuple[float, ...] = (0.5, 0.67, 0.75, 1.0, 1.33, 1.50, 2.0)
    scale_jitter: float = 0.18
    num_points: int = 48  # random points of the non-linear path before smoothing
    smooth_sigma: float = 8.0  # Gaussian filter over those points
    amplitude: tuple[int, int] = (20, 90)  # path extent A ~ UniformInt[20, 90) px at 112
    key_frame_probs: tuple[float, float, float] = (0.5, 0.3, 0.2)
    rot_velocity: float = 6.0  # degrees per frame
    shear_velocity: float = 0.066  # shear factor per frame
    size_velocity: float = 1e-4  # log-size per frame (released: effectively no scaling)
    scale_velocity: float = 0.04  # log-size per frame with transformation "scale" [I]
    shape_probs: tuple[float, float, float] = (0.5, 0.35, 0.15)  # rectangle, ellipse, rhombus
    soft_edge_prob: float = 0.5
    soft_edge_range: tuple[float, float] = (0.30, 0.45)
    opacity: tuple[float, float] = (0.8, 1.0)
    reference_size: int = 112

    def __post_init__(self) -> None:
        if self.motion not in MOTIONS:
            raise ValueError(f"motion {self.motion!r}: choose one of {MOTIONS}")
        if self.transformation not in TRANSFORMATIONS:
            raise ValueError(f"transformation {self.transformation!r}: choose {TRANSFORMATIONS}")
        if self.num_tubelets < 1:
            raise ValueError(f"num_tubelets must be >= 1, got {self.num_tubelets}")


@dataclass
class Tubelets:
    """The drawn tubelets of a batch, in pasting order (decreasing mean box area, so that a
    small tubelet is not hidden under a large one). Boxes are (x1, y1, x2, y2) in pixels,
    integer-valued, clipped to the frame; ``inverse_BNT22`` maps an offset from the box centre
    in the frame to the offset in the untransformed patch (identity without rotation/shear)."""

    centers_BNT2: torch.Tensor
    boxes_BNT4: torch.Tensor
    source_BN: torch.Tensor  # frame the patch is cut from (long)
    inverse_BNT22: torch.Tensor
    shape_BN: torch.Tensor  # RECTANGLE / ELLIPSE / RHOMBUS (long)
    soft_edge_BN: torch.Tensor  # turning point tau of the soft edge, or 0.5 (no soft edge)
    opacity_BNT: torch.Tensor


# ---------------------------------------------------------------------------------- boxes


def anchors(cfg: TubeletConfig, size: int, device: torch.device) -> torch.Tensor:
    """[A, 2] (w, h) = (s sqrt(r), s / sqrt(r)) for every ratio r and scale s, scaled to size."""
    s_A = device_constant(cfg.scales, device).repeat(len(cfg.ratios))
    r_A = device_constant(cfg.ratios, device).repeat_interleave(len(cfg.scales))
    s_A = s_A * (size / cfg.reference_size)
    return torch.stack((s_A * r_A.sqrt(), s_A / r_A.sqrt()), dim=-1)


def box_shapes(keys_B: torch.Tensor, cfg: TubeletConfig, H: int, W: int) -> torch.Tensor:
    """[B, N, 2] (w, h): a uniform anchor times exp(U(-j, j)) per side, clipped to [1, side-1]."""
    B, N = keys_B.shape[0], cfg.num_tubelets
    anchors_A2 = anchors(cfg, min(H, W), keys_B.device)
    u_BN3 = keyed_uniform(keys_B, N * 3, S_SHAPE).view(B, N, 3)
    index_BN = (u_BN3[..., 0] * anchors_A2.shape[0]).long()
    jitter_BN2 = torch.exp((2 * u_BN3[..., 1:] - 1) * cfg.scale_jitter)
    wh_BN2 = anchors_A2[index_BN] * jitter_BN2
    return torch.stack((wh_BN2[..., 0].clamp(1, W - 1), wh_BN2[..., 1].clamp(1, H - 1)), -1)


# ---------------------------------------------------------------------------------- motion


def gaussian_smooth(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """scipy ``gaussian_filter1d(x, sigma, mode='reflect')`` along the last dim (truncate 4).

    A fixed-order sum over taps: each row's result is independent of the batch around it."""
    P = x.shape[-1]
    radius = int(4.0 * sigma + 0.5)
    taps = [math.exp(-0.5 * (k / sigma) ** 2) for k in range(-radius, radius + 1)]
    weights = [w / sum(taps) for w in taps]  # host floats: no device sync
    i = torch.arange(-radius, P + radius, device=x.device) % (2 * P)  # half-sample reflection
    padded = x[..., torch.where(i < P, i, 2 * P - 1 - i)]
    out = torch.zeros_like(x)
    for k, w in enumerate(weights):
        out = out + w * padded[..., k : k + P]
    return out


def nonlinear_centers(
    keys_B: torch.Tensor, cfg: TubeletConfig, T: int, H: int, W: int
) -> torch.Tensor:
    """[B, N, T, 2] integer centres along a smoothed random path spanning A px on each axis.

    ``create_traj``: P random points per axis, Gaussian-smoothed, min-max normalized, scaled by
    A ~ UniformInt[amplitude) (same A for x and y), offset by UniformInt[0, side - A), clipped
    to the frame; T of the P points are kept at round(linspace(0, P-1, T)). (The official
    code hard-codes T = 16; keeping T points of one 48-point path works for any T.)
    """
    B, N, P = keys_B.shape[0], cfg.num_tubelets, cfg.num_points
    raw_BN2P = keyed_uniform(keys_B, N * 2 * P, S_TRAJ).view(B, N, 2, P)
    smooth_BN2P = gaussian_smooth(raw_BN2P, cfg.smooth_sigma)
    low, high = smooth_BN2P.amin(-1, keepdim=True), smooth_BN2P.amax(-1, keepdim=True)
    unit_BN2P = (smooth_BN2P - low) / (high - low).clamp(min=1e-12)
    scale = min(H, W) / cfg.reference_size
    a_lo, a_hi = round(cfg.amplitude[0] * scale), round(cfg.amplitude[1] * scale)
    a_hi = max(min(a_hi, min(H, W) - 1), a_lo + 1)  # keep side - A >= 1 at tiny crops
    u_BN3 = keyed_uniform(keys_B, N * 3, S_AMP).view(B, N, 3)
    amp_BN = uniform_int(u_BN3[..., 0], a_lo, a_hi)
    side_2 = device_constant((W, H), keys_B.device, torch.float32)
    offset_BN2 = uniform_int(u_BN3[..., 1:], 0, side_2 - amp_BN[..., None])
    path_BNP2 = (amp_BN[..., None, None] * unit_BN2P + offset_BN2[..., None]).transpose(-1, -2)
    path_BNP2 = torch.minimum(path_BNP2.clamp(min=0), side_2 - 1)
    keep_T = torch.linspace(0, P - 1, T, device=keys_B.device).round().long()
    return torch.floor(path_BNP2[:, :, keep_T])


def linear_centers(
    keys_B: torch.Tensor, cfg: TubeletConfig, T: int, H: int, W: int
) -> torch.Tensor:
    """[B, N, T, 2] integer centres moving at constant velocity between a start and an end
    drawn uniformly in the frame. Reconstructed [I]: the released code has no linear mode."""
    B, N = keys_B.shape[0], cfg.num_tubelets
    u_BN22 = keyed_uniform(keys_B, N * 4, S_LINEAR).view(B, N, 2, 2)
    side_2 = device_constant((W - 1, H - 1), keys_B.device, torch.float32)
    start_BN2, end_BN2 = u_BN22[:, :, 0] * side_2, u_BN22[:, :, 1] * side_2
    f_T1 = torch.linspace(0, 1, T, device=keys_B.device).view(T, 1)
    return torch.floor(start_BN2[:, :, None] + (end_BN2 - start_BN2)[:, :, None] * f_T1)


def sizes_over_time(
    keys_B: torch.Tensor, wh_BN2: torch.Tensor, cfg: TubeletConfig, T: int
) -> torch.Tensor:
    """[B, N, T, 2] box sizes: (w, h) times exp of a key-frame random walk per side with
    ``size_velocity`` (``scale_velocity`` for the "scale" transformation); key frames shared
    by all tubelets of a sample."""
    B, N = wh_BN2.shape[:2]
    velocity = cfg.scale_velocity if cfg.transformation == "scale" else cfg.size_velocity
    kf_B1K = keyframes.sample_key_frames(keys_B, 1, T, cfg.key_frame_probs, S_SIZE_KF)
    kf_BSK = kf_B1K.expand(B, N * 2, -1)
    log_BST = keyframes.animate(keys_B, kf_BSK, T, S_SIZE, velocity=velocity)
    return wh_BN2[:, :, None] * torch.exp(log_BST.view(B, N, 2, T).transpose(-1, -2))


def boxes_from(centers_BNT2: torch.Tensor, wh_BNT2: torch.Tensor, H: int, W: int):
    """[B, N, T, 4] (x1, y1, x2, y2) = round(c -+ s/2), clipped to the frame, at least 1 px."""
    side_2 = device_constant((W, H), centers_BNT2.device, centers_BNT2.dtype)
    lo = torch.minimum(torch.round(centers_BNT2 - wh_BNT2 / 2).clamp(min=0), side_2 - 1)
    hi = torch.maximum(torch.minimum(torch.round(centers_BNT2 + wh_BNT2 / 2), side_2), lo + 1)
    return torch.cat((lo, hi), dim=-1)


# ---------------------------------------------------------------------------- transformation


def inverse_transforms(keys_B: torch.Tensor, cfg: TubeletConfig, T: int) -> torch.Tensor:
    """[B, N, T, 2, 2] inverse linear maps (frame offset -> patch offset) per frame.

    rotation: theta from 0 by a key-frame random walk of ``rot_velocity`` deg/frame, truncated
    to whole degrees, clockwise on screen for positive theta (``imutils.rotate_bound``).
    shear: x and y factor walks of ``shear_velocity``/frame and a mode in {x, y, xy} drawn once
    per sample; xy shears x first, then y. Key frames are shared by a sample's tubelets.
    """
    B, N, dev = keys_B.shape[0], cfg.num_tubelets, keys_B.device
    eye_BNT22 = torch.eye(2, device=dev).expand(B, N, T, 2, 2)
    if cfg.transformation not in ("rotation", "shear"):
        return eye_BNT22.clone()
    kf_BNK = keyframes.sample_key_frames(keys_B, 1, T, cfg.key_frame_probs, S_XFORM_KF)
    kf_BNK = kf_BNK.expand(B, N, -1)
    if cfg.transformation == "rotation":
        deg_BNT = keyframes.animate(keys_B, kf_BNK, T, S_ROT, velocity=cfg.rot_velocity).trunc()
        rad_BNT = deg_BNT * (math.pi / 180)
        cos, sin = rad_BNT.cos(), rad_BNT.sin()
        return torch.stack((torch.stack((cos, sin), -1), torch.stack((-sin, cos), -1)), -2)
    fx_BNT = keyframes.animate(keys_B, kf_BNK, T, S_SHEAR_X, velocity=cfg.shear_velocity)
    fy_BNT = keyframes.animate(keys_B, kf_BNK, T, S_SHEAR_Y, velocity=cfg.shear_velocity)
    mode_B = categorical(keyed_uniform(keys_B, 1, S_SHEAR_MODE)[:, 0], (1 / 3, 1 / 3, 1 / 3))
    fx_BNT = fx_BNT * (mode_B != 1).view(B, 1, 1)  # mode 0: x only, 1: y only, 2: both
    fy_BNT = fy_BNT * (mode_B != 0).view(B, 1, 1)
    one = torch.ones_like(fx_BNT)
    forward_BNT22 = torch.stack(  # [[1, 0], [fy, 1]] @ [[1, fx], [0, 1]]
        (torch.stack((one, fx_BNT), -1), torch.stack((fy_BNT, fx_BNT * fy_BNT + 1), -1)), -2
    )
    return torch.linalg.inv(forward_BNT22)


# -------------------------------------------------------------------------------- drawing


def sample_tubelets(keys_B: torch.Tensor, cfg: TubeletConfig, T: int, H: int, W: int) -> Tubelets:
    """Draw every tubelet parameter of a batch from the samples' keys (nothing from pixels)."""
    B, N, dev = keys_B.shape[0], cfg.num_tubelets, keys_B.device
    keys_B = keys_B.to(torch.int64)
    motion = nonlinear_centers if cfg.motion == "nonlinear" else linear_centers
    centers_BNT2 = motion(keys_B, cfg, T, H, W)
    wh_BNT2 = sizes_over_time(keys_B, box_shapes(keys_B, cfg, H, W), cfg, T)
    boxes_BNT4 = boxes_from(centers_BNT2, wh_BNT2, H, W)

    u_BN = keyed_uniform(keys_B, N, S_SOURCE)
    source_BN = (u_BN * T).long()
    u_BN3 = keyed_uniform(keys_B, N * 3, S_ALPHA).view(B, N, 3)
    shape_BN = categorical(u_BN3[..., 0], cfg.shape_probs)
    lo, hi = cfg.soft_edge_range
    tau_BN = lo + (hi - lo) * u_BN3[..., 2]
    soft_edge_BN = torch.where(u_BN3[..., 1] < cfg.soft_edge_prob, tau_BN, 0.5)
    kf_BNK = keyframes.sample_key_frames(keys_B, N, T, cfg.key_frame_probs, S_OPACITY_KF)
    opacity_BNT = keyframes.animate(keys_B, kf_BNK, T, S_OPACITY, value_range=cfg.opacity)

    size_BNT2 = boxes_BNT4[..., 2:] - boxes_BNT4[..., :2]
    area_BN = size_BNT2.mean(dim=2).prod(dim=-1)
    order_BN = torch.argsort(area_BN, dim=1, descending=True, stable=True)
    drawn = Tubelets(
        centers_BNT2=centers_BNT2,
        boxes_BNT4=boxes_BNT4,
        source_BN=source_BN.to(dev),
        inverse_BNT22=inverse_transforms(keys_B, cfg, T),
        shape_BN=shape_BN,
        soft_edge_BN=soft_edge_BN,
        opacity_BNT=opacity_BNT,
    )
    return Tubelets(**{k: _take(v, order_BN) for k, v in drawn.__dict__.items()})


def _take(x_BN: torch.Tensor, order_BN: torch.Tensor) -> torch.Tensor:
    """Rows of dim 1 in ``order_BN`` (any trailing dims)."""
    index = order_BN.view(*order_BN.shape, *([1] * (x_BN.ndim - 2))).expand_as(x_BN)
    return x_BN.gather(1, index)


# ------------------------------------------------------------------------------ rendering


def base_alpha(tub: Tubelets, src_box_BN4: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """``pick_alphas``' base mask [B, N, H, W] on the source frame's pixel grid (meaningful
    inside the source box, where ``render`` reads it).

    Box pixel (i, j) of a w x h box is at dx = |i - floor((w-1)/2)| / w, dy likewise; rectangle:
    all ones (edge distance max(dx, dy)); ellipse: sqrt(dx^2+dy^2) < 0.5; rhombus: dx+dy < 0.5.
    A soft edge multiplies by clip((0.5 - d) / (0.5 - tau), 0, 1) (tau = 0.5: hard edge)."""
    dev, dtype = src_box_BN4.device, src_box_BN4.dtype
    sx1, sy1, sx2, sy2 = (c[:, :, None, None] for c in src_box_BN4.unbind(-1))
    w, h = sx2 - sx1, sy2 - sy1
    x_W = torch.arange(W, device=dev, dtype=dtype)
    y_H1 = torch.arange(H, device=dev, dtype=dtype).view(H, 1)
    dx = (x_W - sx1 - torch.floor((w - 1) / 2)).abs() / w  # [B, N, 1, W]
    dy = (y_H1 - sy1 - torch.floor((h - 1) / 2)).abs() / h  # [B, N, H, 1]
    shape = tub.shape_BN[:, :, None, None]
    dist = torch.where(
        shape == RECTANGLE,
        torch.maximum(dx, dy),
        torch.where(shape == ELLIPSE, torch.sqrt(dx * dx + dy * dy), dx + dy),
    )
    base = ((shape == RECTANGLE) | (dist < 0.5)).to(dtype)
    tau = tub.soft_edge_BN[:, :, None, None].to(dtype)
    soft = ((0.5 - dist) / (0.5 - tau).clamp(min=1e-6)).clamp(0, 1)
    return base * torch.where(tau < 0.5, soft, torch.ones_like(soft))


def render(source_BCTHW: torch.Tensor, tub: Tubelets) -> tuple[torch.Tensor, torch.Tensor]:
    """Patches [B, N, C, T, H, W] and alphas [B, N, T, H, W] on the full frame.

    The patch of tubelet n is the source clip's frame ``source_BN`` cut at that frame's box,
    resized to every frame's box and transformed about the box centre (``pick_patches`` plus
    ``patch_transformation``); its alpha is the base mask resized and transformed alike, times
    the frame's opacity, and 0 outside the patch. One bilinear lookup per pixel of [RGB, alpha];
    lookups are clamped to the source box, as a resize of the cropped patch reads nothing
    outside it.

    Cost: every full-size tensor is built from a row part [.., 1, W] plus a column part
    [.., H, 1] (the map is affine), so it takes one add, not a chain of full-size ops."""
    B, C, T, H, W = source_BCTHW.shape
    N = tub.boxes_BNT4.shape[1]
    dtype, dev = source_BCTHW.dtype, source_BCTHW.device
    boxes = tub.boxes_BNT4.to(dtype)
    x1, y1, x2, y2 = (boxes[..., i, None, None] for i in range(4))  # [B, N, T, 1, 1]
    src_box_BN4 = boxes.gather(2, tub.source_BN[:, :, None, None].expand(B, N, 1, 4))[:, :, 0]

    # offsets of pixel centres from the box centre, mapped into the patch, in box units:
    # (u - 1/2, v - 1/2) = inverse @ (dx, dy) / (w, h); the patch is where both are in +-1/2
    dx = torch.arange(W, device=dev, dtype=dtype) + 0.5 - (x1 + x2) / 2  # [B, N, T, 1, W]
    dy = torch.arange(H, device=dev, dtype=dtype).view(H, 1) + 0.5 - (y1 + y2) / 2
    m = tub.inverse_BNT22.to(dtype)[..., None, None]  # [B, N, T, 2, 2, 1, 1]
    w_t, h_t = x2 - x1, y2 - y1
    u_half = m[..., 0, 0, :, :] / w_t * dx + m[..., 0, 1, :, :] / w_t * dy  # [B, N, T, H, W]
    v_half = m[..., 1, 0, :, :] / h_t * dx + m[..., 1, 1, :, :] / h_t * dy

    # source pixel of (u, v): x1_j + u w_j (edges) as an align_corners=False grid coordinate,
    # clamped to the centres of the source box's first and last pixels
    sx1, sy1, sx2, sy2 = (c[:, :, None, None, None] for c in src_box_BN4.unbind(-1))
    gx = torch.addcmul((sx1 + sx2) / W - 1, 2 * (sx2 - sx1) / W, u_half)
    gy = torch.addcmul((sy1 + sy2) / H - 1, 2 * (sy2 - sy1) / H, v_half)
    gx = gx.clamp_((2 * sx1 + 1) / W - 1, (2 * sx2 - 1) / W - 1)
    gy = gy.clamp_((2 * sy1 + 1) / H - 1, (2 * sy2 - 1) / H - 1)
    grid = torch.stack((gx, gy), dim=-1).view(B * N, T * H, W, 2)
    index = tub.source_BN[:, :, None, None, None].expand(B, N, C, H, W)
    src_BNCHW = source_BCTHW.transpose(1, 2).gather(1, index)
    rgba_BN4HW = torch.cat((src_BNCHW, base_alpha(tub, src_box_BN4, H, W).unsqueeze(2)), 2)
    out = F.grid_sample(
        rgba_BN4HW.view(B * N, C + 1, H, W),
        grid,
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    ).view(B, N, C + 1, T, H, W)
    inside = (u_half.abs() < 0.5) & (v_half.abs() < 0.5)
    alpha_BNTHW = out[:, :, C] * inside * tub.opacity_BNT[..., None, None].to(dtype)
    return out[:, :, :C], alpha_BNTHW


def composite(
    background_BCTHW: torch.Tensor, patch_BNCTHW: torch.Tensor, alpha_BNTHW: torch.Tensor
) -> torch.Tensor:
    """Paste tubelets 0, 1, ..., N-1 in turn: I <- I (1 - a) + patch a (``torch.lerp``).
    Exact where a is 0 (I kept) and where a is 1 (the patch)."""
    B, N = patch_BNCTHW.shape[:2]
    assert patch_BNCTHW.shape[2:] == background_BCTHW.shape[1:], (
        f"patches {list(patch_BNCTHW.shape)} vs background {list(background_BCTHW.shape)}"
    )
    assert alpha_BNTHW.shape == (B, N, *background_BCTHW.shape[2:]), (
        f"alphas {list(alpha_BNTHW.shape)} for patches {list(patch_BNCTHW.shape)}"
    )
    out = background_BCTHW
    for n in range(N):
        out = torch.lerp(out, patch_BNCTHW[:, n], alpha_BNTHW[:, n].unsqueeze(1))
    return out


def overlay_pair(
    query_bg_BCTHW: torch.Tensor,
    key_bg_BCTHW: torch.Tensor,
    keys_B: torch.Tensor,
    cfg: TubeletConfig,
) -> tuple[torch.Tensor, torch.Tensor, Tubelets]:
    """The positive pair: the same tubelets (cut from the query clip) pasted identically on the
    query background and on the key background; returns (query, key, tubelets)."""
    assert query_bg_BCTHW.shape == key_bg_BCTHW.shape, (
        f"query {list(query_bg_BCTHW.shape)} vs key {list(key_bg_BCTHW.shape)}"
    )
    B, _, T, H, W = query_bg_BCTHW.shape
    assert keys_B.shape == (B,), f"keys {list(keys_B.shape)} for a batch of {B}"
    tub = sample_tubelets(keys_B.to(query_bg_BCTHW.device), cfg, T, H, W)
    patch_BNCTHW, alpha_BNTHW = render(query_bg_BCTHW, tub)
    query = composite(query_bg_BCTHW, patch_BNCTHW, alpha_BNTHW)
    key = composite(key_bg_BCTHW, patch_BNCTHW, alpha_BNTHW)
    return query, key, tub
