"""VideoMAE reconstruction targets: per-tubelet, per-channel normalized pixels.

Follows the official pretraining engine (MCG-NJU/VideoMAE ``engine_for_pretraining.py``): the
clip the model sees is un-normalized to [0, 1], cut into tubelets with pixel order (time in
tubelet, row, col), each tubelet standardized per colour channel over its pixels (unbiased
variance, eps added to the std), then flattened with the channel fastest. Unlike image MAE, the
statistics are per channel, so a per-channel affine colour change leaves the target unchanged.

Shape legend: B batch, C channels (3), T frames, H height, W width, N tubelet tokens,
Q pixels per tubelet (tubelet * patch * patch), P = Q * C target length.
"""

from collections.abc import Sequence

import torch

TARGET_EPS = 1e-6  # added to the std, not to the variance


def patchify_target(
    clip_BCTHW: torch.Tensor,
    tubelet_size: int,
    patch_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    normalize: bool = True,
) -> torch.Tensor:
    """Target [B, N, P] of a normalized clip; raw [0, 1] pixels in the same layout when
    ``normalize`` is False. Index within a token: ((p0 * patch + p1) * patch + p2) * C + c."""
    B, C, T, H, W = clip_BCTHW.shape
    if len(mean) != C or len(std) != C:
        raise ValueError(f"mean/std need {C} values (one per channel), got {mean}, {std}")
    if T % tubelet_size or H % patch_size or W % patch_size:
        raise ValueError(
            f"clip {list(clip_BCTHW.shape)} does not tile into {tubelet_size}x{patch_size}x"
            f"{patch_size} tubelets"
        )
    dtype = torch.promote_types(clip_BCTHW.dtype, torch.float32)  # statistics in >= float32
    mean_C111 = torch.tensor(mean, dtype=dtype, device=clip_BCTHW.device).view(C, 1, 1, 1)
    std_C111 = torch.tensor(std, dtype=dtype, device=clip_BCTHW.device).view(C, 1, 1, 1)
    pixels_BCTHW = clip_BCTHW.to(dtype) * std_C111 + mean_C111

    t, h, w = T // tubelet_size, H // patch_size, W // patch_size
    q = tubelet_size * patch_size * patch_size
    x = pixels_BCTHW.reshape(B, C, t, tubelet_size, h, patch_size, w, patch_size)
    # -> (B, t, h, w, p0, p1, p2, C): tokens in (t, h, w) order, pixels (p0, p1, p2), C last
    tubelets_BNQC = x.permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(B, t * h * w, q, C)
    if normalize:
        # Shift by each tubelet's first pixel first: the same mean-free values and variance, but
        # a flat tubelet (black bars, sky) gives exactly 0 instead of float32 summation noise
        # amplified by 1/eps (up to ~0.2 on a constant clip without the shift).
        tubelets_BNQC = tubelets_BNQC - tubelets_BNQC[:, :, :1]
        mu_BN1C = tubelets_BNQC.mean(dim=2, keepdim=True)
        sd_BN1C = tubelets_BNQC.var(dim=2, unbiased=True, keepdim=True).sqrt()
        tubelets_BNQC = (tubelets_BNQC - mu_BN1C) / (sd_BN1C + TARGET_EPS)
    return tubelets_BNQC.reshape(B, t * h * w, q * C)
