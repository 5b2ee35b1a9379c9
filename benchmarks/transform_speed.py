"""Data transforms against their previous implementations, timed side by side in one run.

Two speed-ups, each measured against the code it replaced, which is kept below as a reference
function (op for op as it was, so its time is the old code's time):

- ``photometric``: one MoCo v2 clip augmentation (``apply_photometric`` with a draw of the
  ``mocov2`` preset of ``vssl_moco.objective.PHOTOMETRIC``: colour jitter p 0.8, grayscale p 0.2,
  Gaussian blur p 0.5 with sigma in ViewSpec's (0.1, 2.0)) on a uint8 3x8x64x64 clip, as the
  loader workers run it on every clip of the MoCo recipe. Reference: the implementation before
  commit 381d08d, whose hue rotation went through a full RGB -> HSV -> RGB image and whose blur
  was two one-channel convolutions over a reflect-padded copy. The other jitter ops, grayscale
  and the rounding did not change and are shared by both sides.
- ``rotation``: ``vssl_rotation.objective.rotate_clips`` (one ``gather`` of a per-clip pixel
  permutation) on a normalized float batch 16x3x8x64x64 with the objective's own keyed turns.
  Reference: the masked ``rot90`` it replaced (one masked copy per quarter turn).

How, and why
- Same output first: both sides run once on every distinct input of the workload (every clip
  and draw; the one batch) and their outputs are compared. Photometric outputs are uint8 after
  rounding: the two float paths differ by float rounding only, which moves a value across a .5
  boundary now and then, so the tolerance is one 8-bit level on a small fraction of the values
  (a real bug moves many values, or by more than a level). Rotation permutes pixels and must be bit-identical. A case whose
  outputs disagree beyond that gets no ratio, and the script exits with 1.
- Interleaved: every round runs both sides on the same inputs (the same clips and draws, the same
  batch), alternating which goes first, so drift on a shared machine hits both; the speed-up
  (reference time / current time) is taken per round, then its median and IQR.
- Clocks: the process CPU clock (``time.process_time``; other jobs on the same cores inflate it
  far less than wall time) and the wall clock, both reported.
- One torch thread by default (``--threads``): DataLoader workers run with one thread each, which
  is where the photometric augmentation runs.

    python benchmarks/transform_speed.py                      # both cases, 21 rounds (~1 min)
    python benchmarks/transform_speed.py --cases rotation --rounds 31 --reps 400
    python benchmarks/transform_speed.py --threads 4
    python benchmarks/transform_speed.py --quick              # a seconds-long smoke run (tests)
    python benchmarks/transform_speed.py --json benchmarks/results/transform_speed.json

Shape legend: B batch, C channels (3, RGB), T frames, H height, W width (H == W here).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import StepClock, describe_device, spread  # noqa: E402
from vssl_moco.objective import PHOTOMETRIC  # noqa: E402
from vssl_rotation.objective import NUM_ROTATIONS, draw_rotations, rotate_clips  # noqa: E402

from vssl_core.data import photometric  # noqa: E402
from vssl_core.data.photometric import PhotometricDraw, apply_photometric, draw_for_views  # noqa: E402
from vssl_core.interfaces import ViewSpec  # noqa: E402

SEED = 0
# Photometric: at most one 8-bit level, on at most this fraction of the output values. The
# commit measured 4.7e-6; a fraction 20x that is still rounding ties, not a different result.
MAX_LEVELS = 1
MAX_DIFFERING_FRACTION = 1e-4
WARMUP_CALLS = 3  # untimed calls of each side after the check, before the first round

# ------------------------------------------------------------------------------- references
# Photometric: the implementation before commit 381d08d (vssl_core/data/photometric.py).


def rgb_to_hsv_before_381d08d(rgb_CTHW: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> stacked (hue in [0, 1), saturation, value), with max/argmax."""
    r, g, b = rgb_CTHW.unbind(0)
    value, argmax = rgb_CTHW.max(dim=0)  # the indices tell the sextant (slow on a CPU)
    chroma = value - rgb_CTHW.min(dim=0).values
    safe = chroma.clamp(min=1e-12)
    by_max = torch.where(argmax == 1, (b - r) / safe + 2, (r - g) / safe + 4)
    hue6 = torch.where(argmax == 0, ((g - b) / safe) % 6, by_max)
    hue = torch.where(chroma > 0, hue6 / 6, torch.zeros_like(hue6))
    saturation = torch.where(value > 0, chroma / value.clamp(min=1e-12), torch.zeros_like(value))
    return torch.stack((hue, saturation, value))


def hsv_to_rgb_before_381d08d(hsv_CTHW: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`rgb_to_hsv_before_381d08d` (hue taken modulo 1)."""
    h, s, v = hsv_CTHW.unbind(0)
    k = torch.stack([(n + 6 * h) % 6 for n in (5.0, 3.0, 1.0)])  # R, G, B
    return v - v * s * torch.minimum(k, 4 - k).clamp(0, 1)


def rotate_hue_before_381d08d(x_CTHW: torch.Tensor, turns: float) -> torch.Tensor:
    """Hue shift of a 0-255 clip through the whole HSV image and back."""
    h, s, v = rgb_to_hsv_before_381d08d(x_CTHW / 255.0).unbind(0)
    return hsv_to_rgb_before_381d08d(torch.stack(((h + turns) % 1.0, s, v))) * 255.0


def gaussian_blur_before_381d08d(x_CTHW: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (radius ceil(3 sigma)): a reflect-padded copy of every frame,
    then a 1 x k and a k x 1 one-channel convolution."""
    c, t, h, w = x_CTHW.shape
    radius = min(math.ceil(3 * sigma), h - 1, w - 1)
    if radius < 1:
        return x_CTHW
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    frames = F.pad(x_CTHW.reshape(c * t, 1, h, w), (radius,) * 4, mode="reflect")
    frames = F.conv2d(frames, kernel.view(1, 1, 1, -1))
    frames = F.conv2d(frames, kernel.view(1, 1, -1, 1))
    return frames.reshape(c, t, h, w)


def _hue_before_381d08d(x: torch.Tensor, d: PhotometricDraw) -> torch.Tensor:
    return x if d.hue == 0 else rotate_hue_before_381d08d(x, d.hue)


# brightness, contrast and saturation did not change in 381d08d: the current ones serve both
_JITTER_OPS_BEFORE_381D08D = (
    photometric._brightness,
    photometric._contrast,
    photometric._saturation,
    _hue_before_381d08d,
)


def apply_photometric_before_381d08d(
    clip_CTHW: torch.Tensor, draw: PhotometricDraw
) -> torch.Tensor:
    """:func:`apply_photometric` with the hue rotation and the blur from before 381d08d."""
    if draw.is_identity:
        return clip_CTHW
    x = clip_CTHW.float()
    if draw.jitter:
        for op in draw.order:
            x = _JITTER_OPS_BEFORE_381D08D[op](x, draw)
    if draw.grayscale:
        x = photometric.gray(x).expand_as(x)
    if draw.blur_sigma is not None:
        x = gaussian_blur_before_381d08d(x, draw.blur_sigma)
    return x.round().clamp_(0, 255).to(torch.uint8)


# Rotation: the masked rot90 before the one-gather rotate_clips.


def rotate_clips_masked_rot90(
    clip_BCTHW: torch.Tensor, quarter_turns_B: torch.Tensor
) -> torch.Tensor:
    """Clip b turned by ``quarter_turns_B[b]``: for each k in 1..3, the clips to turn k times
    are picked out by a boolean mask, rotated together and written back into a copy."""
    turns_B = quarter_turns_B.to(clip_BCTHW.device).remainder(NUM_ROTATIONS)
    out_BCTHW = clip_BCTHW.clone()
    for k in range(1, NUM_ROTATIONS):
        chosen_B = turns_B == k
        if chosen_B.any():  # a host sync per k (free on a CPU)
            out_BCTHW[chosen_B] = torch.rot90(clip_BCTHW[chosen_B], k, dims=(-2, -1))
    return out_BCTHW


# ------------------------------------------------------------------------------- workloads


@dataclass
class Workload:
    """``calls`` calls of each side; call i of both sides does the same work."""

    name: str
    unit: str  # what one call transforms: "clip" or "batch"
    units: str  # plural
    shape: list[int]
    dtype: str
    calls: int
    distinct: int  # calls 0..distinct-1 have distinct inputs; the rest repeat one of them
    reference: Callable[[int], torch.Tensor]
    current: Callable[[int], torch.Tensor]
    reference_name: str
    current_name: str
    exact: bool  # outputs must be bit-identical (else: within MAX_LEVELS / MAX_DIFFERING_FRACTION)
    notes: dict = field(default_factory=dict)


def photometric_workload(calls: int, frames: int, size: int) -> Workload:
    """``calls`` random uint8 clips, each with its own MoCo v2 draw, drawn as ClipDataset does
    (from the ViewSpec the MoCo objective declares). Random pixels: every op here costs the same
    whatever the content, and they reach every hue sextant and some ties for the check."""
    spec = ViewSpec(frames=frames, crop_size=size, **PHOTOMETRIC["mocov2"])
    rng = np.random.default_rng(SEED)
    draws = [draw_for_views(rng, spec) for _ in range(calls)]
    shape = (3, frames, size, size)
    clips = [torch.from_numpy(rng.integers(0, 256, shape, dtype=np.uint8)) for _ in range(calls)]
    return Workload(
        name="photometric",
        unit="clip",
        units="clips",
        shape=list(shape),
        dtype="uint8",
        calls=calls,
        distinct=calls,
        reference=lambda i: apply_photometric_before_381d08d(clips[i], draws[i]),
        current=lambda i: apply_photometric(clips[i], draws[i]),
        reference_name="apply_photometric before 381d08d (HSV image, conv blur)",
        current_name="vssl_core.data.photometric.apply_photometric",
        exact=False,
        notes={
            "preset": "mocov2",
            "jitter": sum(d.jitter for d in draws),
            "grayscale": sum(d.grayscale for d in draws),
            "blur": sum(d.blur_sigma is not None for d in draws),
            "identity": sum(d.is_identity for d in draws),
        },
    )


def rotation_workload(calls: int, batch: int, frames: int, size: int) -> Workload:
    """One normalized float batch (what the objective rotates) and the objective's own draw of
    quarter turns for keys 0..B-1, the same for every call."""
    gen = torch.Generator().manual_seed(SEED)
    clip_BCTHW = torch.randn((batch, 3, frames, size, size), generator=gen)
    turns_B = draw_rotations(torch.arange(batch))
    return Workload(
        name="rotation",
        unit="batch",
        units="batches",
        shape=list(clip_BCTHW.shape),
        dtype="float32",
        calls=calls,
        distinct=1,
        reference=lambda i: rotate_clips_masked_rot90(clip_BCTHW, turns_B),
        current=lambda i: rotate_clips(clip_BCTHW, turns_B),
        reference_name="masked rot90 per quarter turn (before the gather)",
        current_name="vssl_rotation.objective.rotate_clips",
        exact=True,
        notes={"turns": torch.bincount(turns_B, minlength=NUM_ROTATIONS).tolist()},
    )


# ------------------------------------------------------------------------------- measuring


def compare_outputs(work: Workload) -> dict:
    """Run both sides on every distinct input once and compare their outputs."""
    max_diff, differing, total = 0, 0, 0
    for i in range(work.distinct):
        ref, cur = work.reference(i), work.current(i)
        if ref.shape != cur.shape or ref.dtype != cur.dtype:
            raise RuntimeError(
                f"{work.name}: reference gives {ref.dtype}{list(ref.shape)}, "
                f"current {cur.dtype}{list(cur.shape)}"
            )
        diff = (ref.double() - cur.double()).abs()
        max_diff = max(max_diff, diff.max().item())
        differing += int((diff != 0).sum())
        total += diff.numel()
    fraction = differing / total
    if work.exact:
        agree, tolerance = max_diff == 0, "bit-identical"
    else:
        agree = max_diff <= MAX_LEVELS and fraction <= MAX_DIFFERING_FRACTION
        tolerance = f"<= {MAX_LEVELS} level on <= {MAX_DIFFERING_FRACTION:g} of the values"
    return {
        "max_abs_diff": max_diff,
        "differing_fraction": fraction,
        "differing_values": differing,
        "values": total,
        "tolerance": tolerance,
        "agree": agree,
    }


def time_side(fn: Callable[[int], torch.Tensor], calls: int) -> dict[str, float]:
    """Seconds per call of ``fn(0) .. fn(calls - 1)`` on the wall and process-CPU clocks."""
    clock = StepClock(torch.device("cpu"), 0, calls)
    clock.mark(0)
    for i in range(calls):
        fn(i)
    clock.mark(calls)
    return {c: clock.per_step(c) for c in ("wall", "cpu")}


def run_case(work: Workload, rounds: int) -> dict:
    print(f"{work.name}: {work.calls} {work.units} {'x'.join(map(str, work.shape))} {work.dtype}")
    print(f"  reference: {work.reference_name}")
    print(f"  current  : {work.current_name}")
    if work.notes:
        print(f"  workload : {work.notes}")
    same = compare_outputs(work)
    print(
        f"  outputs: max |reference - current| = {same['max_abs_diff']:g}, differing values "
        f"{same['differing_values']}/{same['values']} = {same['differing_fraction']:.2g} "
        f"(tolerance: {same['tolerance']})",
        flush=True,
    )
    result = {
        "case": work.name,
        "unit": work.unit,
        "shape": work.shape,
        "dtype": work.dtype,
        "calls_per_round": work.calls,
        "reference": work.reference_name,
        "current": work.current_name,
        "workload": work.notes,
        "outputs": same,
        "ms_per_unit": None,
        "speedup": None,
    }
    if not same["agree"]:
        print("  outputs disagree beyond the tolerance: no speed-up reported", flush=True)
        return result
    for i in range(min(work.calls, WARMUP_CALLS)):  # first calls pay one-off allocations
        work.reference(i)
        work.current(i)
    seconds = {side: {"wall": [], "cpu": []} for side in ("reference", "current")}
    for r in range(rounds):
        order = ("reference", "current") if r % 2 == 0 else ("current", "reference")
        for side in order:
            fn = work.reference if side == "reference" else work.current
            for clock, value in time_side(fn, work.calls).items():
                seconds[side][clock].append(value)
        ref, cur = seconds["reference"]["cpu"][-1], seconds["current"]["cpu"][-1]
        print(
            f"  round {r + 1}/{rounds} ({order[0]} first, cpu clock): reference "
            f"{ref * 1e3:.3f} ms, current {cur * 1e3:.3f} ms, speed-up {ref / cur:.3f}",
            flush=True,
        )
    result["ms_per_unit"] = {
        side: {c: [s * 1e3 for s in v] for c, v in by_clock.items()}
        for side, by_clock in seconds.items()
    }
    result["speedup"] = {}
    for clock in ("cpu", "wall"):
        pairs = zip(seconds["reference"][clock], seconds["current"][clock], strict=True)
        ratio = spread([ref / cur for ref, cur in pairs])
        result["speedup"][clock] = dataclasses.asdict(ratio)
        for side in ("reference", "current"):
            result[f"{side}_ms_{clock}"] = dataclasses.asdict(spread(seconds[side][clock]))
            for key in ("median", "q1", "q3"):
                result[f"{side}_ms_{clock}"][key] *= 1e3
        print(
            f"  {clock:4} clock: reference {spread(seconds['reference'][clock]).describe('.3f', 1e3)}"
            f" ms/{work.unit}, current {spread(seconds['current'][clock]).describe('.3f', 1e3)}"
            f" ms/{work.unit}, speed-up {ratio.describe('.3f')}"
        )
    return result


def table(results: list[dict]) -> str:
    """Markdown: one row per case and clock."""
    lines = [
        "| case | clock | reference ms | current ms | speed-up ref/current, median (IQR) "
        "| outputs max diff |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        same = r["outputs"]
        diff = f"{same['max_abs_diff']:g}"
        if same["differing_values"]:
            diff += f" ({same['differing_fraction']:.1e} of values)"
        if r["speedup"] is None:
            lines.append(f"| {r['case']} | - | - | - | not measured: outputs differ | {diff} |")
            continue
        for clock in ("cpu", "wall"):
            ref, cur = r[f"reference_ms_{clock}"], r[f"current_ms_{clock}"]
            ratio = r["speedup"][clock]
            lines.append(
                f"| {r['case']} (per {r['unit']}) | {clock} | {ref['median']:.3f} "
                f"| {cur['median']:.3f} | {ratio['median']:.2f} "
                f"({ratio['q1']:.2f}-{ratio['q3']:.2f}) | {diff} |"
            )
    return "\n".join(lines)


# ------------------------------------------------------------------------------- CLI

CASES = ("photometric", "rotation")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--rounds", type=int, help="interleaved rounds (21; quick 2)")
    parser.add_argument(
        "--reps",
        type=int,
        help="timed calls per side and round: clips for photometric (128), batches for "
        "rotation (200); quick 4",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny clips and batches (3x4x16x16), by default 2 rounds x 4 calls: a smoke run",
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    ns = parser.parse_args(argv)
    if ns.rounds is None:
        ns.rounds = 2 if ns.quick else 21
    for name in ("rounds", "reps", "threads"):
        if getattr(ns, name) is not None and getattr(ns, name) < 1:
            parser.error(f"--{name} must be >= 1")
    return ns


def workloads(args: argparse.Namespace) -> list[Workload]:
    frames, size, batch = (4, 16, 4) if args.quick else (8, 64, 16)
    built = {
        "photometric": lambda: photometric_workload(
            args.reps or (4 if args.quick else 128), frames, size
        ),
        "rotation": lambda: rotation_workload(
            args.reps or (4 if args.quick else 200), batch, frames, size
        ),
    }
    return [built[name]() for name in args.cases]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = describe_device(torch.device("cpu"))
    print(
        f"transforms: reference vs current on {device}, torch {torch.__version__}; "
        f"{args.rounds} interleaved rounds"
    )
    results = [run_case(work, args.rounds) for work in workloads(args)]
    print()
    print(table(results))
    if args.json:
        payload = {
            "device": device,
            "torch": torch.__version__,
            "threads": args.threads,
            "rounds": args.rounds,
            "quick": args.quick,
            "cases": results,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    return 0 if all(r["outputs"]["agree"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
