"""Which cue does a pretext model read? Its pretext accuracy with each global cue removed.

The embedded ``moving_shapes`` videos give rotation prediction an "up" (the background dims from
top to bottom, ``light_from_above``) and clip-order prediction an arrow of time (frames darken
from first to last, ``dusk``). Both cues are the same for every class, so a model that solves
its pretext task through them alone learns nothing about motion. This script loads finished
pretraining runs (``recipe.yaml`` + ``checkpoints/last.pt``), then measures each one's pretext
metrics on held-out videos (``data.dataset.seed``) as rendered normally, without the light,
without the dusk and without both; only the cue changes between the rows (the same videos,
motions and sprites). Accuracy that falls to chance without a cue says that cue is what the
model learned to read::

    python benchmarks/pretext_cues.py runs/mini_severe/pretrain/rotation-s0 \
        runs/mini_severe/pretrain/clip_order-s0

``--row 'NAME: key=value ...'`` measures other conditions instead of the cues, e.g. whether
MoCo's instance discrimination survives colour jitter it never saw in training::

    python benchmarks/pretext_cues.py runs/mini_severe/pretrain/moco-s0 --row 'as trained:' \
        --row 'colour jitter: objective.photometric=mocov2'

Shape legend: none (the objective's own batches; the metrics are scalars).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
try:
    import vssl_core  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

import torch  # noqa: E402

CUES = {
    "as rendered": (),
    "no light from above": ("data.dataset.light_from_above=0",),
    "no dusk": ("data.dataset.dusk=0",),
    "neither cue": ("data.dataset.light_from_above=0", "data.dataset.dusk=0"),
}


@torch.no_grad()
def pretext_metrics(run_dir: Path, overrides: Sequence[str], batches: int, seed: int, host) -> dict:
    """Mean loss and metrics of the run's objective (eval mode) over ``batches`` batches."""
    from vssl_core.build import build_dataset, build_objective
    from vssl_core.config import load_config
    from vssl_core.data.clips import ClipDataset, normalize_on_device
    from vssl_core.data.loader import build_loader
    from vssl_core.data.sampler import BatchLayout, StepBatchSampler
    from vssl_core.engine.checkpoint import load_checkpoint

    cfg = load_config(run_dir / "recipe.yaml", list(overrides), host)
    torch.manual_seed(seed)
    model = build_objective(host.registry, cfg.data)
    model.load_state_dict(load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"])
    model.eval()
    dataset = build_dataset(host.registry, cfg.data)
    views = model.views()
    layout = BatchLayout.from_recipe(cfg.batch.global_size, None, 1)
    sampler = StepBatchSampler(len(dataset), layout, 0, seed, 0, batches)
    loader = build_loader(ClipDataset(dataset, views, seed), sampler, 0, False, False, 2)
    sums: dict[str, list[float]] = {}
    for batch in loader:
        out = model(normalize_on_device(batch, views))
        for key, value in {"loss": out.loss, **out.metrics}.items():
            sums.setdefault(key, []).append(float(value))
    return {k: statistics.fmean(v) for k, v in sums.items()}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="pretraining run folders")
    p.add_argument("--batches", type=int, default=16, help="batches per row (default 16)")
    p.add_argument(
        "--video-seed", type=int, default=1, help="moving_shapes seed of the held-out videos"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the clip sampling")
    p.add_argument(
        "--row",
        action="append",
        default=[],
        metavar="'NAME: key=value ...'",
        help="a condition to measure (repeatable; default: the four cue rows)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = p.parse_args(argv)
    rows = dict(CUES)
    if args.row:
        rows = {}
        for text in args.row:
            name, sep, rest = text.partition(":")
            if not sep or not name.strip() or any("=" not in o for o in rest.split()):
                p.error(
                    f"--row {text!r}: write it as 'NAME: key=value ...' (no overrides: 'NAME:')"
                )
            rows[name.strip()] = tuple(rest.split())
    from vssl_core.plugins import load_plugins

    host = load_plugins()
    table: dict[str, dict[str, dict]] = {}
    for run in args.runs:
        if not (run / "checkpoints" / "last.pt").is_file():
            p.error(f"{run}: no checkpoints/last.pt (give a finished pretraining run folder)")
        table[str(run)] = {
            name: pretext_metrics(
                run, [f"data.dataset.seed={args.video_seed}", *extra], args.batches, args.seed, host
            )
            for name, extra in rows.items()
        }
    keys = sorted({k for measured in table.values() for row in measured.values() for k in row})
    print("| run | videos | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 2) + "|")
    for run, measured in table.items():
        for name, row in measured.items():
            cells = [f"{row[k]:.3f}" if k in row else "–" for k in keys]
            print(f"| {Path(run).name} | {name} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
