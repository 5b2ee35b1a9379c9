"""Photometric jitter shared by both clips of a tubelet pair (spec contrastive-and-severe.md §5.1
step 3.2; pyvrl ``transforms/color.py`` as configured in tubelet-contrast's ``transform_cfg_2``).

Each with probability 0.2, in this order and on 0-255 pixel values: brightness + U(-32, 32),
contrast x exp(U(-0.2, 0.2)), then hue + U(-12, 12) OpenCV units (x2 degrees) and saturation
x exp(U(-0.1, 0.1)) in HSV; values clipped to [0, 255]. The same draw applies to every frame of
both clips of a sample, so identical pixels stay identical. Deviation: hue wraps around the
colour circle (the official uint8 round trip clips it at 179).

Shape legend: B batch, C channels (RGB), T frames, H height, W width.
"""

from __future__ import annotations

import torch

from vssl_core.device_constants import device_constant
from vssl_core.random import keyed_uniform

S_COLOR = 121
PROB, BRIGHTNESS, CONTRAST, HUE_DEG, SATURATION = 0.2, 32.0, 0.2, 24.0, 0.1


def rgb_to_hsv(rgb_BCTHW: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> (hue in [0, 1), saturation, value), channel dim 1."""
    r, g, b = rgb_BCTHW.unbind(1)
    value, argmax = rgb_BCTHW.max(dim=1)
    chroma = value - rgb_BCTHW.min(dim=1).values
    safe = chroma.clamp(min=1e-12)
    hue = torch.where(
        argmax == 0,
        ((g - b) / safe) % 6,
        torch.where(argmax == 1, (b - r) / safe + 2, (r - g) / safe + 4),
    )
    hue = torch.where(chroma > 0, hue / 6, torch.zeros_like(hue))
    saturation = torch.where(value > 0, chroma / value.clamp(min=1e-12), torch.zeros_like(value))
    return torch.stack((hue, saturation, value), dim=1)


def hsv_to_rgb(hsv_BCTHW: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hsv` (hue taken modulo 1)."""
    hue, saturation, value = hsv_BCTHW.unbind(1)
    n_3 = device_constant((5.0, 3.0, 1.0), hsv_BCTHW.device).view(1, 3, 1, 1, 1)
    k = (n_3 + hue.unsqueeze(1) * 6) % 6
    ramp = torch.minimum(k, 4 - k).clamp(0, 1)
    return value.unsqueeze(1) * (1 - saturation.unsqueeze(1) * ramp)


def shared_color_jitter(
    clips: list[torch.Tensor],
    keys_B: torch.Tensor,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
) -> list[torch.Tensor]:
    """Apply one keyed jitter draw per sample to every clip in ``clips`` (normalized
    [B, 3, T, H, W] tensors, returned normalized; samples drawing no jitter are untouched)."""
    B = keys_B.shape[0]
    dev, dtype = clips[0].device, clips[0].dtype
    u_B7 = keyed_uniform(keys_B.to(dev), 7, S_COLOR).to(dtype)
    for clip_BCTHW in clips:
        assert clip_BCTHW.shape[:2] == (B, 3), f"clip {list(clip_BCTHW.shape)} for {B} samples"
    if torch.compiler.is_compiling():
        return _jitter_every_sample(clips, u_B7, mean, std)
    rows = (u_B7[:, :3] < PROB).any(dim=1).nonzero().flatten()  # ~half the samples
    if rows.numel() == 0:
        return list(clips)
    draw = _Draw(u_B7[rows], mean, std)
    hs = draw.on_hs.flatten().nonzero().flatten()
    out = []
    for clip_BCTHW in clips:
        x = draw.brightness_contrast(clip_BCTHW[rows] * draw.std_3 + draw.mean_3)
        if hs.numel():  # HSV only where it was drawn (~40% of these rows)
            x = x.index_copy(0, hs, draw.hue_saturation(x[hs], hs))
        out.append(clip_BCTHW.index_copy(0, rows, (x - draw.mean_3) / draw.std_3))
    return out


def _jitter_every_sample(
    clips: list[torch.Tensor], u_B7: torch.Tensor, mean: tuple, std: tuple
) -> list[torch.Tensor]:
    """The same jitter computed for every sample and kept where drawn: no data-dependent
    shapes, so ``torch.compile`` traces it into the objective's graph (and fuses it). In eager
    mode it costs ~4x the subset path, which is why that one runs outside a compile."""
    draw = _Draw(u_B7, mean, std)
    drawn = draw.on_b | draw.on_c | draw.on_hs
    out = []
    for clip_BCTHW in clips:
        x = draw.brightness_contrast(clip_BCTHW * draw.std_3 + draw.mean_3)
        x = torch.where(draw.on_hs, draw.hue_saturation(x), x)
        out.append(torch.where(drawn, (x - draw.mean_3) / draw.std_3, clip_BCTHW))
    return out


class _Draw:
    """One keyed jitter draw per sample (rows of ``u_R7``), shaped to broadcast over clips."""

    def __init__(self, u_R7: torch.Tensor, mean: tuple, std: tuple) -> None:
        dev, dtype = u_R7.device, u_R7.dtype
        u = u_R7.view(-1, 7, 1, 1, 1, 1)
        self.on_b, self.on_c, self.on_hs = u[:, 0] < PROB, u[:, 1] < PROB, u[:, 2] < PROB
        self.shift = (2 * u[:, 3] - 1) * BRIGHTNESS  # [R, 1, 1, 1, 1]
        self.factor = torch.exp((2 * u[:, 4] - 1) * CONTRAST)
        self.hue_turn = (2 * u[:, 5, :, 0] - 1) * HUE_DEG / 360  # [R, 1, 1, 1]
        self.sat_factor = torch.exp((2 * u[:, 6, :, 0] - 1) * SATURATION)
        self.mean_3 = device_constant(mean, dev, dtype).view(1, 3, 1, 1, 1) * 255
        self.std_3 = device_constant(std, dev, dtype).view(1, 3, 1, 1, 1) * 255

    def brightness_contrast(self, x: torch.Tensor) -> torch.Tensor:
        """0-255 pixels [R, 3, T, H, W]: brightness, then contrast, each where drawn."""
        x = torch.where(self.on_b, (x + self.shift).clamp(0, 255), x)
        return torch.where(self.on_c, (x * self.factor).clamp(0, 255), x)

    def hue_saturation(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Hue turn and saturation scale in HSV of 0-255 pixels (of draw ``rows``, or all)."""
        hue_turn, sat_factor = self.hue_turn, self.sat_factor
        if rows is not None:
            hue_turn, sat_factor = hue_turn[rows], sat_factor[rows]
        hue, sat, val = rgb_to_hsv(x.clamp(0, 255) / 255).unbind(1)
        hsv = torch.stack((hue + hue_turn, (sat * sat_factor).clamp(0, 1), val), 1)
        return (hsv_to_rgb(hsv) * 255).to(x.dtype)  # the HSV constants are float32
