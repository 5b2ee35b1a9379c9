"""Counter-based randomness keyed per sample.

A sample's random draws (its clip start, crop, mask, rotation...) must not depend on which rank,
worker or batch it lands in, or on whether the run was resumed: that is what makes a 2-process run
match a 1-process run and a resumed run match an uninterrupted one. Every sample therefore carries
a 63-bit key derived from (seed, epoch, index); draws are pure functions of (key, counter), computed
with a 32-bit integer hash that runs vectorised on any device.
"""

from __future__ import annotations

import numpy as np
import torch

_M32 = 0xFFFFFFFF


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """murmur3's 32-bit finaliser on int64 tensors holding values in [0, 2**32)."""
    x = x & _M32
    x = x ^ (x >> 16)
    x = (x * 0x85EBCA6B) & _M32
    x = x ^ (x >> 13)
    x = (x * 0xC2B2AE35) & _M32
    return x ^ (x >> 16)


def sample_key(seed: int, epoch: int, index: int, stream: int = 0) -> int:
    """A non-negative 63-bit key for one sample of one epoch (``stream`` separates uses)."""
    words = np.array([seed, epoch, index, stream], dtype=np.uint64)
    h = np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        for w in words:
            h = (h ^ w) * np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(31)
    return int(h & np.uint64(0x7FFFFFFFFFFFFFFF))


def keyed_uniform(keys_B: torch.Tensor, n: int, stream: int = 0) -> torch.Tensor:
    """Uniform floats in [0, 1) of shape [B, n]; row b depends only on (keys_B[b], stream).

    Runs on the device of ``keys_B``; no global RNG state is read or advanced.
    """
    keys = keys_B.to(torch.int64).reshape(-1, 1)
    lo, hi = keys & _M32, (keys >> 32) & _M32
    counter = torch.arange(n, device=keys.device, dtype=torch.int64).reshape(1, -1)
    x = _mix32(lo ^ _mix32(hi + 0x9E3779B9 * (stream + 1)))
    x = _mix32(x ^ _mix32(counter * 0x27D4EB2F + 0x165667B1))
    x = _mix32(x + hi)
    return (x >> 8).to(torch.float32) * (1.0 / (1 << 24))  # 24 bits: exact in float32, < 1


def numpy_rng(key: int, stream: int = 0) -> np.random.Generator:
    """A numpy generator for CPU-side draws of one sample (clip start, crop box)."""
    return np.random.default_rng([key & 0xFFFFFFFF, key >> 32, stream])
