"""Every method recipe as a user runs it: wall time and the logged loss and pretext metrics.

The recipes in recipes/ promise a run of a few minutes on a laptop CPU with a clearly falling
loss. This script runs each one as written (``vssl train recipes/<name>.yaml``, a subprocess,
all cores) one after the other and prints a table of wall time, steps and each logged metric's
first -> last value (the mean of the first and of the last 3 logged windows), with the CPU
time (user + system, all threads). Time it on an idle machine: on a busy one both times grow,
the CPU time too (threads that wait for a core spin):

    python benchmarks/cpu_recipes.py                        # every recipe, about 15 minutes
    python benchmarks/cpu_recipes.py --recipes sigma rotation --json out.json

Runs go to runs/cpu_recipes/<name>; a finished run is not run again.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("rotation", "clip_order", "moco", "tubelet", "videomae", "sigma", "supervised")
SHOWN = ("loss", "acc", "batch_acc", "codes_used")  # the metrics the recipes log, in this order


def read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    rows = []
    for line in path.read_text().splitlines() if path.is_file() else ():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a torn last line of a killed run
            continue
    return [r for r in rows if "loss" in r]


def summarize(rows: list[dict], edge: int = 3) -> dict[str, tuple[float, float]]:
    """metric -> (mean of its first `edge` logged values, mean of its last `edge`)."""
    out = {}
    for key in SHOWN:
        values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
        if values:
            first, last = values[:edge], values[-edge:]
            out[key] = (sum(first) / len(first), sum(last) / len(last))
    return out


def run_recipe(name: str, out: Path, overrides: list[str]) -> dict:
    run_dir = out / name
    done = run_dir / "cpu_recipes.json"
    if done.is_file():
        return json.loads(done.read_text())
    recipe = ROOT / "recipes" / f"{name}.yaml"
    argv = [
        sys.executable,
        "-m",
        "vssl_core.cli",
        "train",
        str(recipe),
        f"run.output_root={out}",
        f"run.name={name}",
    ]
    argv += ["log.progress_bar=false", *overrides]
    if (run_dir / "checkpoints" / "last.pt").is_file():
        argv.append("resume=true")
    t0, cpu0 = time.perf_counter(), _children_cpu_s()
    status = subprocess.run(argv, cwd=ROOT, env=os.environ.copy()).returncode
    wall_s, cpu_s = time.perf_counter() - t0, _children_cpu_s() - cpu0
    if status != 0:
        raise SystemExit(f"{name}: vssl train exited with {status}; rerun to resume it")
    rows = read_metrics(run_dir)
    result = {
        "recipe": f"recipes/{name}.yaml",
        "wall_s": round(wall_s, 1),
        "cpu_s": round(cpu_s, 1),
        "steps": rows[-1]["step"] if rows else 0,
        "metrics": summarize(rows),
        "overrides": overrides,
    }
    done.write_text(json.dumps(result, indent=1) + "\n")
    return result


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def table(results: dict[str, dict]) -> str:
    lines = ["| recipe | wall time | CPU time | steps | first -> last logged (mean of 3 windows) |"]
    lines.append("|---|---:|---:|---:|---|")
    for name, r in results.items():
        cells = ", ".join(f"{k} {a:.3g} -> {b:.3g}" for k, (a, b) in r["metrics"].items())
        wall, cpu = r["wall_s"] / 60, r["cpu_s"] / 60
        lines.append(f"| {name} | {wall:.1f} min | {cpu:.1f} min | {r['steps']} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=RECIPES)
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "cpu_recipes")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument(
        "overrides", nargs="*", help="recipe overrides for every run (a test shortens them)"
    )
    args = p.parse_args(argv)
    results = {name: run_recipe(name, args.out, args.overrides) for name in args.recipes}
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps({"cpus": os.cpu_count(), "runs": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
