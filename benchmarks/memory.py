"""Peak training memory per clip of each recipe in recipes/*.yaml, through vssl's real trainer.

Each measurement runs in a fresh process (peak RSS only ever grows): the trainer runs a few steps
of the recipe at two batch sizes, B/2 and B (B = the recipe's batch). A hook reads memory when
training starts (model, optimizer and dataset built) and after every step:
- CPU: resident set size. The high-water mark is reset at the start (Linux /proc clear_refs);
  peak = VmHWM after the steps minus the RSS at the start, so it holds activations, gradients,
  optimizer state and the batch, not the weights or imports.
- GPU: torch.cuda.max_memory_allocated minus memory_allocated at the start (the same parts; the
  caching allocator's reserve is not counted).
Memory per clip is the slope between the two batch sizes, (peak(B) - peak(B/2)) / (B - B/2): what
one more clip in the batch costs. The intercept (peak at B minus B x slope) is the batch-independent
part: gradients, optimizer state and workspace.

    python benchmarks/memory.py                       # every recipe in recipes/*.yaml
    python benchmarks/memory.py --recipes videomae moco --steps 3
    python benchmarks/memory.py --device cuda         # on a GPU machine
    python benchmarks/memory.py --vit vit_base        # what activation checkpointing saves
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import ROOT  # noqa: E402

from vssl_core.hookspecs import hookimpl  # noqa: E402

MIB = 2**20


# ------------------------------------------------------------------------------- child process


def _status_kib(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status (Linux), None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _rss_bytes() -> int:
    kib = _status_kib("VmRSS")
    return _max_rss_bytes() if kib is None else kib * 1024


def _max_rss_bytes() -> int:
    """Peak RSS of this process image. Linux: VmHWM, not ru_maxrss, which keeps the high-water
    mark of the process before exec (a forked child of a large parent starts "at" its size)."""
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _reset_peak_rss() -> None:
    """Restart the high-water mark from the current RSS (Linux >= 4.0), so that set-up peaks
    (imports, building the model) do not hide the training peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


class MemoryProbe:
    """Lifecycle hooks reading memory at the start of training and after each step."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.start = 0
        self.peak = 0

    def _now_and_peak(self) -> tuple[int, int]:
        if self.device == "cuda":
            import torch

            return torch.cuda.memory_allocated(), torch.cuda.max_memory_allocated()
        return _rss_bytes(), _max_rss_bytes()

    @hookimpl
    def vssl_train_start(self, run) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats()
        else:
            _reset_peak_rss()
        self.start = self._now_and_peak()[0]

    @hookimpl
    def vssl_step_end(self, run, step, metrics) -> None:
        self.peak = max(self.peak, self._now_and_peak()[1] - self.start)


def measure_one(recipe: Path, batch: int, steps: int, device: str, extra: list[str]) -> dict:
    """Run the trainer on ``recipe`` at ``batch`` for ``steps`` steps; peak bytes above start."""
    from vssl_core.config import load_config
    from vssl_core.engine.trainer import train
    from vssl_core.plugins import load_plugins

    probe = MemoryProbe(device)
    host = load_plugins(extra=[("memory_probe", probe)])
    with tempfile.TemporaryDirectory(prefix="vssl-memory-") as tmp:
        overrides = [
            f"batch.global_size={batch}",
            f"train.max_steps={steps}",
            f"train.device={device}",
            "data.num_workers=0",  # decode in this process: workers' memory is not the trainer's
            "log.progress_bar=false",
            "log.tensorboard=false",
            f"run.output_root={tmp}",
            "run.name=memory",
            *extra,
        ]
        train(load_config(recipe, overrides, host), host)
    return {"batch": batch, "peak_bytes": probe.peak}


def measure_vit(name: str, checkpointing: bool, mask_ratio: float, size: int) -> dict:
    """Peak memory of one forward+backward of a video ViT backbone at batch 1 (16 x size^2), on
    all tokens (fine-tuning) or on the visible ones of a tube mask (pre-training's encoder)."""
    import torch
    from vssl_backbones import vit

    from vssl_core.nn import tube_mask

    torch.manual_seed(0)
    model = getattr(vit, name)(img_size=size, grad_checkpointing=checkpointing).train()
    clip_BCTHW = torch.randn(1, 3, 16, size, size)
    mask_BN = None
    if mask_ratio > 0:
        mask_BN = tube_mask(torch.zeros(1, dtype=torch.long), model.grid_size, mask_ratio)
    _reset_peak_rss()
    start = _rss_bytes()
    model.forward_features(clip_BCTHW, mask_BN=mask_BN).square().mean().backward()
    return {"peak_bytes": _max_rss_bytes() - start}


# ------------------------------------------------------------------------------- parent process


def run_child(recipe: Path, batch: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", str(recipe), "--batch",
           str(batch), "--steps", str(args.steps), "--device", args.device]  # fmt: skip
    cmd += [f"--override={o}" for o in args.override]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def vit_table(args: argparse.Namespace) -> str:
    """Activation checkpointing of ``args.vit``: peak with and without, all vs visible tokens."""
    lines = [
        f"{args.vit} at 16x{args.vit_size}x{args.vit_size}, batch 1, forward+backward "
        "(peak RSS above the start, MiB):",
        "",
        "| tokens | grad_checkpointing false | grad_checkpointing true |",
        "|---|---:|---:|",
    ]
    for label, ratio in (("all (fine-tuning)", 0.0), ("visible of a 0.9 tube mask", 0.9)):
        peaks = []
        for ckpt in (False, True):
            cmd = [sys.executable, str(Path(__file__).resolve()), "--vit", args.vit,
                   "--vit-size", str(args.vit_size), "--one-vit", f"{int(ckpt)},{ratio}"]  # fmt: skip
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
            if done.returncode != 0:
                raise SystemExit(done.stderr.strip().splitlines()[-1])
            peaks.append(json.loads(done.stdout.strip().splitlines()[-1])["peak_bytes"] / MIB)
        lines.append(f"| {label} | {peaks[0]:.0f} | {peaks[1]:.0f} |")
    return "\n".join(lines)


def recipe_batch(recipe: Path, overrides: list[str]) -> int:
    from vssl_core.config import load_config
    from vssl_core.plugins import load_plugins

    return load_config(recipe, overrides, load_plugins()).batch.global_size


def measure_recipe(recipe: Path, args: argparse.Namespace) -> dict:
    full = recipe_batch(recipe, args.override)
    half = max(full // 2, 2)
    if half >= full:
        raise RuntimeError(f"batch {full} is too small for two batch sizes")
    small, large = run_child(recipe, half, args), run_child(recipe, full, args)
    per_clip = (large["peak_bytes"] - small["peak_bytes"]) / (full - half)
    return {
        "recipe": str(recipe.relative_to(ROOT)),
        "overrides": args.override,
        "batch": full,
        "peak_mib": large["peak_bytes"] / MIB,
        "peak_mib_half_batch": small["peak_bytes"] / MIB,
        "per_clip_mib": per_clip / MIB,
        "fixed_mib": (large["peak_bytes"] - per_clip * full) / MIB,
    }


def recipes(names: list[str] | None) -> list[Path]:
    found = sorted((ROOT / "recipes").glob("*.yaml"))
    if names:
        found = [p for p in found if p.stem in names]
        missing = set(names) - {p.stem for p in found}
        if missing:
            raise SystemExit(
                f"no recipes/{sorted(missing)}.yaml; choose from {sorted(p.stem for p in (ROOT / 'recipes').glob('*.yaml'))}"
            )
    return found


def markdown(rows: list[dict], device: str) -> str:
    what = "peak RSS above the start of training" if device == "cpu" else "CUDA max allocated"
    lines = [
        f"Measured on {device}: {what}, at the recipe's batch B and at B/2.",
        "",
        "| recipe | batch B | peak at B (MiB) | per clip (MiB) | batch-independent (MiB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['recipe']} | - | failed: {r['error']} | | |")
            continue
        lines.append(
            f"| {r['recipe']} | {r['batch']} | {r['peak_mib']:.0f} | {r['per_clip_mib']:.1f} "
            f"| {r['fixed_mib']:.0f} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", help="recipe names (default: all in recipes/)")
    parser.add_argument("--steps", type=int, default=3, help="training steps per measurement")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="OMP threads of each run")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument(
        "--override", action="append", default=[], help="recipe override for every run"
    )
    parser.add_argument("--vit", help="instead: activation checkpointing of this video ViT")
    parser.add_argument("--vit-size", type=int, default=224, help="frame size for --vit")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child mode: one recipe, one batch
    parser.add_argument("--one-vit", help=argparse.SUPPRESS)  # child mode: "ckpt,mask_ratio"
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one_vit:
        ckpt, ratio = args.one_vit.split(",")
        print(json.dumps(measure_vit(args.vit, ckpt == "1", float(ratio), args.vit_size)))
        return 0
    if args.vit:
        print(vit_table(args))
        return 0
    if args.one:
        row = measure_one(Path(args.one), args.batch, args.steps, args.device, args.override)
        print(json.dumps(row))
        return 0
    rows = []
    for recipe in recipes(args.recipes):
        try:
            rows.append(measure_recipe(recipe, args))
        except RuntimeError as err:
            rows.append({"recipe": str(recipe.relative_to(ROOT)), "error": str(err)[:200]})
        print(json.dumps(rows[-1]), flush=True)
    print(markdown(rows, args.device))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"device": args.device, "rows": rows}, indent=2))
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
