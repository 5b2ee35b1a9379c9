"""Key frames and piecewise interpolation (spec contrastive-and-severe.md §5.7), batched.

The tubelet code (pyvrl ``dynamic_utils``) animates a quantity (an angle, a shear factor, a size,
an opacity) by drawing it at a few key frames and interpolating in between: 0-2 interior key
frames (probabilities ``key_frame_probs``) with jittered ticks, plus the first and the last frame;
each segment is linear, accelerating or decelerating. Here every series of every sample is
handled at once: key frames live in ``K = 4`` sorted slots (first, two interior, last); an unused
interior slot duplicates the first frame, which makes a zero-length segment that never shows.

Shape legend: B batch, S series per sample (e.g. one per tubelet), K key-frame slots (4),
T frames. Draws come from ``keyed_uniform`` rows, so they depend only on each sample's key.
"""

from __future__ import annotations

import torch

from vssl_core.device_constants import device_constant
from vssl_core.random import keyed_uniform

K = 4  # first frame, up to two interior key frames, last frame
SEGMENT_PROBS = (0.7, 0.15, 0.15)  # linear, accelerate, decelerate


def categorical(u: torch.Tensor, probs: tuple[float, ...]) -> torch.Tensor:
    """Category indices (long, same shape as ``u``) for uniform draws ``u`` in [0, 1)."""
    edges = device_constant(probs, u.device, torch.float64).cumsum(0)[:-1]
    return (u.unsqueeze(-1).double() >= edges).sum(-1)


def uniform_int(u: torch.Tensor, low: torch.Tensor | int, high: torch.Tensor | int):
    """Integers uniform in [low, high) from uniform draws ``u`` in [0, 1) (float tensor)."""
    return torch.floor(low + u * (high - low))


def sample_key_frames(
    keys_B: torch.Tensor, series: int, T: int, probs: tuple[float, ...], stream: int
) -> torch.Tensor:
    """Key frames [B, S, K] (float, sorted, first 0 and last T-1).

    k interior key frames with probability ``probs[k]``; tick i of k sits at floor(i T/(k+1))
    plus integer jitter U{-J, ..., J-1}, J = floor(T/(3(k+1))) (no jitter where J is 0).
    """
    if len(probs) != K - 1:
        raise ValueError(f"key_frame_probs needs 3 entries (0, 1, 2 interior), got {probs}")
    B = keys_B.shape[0]
    u_BS3 = keyed_uniform(keys_B, series * 3, stream).view(B, series, 3)
    k_BS = categorical(u_BS3[..., 0], probs).float()
    span_BS = torch.floor(T / (3 * (k_BS + 1)))
    ticks = []
    for i, u_BS in ((1, u_BS3[..., 1]), (2, u_BS3[..., 2])):
        tick_BS = torch.floor(i * T / (k_BS + 1)) + uniform_int(u_BS, -span_BS, span_BS)
        ticks.append(torch.where(k_BS >= i, tick_BS.clamp(0, T - 1), torch.zeros_like(tick_BS)))
    first_BS = torch.zeros_like(k_BS)
    kf_BSK = torch.stack((first_BS, *ticks, torch.full_like(k_BS, T - 1)), dim=-1)
    return kf_BSK.sort(dim=-1).values


def random_walk(kf_BSK: torch.Tensor, u_BSK: torch.Tensor, velocity: float) -> torch.Tensor:
    """Values [B, S, K] at the key frames: 0 at the first, then steps U(-v D, v D) where D is
    the frame gap to the previous key frame (a zero-length segment adds nothing)."""
    gap_BSK = torch.diff(kf_BSK, dim=-1, prepend=kf_BSK[..., :1])
    step_BSK = (2 * u_BSK - 1) * velocity * gap_BSK
    step_BSK[..., 0] = 0
    return step_BSK.cumsum(-1)


def hold_duplicates(kf_BSK: torch.Tensor, value_BSK: torch.Tensor) -> torch.Tensor:
    """Values with each repeated key frame given its predecessor's value (independent draws at
    one frame would otherwise make the value jump right after it)."""
    out = value_BSK.clone()
    for i in range(1, kf_BSK.shape[-1]):
        same = kf_BSK[..., i] == kf_BSK[..., i - 1]
        out[..., i] = torch.where(same, out[..., i - 1], out[..., i])
    return out


def interpolate(
    kf_BSK: torch.Tensor, value_BSK: torch.Tensor, mode_u_BSK: torch.Tensor, T: int
) -> torch.Tensor:
    """Values [B, S, T] between key frames; segment s uses ``mode_u_BSK[..., s]`` to pick
    linear (0.7), accelerate a+(b-a)f^2 (0.15) or decelerate b-(b-a)(1-f)^2 (0.15)."""
    t_T = torch.arange(T, device=kf_BSK.device, dtype=kf_BSK.dtype)
    t_BST = t_T.expand(*kf_BSK.shape[:-1], T)
    # segment of frame t: how many key frames after the first lie strictly before it
    seg_BST = (kf_BSK[..., 1:, None] < t_BST[..., None, :]).sum(-2).clamp(max=K - 2)
    lo_BST, hi_BST = kf_BSK.gather(-1, seg_BST), kf_BSK.gather(-1, seg_BST + 1)
    a_BST, b_BST = value_BSK.gather(-1, seg_BST), value_BSK.gather(-1, seg_BST + 1)
    f_BST = ((t_BST - lo_BST) / (hi_BST - lo_BST).clamp(min=1)).clamp(0, 1)
    mode_BST = categorical(mode_u_BSK, SEGMENT_PROBS).gather(-1, seg_BST)
    linear = a_BST + (b_BST - a_BST) * f_BST
    accelerate = a_BST + (b_BST - a_BST) * f_BST**2
    decelerate = b_BST - (b_BST - a_BST) * (1 - f_BST) ** 2
    return torch.where(mode_BST == 0, linear, torch.where(mode_BST == 1, accelerate, decelerate))


def animate(
    keys_B: torch.Tensor,
    kf_BSK: torch.Tensor,
    T: int,
    stream: int,
    velocity: float | None = None,
    value_range: tuple[float, float] | None = None,
) -> torch.Tensor:
    """One animated quantity per series, [B, S, T]: a random walk from 0 with ``velocity`` per
    frame, or independent draws U(value_range) at each key frame; then interpolated."""
    B, S, _ = kf_BSK.shape
    u_BS2K = keyed_uniform(keys_B, S * 2 * K, stream).view(B, S, 2, K)
    if velocity is not None:
        value_BSK = random_walk(kf_BSK, u_BS2K[:, :, 0], velocity)
    elif value_range is not None:
        low, high = value_range
        value_BSK = hold_duplicates(kf_BSK, low + (high - low) * u_BS2K[:, :, 0])
    else:
        raise ValueError("animate needs a velocity (random walk) or a value_range (draws)")
    return interpolate(kf_BSK, value_BSK, u_BS2K[:, :, 1], T)
