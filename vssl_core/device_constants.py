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


def _device_key(device: torch.device | str) -> torch.device:
    """A bare ``cuda`` means the current GPU: key it by its index."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def device_constant(
    values: Sequence[float], device: torch.device | str, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """``torch.tensor(values, device=device, dtype=dtype)``, shared between calls: never modify
    it in place (``.clone()`` first). Inside ``torch.compile`` the tensor is a graph constant
    and nothing is cached."""
    if torch.compiler.is_compiling():
        return torch.tensor(values, device=device, dtype=dtype)
    # (type, repr) per value: 1, 1.0 and True are equal dict keys, and so are 0.0 and -0.0
    key = (tuple((type(v), repr(v)) for v in values), _device_key(device), dtype)
    tensor = _CACHE.get(key)
    if tensor is None:
        with torch.inference_mode(False):  # a tensor first built under inference_mode would
            tensor = torch.tensor(values, device=device, dtype=dtype)  # fail later in autograd
        _CACHE[key] = tensor
    return tensor
