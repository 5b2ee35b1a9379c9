"""Helpers shared by the benchmark scripts: imports from a checkout, robust statistics, device
clocks, host-sync counting, synthetic batches and the fvcore FLOP count.

Shape legend: B batch, C channels (3), T frames, H height, W width, N tokens, Dh head width.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

ROOT = Path(__file__).resolve().parents[1]

try:
    import vssl_core  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from vssl_core.interfaces import Batch, ViewSpec  # noqa: E402

# ------------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Spread:
    """Median and inter-quartile range of repeated measurements (robust to a noisy machine)."""

    median: float
    q1: float
    q3: float
    n: int

    def describe(self, fmt: str = ".3f", scale: float = 1.0) -> str:
        m, lo, hi = (v * scale for v in (self.median, self.q1, self.q3))
        return f"{m:{fmt}} (IQR {lo:{fmt}}-{hi:{fmt}}, n={self.n})"


def spread(values: list[float]) -> Spread:
    """Median and quartiles (inclusive method: defined for 2+ values, exact for 1)."""
    if not values:
        raise ValueError("spread() needs at least one value")
    if len(values) == 1:
        return Spread(values[0], values[0], values[0], 1)
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return Spread(statistics.median(values), q1, q3, len(values))


def describe(values: list[float], fmt: str = ".1f") -> str:
    """``median [min, max]`` of repeated measurements, for printed tables."""
    return f"{statistics.median(values):{fmt}} [{min(values):{fmt}}, {max(values):{fmt}}]"


# ------------------------------------------------------------------------------- device


def synchronize(device: torch.device) -> None:
    """Wait for queued device work, so a host clock reading covers it (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible; use --device cpu")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} torch threads)"


class StepClock:
    """Wall and process-CPU timestamps at step boundaries. The device is synchronized only at
    the first timed boundary and at the end, so the clock adds no sync inside the timed steps.

    CPU time (all threads of this process) is inflated far less than wall time by other jobs on
    the same cores (only through shared caches and memory bandwidth); wall time is what a GPU run
    must be judged by (a host waiting for the device does not always burn CPU)."""

    def __init__(self, device: torch.device, warmup: int, steps: int) -> None:
        if not 0 <= warmup < steps:
            raise ValueError(f"need 0 <= warmup < steps, got warmup={warmup}, steps={steps}")
        self.device, self.warmup, self.steps = device, warmup, steps
        self.start: tuple[float, float] | None = None
        self.end: tuple[float, float] | None = None

    def mark(self, boundary: int) -> None:
        """Call before step ``boundary`` (0-based) starts, and with ``steps`` after the last."""
        if boundary in (self.warmup, self.steps):
            synchronize(self.device)
            now = (time.perf_counter(), time.process_time())
            if boundary == self.warmup:
                self.start = now
            else:
                self.end = now

    def per_step(self, clock: str = "wall") -> float:
        """Seconds per timed step on the ``wall`` or ``cpu`` clock."""
        if self.start is None or self.end is None:
            raise RuntimeError("StepClock: the timed steps did not all run")
        i = {"wall": 0, "cpu": 1}[clock]
        return (self.end[i] - self.start[i]) / (self.steps - self.warmup)


# Tensor methods that copy a value to the host: on a GPU each waits for all queued device work.
HOST_READS = frozenset(
    {"item", "tolist", "__float__", "__int__", "__bool__", "__index__", "cpu", "numpy"}
)
_TORCH_DIR = str(Path(torch.__file__).parent)
# torch's Python wrappers that a user's call passes through (float(t); torch.unique via
# boolean_dispatch): the caller is the first frame outside them
_TORCH_WRAPPERS = frozenset(
    str(Path(_TORCH_DIR) / name)
    for name in ("_tensor.py", "overrides.py", "functional.py", "_jit_internal.py")
)


def _caller_outside_torch_wrappers() -> str:
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename in _TORCH_WRAPPERS:
        frame = frame.f_back
    return "" if frame is None else frame.f_code.co_filename


# Factories that copy host data to a device: with a CUDA device the copy (from pageable memory,
# non_blocking=False) ends in a stream synchronize, which waits for all queued device work.
HOST_TO_DEVICE = frozenset({"tensor", "as_tensor"})


# Ops whose output size depends on tensor values: on a GPU the host reads that size back.
DATA_DEPENDENT_SHAPES = frozenset(
    {"nonzero", "argwhere", "masked_select", "unique", "unique_consecutive"}
)


def _bool_mask_index(name: str, args: tuple) -> bool:
    """``x[mask]`` with a bool tensor: its size is the number of True values (a read)."""
    if name != "__getitem__" or len(args) < 2:
        return False
    index = args[1] if isinstance(args[1], tuple) else (args[1],)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in index)


def _host_data_to_a_device(name: str, args: tuple, kwargs: dict) -> bool:
    return (
        name in HOST_TO_DEVICE
        and kwargs.get("device") is not None
        and bool(args)
        and not isinstance(args[0], torch.Tensor)
    )


class HostSyncCounter(TorchFunctionMode):
    """Counts what would block the host on a GPU, on any device, CPU included, when called by
    code outside torch (vssl, plugins, the benchmark):
    - tensor reads: ``.item()``, ``float(t)``, ``if t:``, ``.tolist()``, ``.cpu()``;
    - host data copied to a device: ``torch.tensor(values, device=...)`` (counted whatever the
      device, so a CPU census sees the copies a GPU run would wait for; a call meant for the
      host with an explicit CPU device would be over-counted);
    - ops whose output size depends on values (``nonzero``, ``unique``, ``x[bool mask]``, ...).
    Reads inside torch are not counted: the one that occurs (AdamW's non-fused step counter)
    reads a CPU tensor on every device. It slows every torch call: use it in a census run, never
    in a timed one."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        kwargs = kwargs or {}
        key = None
        if name in HOST_READS or name in DATA_DEPENDENT_SHAPES:
            key = name
        elif _bool_mask_index(name, args):
            key = "x[bool mask]"
        elif _host_data_to_a_device(name, args, kwargs):
            key = f"{name}(host data, device=)"
        if key is not None and not _caller_outside_torch_wrappers().startswith(_TORCH_DIR):
            self.calls[key] += 1
        return func(*args, **kwargs)

    @property
    def total(self) -> int:
        return sum(self.calls.values())


# ------------------------------------------------------------------------------- data


def synthetic_batch(
    views: ViewSpec,
    batch_size: int,
    device: torch.device,
    seed: int = 0,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> Batch:
    """Random uint8 clips [B, 3, T, S, S] for every view the objective declared, already on the
    device (the loader's output format), with per-sample keys 0..B-1."""
    gen = torch.Generator().manual_seed(seed)
    shape = (batch_size, 3, views.frames, views.crop_size, views.crop_size)
    clips = [
        torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)
        .to(device)
        .contiguous(memory_format=memory_format)
        for _ in range(views.num_clips)
    ]
    ids_B = torch.arange(batch_size, device=device)
    return Batch(clips=clips, label=torch.zeros_like(ids_B), index=ids_B, keys=ids_B)


# ------------------------------------------------------------------------------- FLOPs


def _sdpa_macs(inputs, outputs) -> int:
    """fvcore handle for aten::scaled_dot_product_attention: q k^T and attn v, in multiply-adds
    (fvcore's unit): B * H * Nq * Nk * (Dh + Dv)."""
    from fvcore.nn.jit_handles import get_shape

    q_BHND, k_BHND, v_BHND = (get_shape(x) for x in inputs[:3])
    *batch, n_q, d_qk = q_BHND
    n_k, d_v = k_BHND[-2], v_BHND[-1]
    count = 1
    for b in batch:
        count *= b
    return count * n_q * n_k * (d_qk + d_v)


def fvcore_forward_macs(module: torch.nn.Module, inputs: tuple) -> tuple[int, dict[str, int]]:
    """fvcore's forward count (one multiply-add = 1) of ``module(*inputs)``, with a handle for
    SDPA (fvcore has none and would skip attention), and the operators it skipped."""
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(module, inputs)
    analysis.set_op_handle("aten::scaled_dot_product_attention", _sdpa_macs)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    return int(analysis.total()), dict(analysis.unsupported_ops())


class LossOf(torch.nn.Module):
    """``objective(Batch(...)).loss`` as a module of plain tensors, so fvcore's tracer can run
    it: (clips..., keys) -> loss."""

    def __init__(self, objective: torch.nn.Module) -> None:
        super().__init__()
        self.objective = objective

    def forward(self, keys_B: torch.Tensor, *clips: torch.Tensor) -> torch.Tensor:
        batch = Batch(clips=list(clips), label=keys_B, index=keys_B, keys=keys_B)
        return self.objective(batch).loss
