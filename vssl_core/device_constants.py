"""Small constant tensors (normalization statistics, lookup values) on a device, built once.

``torch.tensor(values, device=cuda)`` copies from pageable host memory, and such a copy ends in
a stream synchronize: the host waits for every kernel already queued. Inside a training step
that is a host sync for a 3-element tensor. Steps take their constants from here instead: the
copy happens on first use, then the same tensor comes back (``benchmarks/overhead.py`` counts
the copies a step makes).
"""

from collections.abc import Sequence

import torch

_CACHE: dict[tuple, torch.Tensor] = {}


def device_constant(
    values: Sequence[float], device: torch.device | str, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """``torch.tensor(values, device=device, dtype=dtype)``, shared between calls: never modify
    it in place (``.clone()`` first). Inside ``torch.compile`` the tensor is a graph constant."""
    if torch.compiler.is_compiling():
        return torch.tensor(values, device=device, dtype=dtype)
    key = (tuple(values), torch.device(device), dtype)
    tensor = _CACHE.get(key)
    if tensor is None:
        tensor = _CACHE[key] = torch.tensor(values, device=device, dtype=dtype)
    return tensor
