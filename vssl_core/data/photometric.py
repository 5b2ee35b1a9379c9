"""Clip-consistent photometric augmentation: colour jitter, random grayscale, Gaussian blur.

One draw per clip (from the sample's key), applied identically to every frame, as SEVERE's
``ColorJitter`` and MoCo v2's augmentations do for video (spec contrastive-and-severe.md §4.2,
§6.3). The maths follows torchvision's ColorJitter on float images: brightness scales, contrast
blends with the frame's mean gray level, saturation blends with the gray image, hue rotates in
HSV; the four run in a random order, each clamped to the valid range.

Where: in the loader worker, on the cropped clip (small: the crop size, not the decoded frame),
in float32 on the 0-255 scale, rounded back to uint8. The batch then stays uint8 (a quarter of
the bytes to pin and copy to the device) and the augmentation scales with the workers. Rounding
to uint8 loses nothing the uint8 input had.

Shape legend: C channels (RGB), T frames, H height, W width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from vssl_core.interfaces import ViewSpec

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, as torchvision's rgb_to_grayscale


@dataclass(frozen=True)
class PhotometricDraw:
    """The random parameters of one clip's photometric augmentation.

    ``order`` is a permutation of (0 brightness, 1 contrast, 2 saturation, 3 hue); factors are
    multipliers (1: unchanged), ``hue`` a shift in turns; ``blur_sigma`` None: no blur.
    """

    jitter: bool
    order: tuple[int, ...]
    brightness: float
    contrast: float
    saturation: float
    hue: float
    grayscale: bool
    blur_sigma: float | None

    @property
    def is_identity(self) -> bool:
        return not (self.jitter or self.grayscale or self.blur_sigma is not None)


def _factor(rng: np.random.Generator, strength: float) -> float:
    return float(rng.uniform(max(0.0, 1.0 - strength), 1.0 + strength))


def draw_photometric(
    rng: np.random.Generator,
    color_jitter: tuple[float, float, float, float],
    color_jitter_prob: float,
    grayscale_prob: float,
    blur_prob: float,
    blur_sigma: tuple[float, float],
) -> PhotometricDraw:
    """Draw one clip's parameters. Every value is always drawn, so the generator advances the
    same way whichever options are on."""
    b, c, s, h = color_jitter
    jitter = bool(rng.random() < color_jitter_prob) and any(x > 0 for x in color_jitter)
    order = tuple(int(i) for i in rng.permutation(4))
    factors = (_factor(rng, b), _factor(rng, c), _factor(rng, s), float(rng.uniform(-h, h)))
    grayscale = bool(rng.random() < grayscale_prob)
    blur = bool(rng.random() < blur_prob)
    sigma = float(rng.uniform(*blur_sigma))
    return PhotometricDraw(jitter, order, *factors, grayscale, sigma if blur else None)


def draw_for_views(rng: np.random.Generator, views: ViewSpec) -> PhotometricDraw | None:
    """One clip's draw with the settings an objective declared (None: it declared none)."""
    if not views.has_photometric:
        return None
    return draw_photometric(
        rng,
        views.color_jitter,
        views.color_jitter_prob,
        views.grayscale_prob,
        views.blur_prob,
        views.blur_sigma,
    )


def apply_photometric(clip_CTHW: torch.Tensor, draw: PhotometricDraw) -> torch.Tensor:
    """Apply ``draw`` to every frame of a uint8 clip [3, T, H, W]; returns uint8."""
    assert clip_CTHW.dim() == 4 and clip_CTHW.shape[0] == 3, (
        f"expected an RGB clip [3, T, H, W], got {tuple(clip_CTHW.shape)}"
    )
    if draw.is_identity:
        return clip_CTHW
    x = clip_CTHW.float()
    if draw.jitter:
        for op in draw.order:
            x = _JITTER_OPS[op](x, draw)
    if draw.grayscale:
        x = gray(x).expand_as(x)
    if draw.blur_sigma is not None:
        x = gaussian_blur(x, draw.blur_sigma)
    return x.round().clamp_(0, 255).to(torch.uint8)


def gray(x_CTHW: torch.Tensor) -> torch.Tensor:
    """Luma [1, T, H, W] of an RGB clip (any scale)."""
    r, g, b = x_CTHW.unbind(0)
    return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).unsqueeze(0)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: float) -> torch.Tensor:
    return (factor * x + (1.0 - factor) * other).clamp_(0, 255)


def _brightness(x: torch.Tensor, d: PhotometricDraw) -> torch.Tensor:
    return (x * d.brightness).clamp_(0, 255)


def _contrast(x: torch.Tensor, d: PhotometricDraw) -> torch.Tensor:
    mean_1T11 = gray(x).mean(dim=(2, 3), keepdim=True)  # per frame, as per-image ColorJitter
    return _blend(x, mean_1T11, d.contrast)


def _saturation(x: torch.Tensor, d: PhotometricDraw) -> torch.Tensor:
    return _blend(x, gray(x), d.saturation)


def _hue(x: torch.Tensor, d: PhotometricDraw) -> torch.Tensor:
    if d.hue == 0:
        return x
    return rotate_hue(x, d.hue)


def rotate_hue(x_CTHW: torch.Tensor, turns: float) -> torch.Tensor:
    """Shift the HSV hue of an RGB clip (any scale) by ``turns``; saturation and value stay.

    The same result as converting to HSV, shifting the hue and converting back, without
    building the HSV image (the loader workers run this on every clip): a pixel keeps its max
    ``v`` and chroma ``c``, and channel n becomes ``v - c * clamp(min(k, 4 - k), 0, 1)`` with
    ``k = (n + 6 * hue) mod 6``."""
    value, low = x_CTHW.amax(dim=0), x_CTHW.amin(dim=0)  # (max(dim) with indices is slow)
    chroma = value - low
    r, g, b = x_CTHW.unbind(0)
    # 6 x hue x chroma, up to a multiple of 6 x chroma, by the first channel holding the max
    sextant = torch.where(
        r == value, g - b, torch.where(g == value, b - r + 2 * chroma, r - g + 4 * chroma)
    )
    hue6 = sextant / chroma.clamp(min=1e-12) + 6 * turns
    k = torch.stack((hue6 + 5, hue6 + 3, hue6 + 1)).remainder_(6)
    weight = torch.minimum(k, 4 - k).clamp_(0, 1)
    return value - chroma * weight  # chroma 0 (a gray pixel): every channel is its value


_JITTER_OPS = (_brightness, _contrast, _saturation, _hue)


def gaussian_blur(x_CTHW: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of every frame (radius ceil(3 sigma), reflected borders).

    Each pass is one matrix product with a banded [n, n] matrix that folds in the reflected
    border: on a CPU, several times faster than a one-channel convolution over a padded copy.
    """
    c, t, h, w = x_CTHW.shape
    radius = min(math.ceil(3 * sigma), h - 1, w - 1)
    if radius < 1:
        return x_CTHW
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    rows = _blur_matrix(kernel, h).T  # [h_out, h_in]
    return rows @ (x_CTHW.float() @ _blur_matrix(kernel, w))


def _blur_matrix(kernel: torch.Tensor, n: int) -> torch.Tensor:
    """[n_in, n_out]: output i is sum_j kernel[j] * input[reflect(i + j - radius)], where
    reflect mirrors about the edge pixels (-1 -> 1, n -> n - 2), as ``F.pad(mode="reflect")``."""
    radius = (kernel.numel() - 1) // 2
    out = torch.arange(n).unsqueeze(1)
    src = out + torch.arange(-radius, radius + 1)  # [n_out, taps]
    src = torch.where(src < 0, -src, src)
    src = torch.where(src > n - 1, 2 * (n - 1) - src, src)
    matrix = torch.zeros(n, n)
    matrix.index_put_((src, out.expand_as(src)), kernel.expand_as(src), accumulate=True)
    return matrix
