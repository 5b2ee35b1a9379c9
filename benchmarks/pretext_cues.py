"""Which cue does a pretext model read? Its pretext accuracy with each cue of the videos removed.

A pretext task teaches motion only if it cannot be solved without it. The embedded
``moving_shapes`` videos (style ``default``) put the "up" in how the object moves (it is thrown:
``gravity`` bends its path downwards), the arrow of time in its speed (``friction``), with still
copies of it (decoys), and show one look (``looks``), turned at random, about the frame's
centre (``centre_jitter`` 0) in every video, so a video has no appearance of its own. This
script loads finished pretraining runs (``recipe.yaml`` + ``checkpoints/last.pt``) and measures
each one's pretext metrics on held-out videos (``data.dataset.seed``) as rendered, then with one
cue removed: the gravity, the friction, the motion itself (objects frozen at a random
moment of their path or at its centre, or frames in a random order) or the decoys; and with a
per-video cue added: 16 shared looks, a look of its own per video, or paths off the frame's
centre. Only that cue changes between the rows (the same videos, motions and sprites). A
metric that falls to chance without a cue says the model reads that cue; one that stays says
it does not; one that rises with a per-video cue says the model matches videos by it::

    python benchmarks/pretext_cues.py runs/mini_severe/pretrain/rotation-s0 \
        runs/mini_severe/pretrain/clip_order-s0 --json cues.json

``--rows shaded`` measures runs trained on the default videos of 2026-12-07 (style ``shaded``:
the up is the moving object's shading, ``object_light``, its still copies lit from the other
sides) on those videos, each cue removed alone as above (the shading instead of the gravity).
``--rows pooled`` measures runs trained on the default videos of 2026-12-01 to 2026-12-07 (style
``pooled``: 16 shared looks, paths within 8% of the frame of its centre) on those videos, each
cue removed alone, and with one look for all or a look per video. ``--rows classic`` measures runs
trained on the ``classic`` style (the default until 2026-12) without its global cues (the
light from above, the dusk). ``--row 'NAME: key=value ...'``
measures other conditions instead, e.g. whether MoCo's instance discrimination survives colour
jitter it never saw in training::

    python benchmarks/pretext_cues.py runs/mini_severe/pretrain/moco-s0 --row 'as trained:' \
        --row 'colour jitter: objective.photometric=mocov2'

Shape legend: none (the objective's own batches; the metrics are scalars).
"""

from __future__ import annotations

import argparse
import json
import math
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

_D = "data.dataset."
ROWS = {  # the default style's cues, each removed alone
    "as rendered": (),
    "no gravity": (_D + "gravity=0",),
    "no friction": (_D + "friction=0",),
    "frozen objects": (_D + "motion=frozen",),
    "frozen at the centre": (_D + "motion=frozen_centre",),
    "shuffled frames": (_D + "motion=shuffled",),
    "no decoys": (_D + "decoys=false",),
    "16 shared looks": (_D + "looks=16",),
    "a look per video": (_D + "looks=0",),
    "paths off the centre": (_D + "centre_jitter=0.08",),
}
_SHADED = (_D + "style=shaded",)  # the default of 2026-12-07: the up is the object's shading
SHADED_ROWS = {  # runs trained on it: its videos, each cue removed alone
    name: (*_SHADED, *overrides)
    for name, overrides in {
        **{"as rendered": (), "no object light": (_D + "object_light=0",)},
        **{k: v for k, v in ROWS.items() if k not in ("as rendered", "no gravity")},
    }.items()
}
_POOLED = (_D + "style=pooled",)  # the default until 2026-12-07: 16 looks, paths off the centre
POOLED_ROWS = {  # runs trained on it: its videos, each cue removed alone
    **{
        name: (*_POOLED, *SHADED_ROWS[name][1:])
        for name in ("as rendered", "no object light", "no friction", "frozen objects")
        + ("shuffled frames", "no decoys")
    },
    "one look for all": (*_POOLED, _D + "looks=1"),
    "a look per video": (*_POOLED, _D + "looks=0"),
}
CLASSIC_ROWS = {  # the classic style's global cues
    "as rendered": (),
    "no light from above": (_D + "light_from_above=0",),
    "no dusk": (_D + "dusk=0",),
    "neither cue": (_D + "light_from_above=0", _D + "dusk=0"),
}
# Which conditions remove what lives on the moving objects (the metric should fall to chance)
# and which remove or add a global or per-video-constant cue (it should not matter).
OBJECT_CUES = (
    "no gravity",
    "no object light",  # (the shaded style's up)
    "no friction",
    "frozen objects",
    "frozen at the centre",
    "shuffled frames",
)
OTHER_CUES = ("no decoys", "16 shared looks", "a look per video", "paths off the centre")


def chance_levels(model: torch.nn.Module, batch_size: int) -> dict[str, float]:
    """Each pretext metric's value for a model that guesses (the methods this script knows)."""
    kind = type(model).__name__
    if kind == "Rotation":
        return {"acc": 1 / 4}
    if kind == "ClipOrder":
        return {"acc": 1 / math.factorial(model.num_clips)}
    if kind == "PlaybackSpeed":
        return {"acc": 1 / len(model.speeds)}
    if kind == "Sigma":  # Sinkhorn spreads the tubelets evenly over the prototypes
        return {"acc": 1 / model.prototypes.shape[0]}
    if hasattr(model, "queue"):  # MoCo, tubelet contrast: own key among the queue (+ the batch)
        return {"acc": 1 / (len(model.queue.negatives()) + 1), "batch_acc": 1 / batch_size}
    return {}


class OwnKeys:
    """Keeps a momentum-contrast model's queue filled with keys of the videos being measured.

    A checkpoint's queue holds keys of its training videos, and an eval-mode forward enqueues
    nothing. Measured against that stale queue, the positive of a condition that changes the
    videos (a look per video, frozen objects) stands out from every negative only because the
    negatives look otherwise, and the instance accuracy says nothing about the condition. So
    each measured batch's keys are enqueued, as training does, after ``warmup_batches`` that
    refill the whole queue with the condition's own keys."""

    def __init__(self, model: torch.nn.Module, batch_size: int) -> None:
        self.queue = getattr(model, "queue", None)
        self.warmup_batches = 0
        self._keys: list[torch.Tensor] = []
        if self.queue is None or not hasattr(model, "embed_keys"):
            self.queue = None
            return
        self.warmup_batches = math.ceil(self.queue.size / batch_size)
        embed_keys = model.embed_keys

        def keys_kept(*args, **kwargs):
            keys_BD = embed_keys(*args, **kwargs)
            self._keys.append(keys_BD)
            return keys_BD

        model.embed_keys = keys_kept  # on the instance: this model only

    def after_batch(self) -> None:
        if self.queue is not None and self._keys:
            self.queue.enqueue(torch.cat(self._keys))
        self._keys.clear()


@torch.no_grad()
def pretext_metrics(
    run_dir: Path, overrides: Sequence[str], batches: int, seed: int, host
) -> tuple[dict, dict]:
    """Mean loss and metrics of the run's objective (eval mode) over ``batches`` batches, and
    each metric's chance level. A model with a queue of negatives first refills it with keys
    of these videos (``OwnKeys``)."""
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
    batch_size = int(cfg.batch.global_size)
    own_keys = OwnKeys(model, batch_size)
    warmup = own_keys.warmup_batches
    if warmup:  # every clip from another video: a query's own video is never in the queue
        wanted = (warmup + batches) * batch_size
        spec = cfg.data["data"]["dataset"]
        spec["num_samples"] = max(int(spec["num_samples"]), wanted)
    dataset = build_dataset(host.registry, cfg.data)
    views = model.views()
    layout = BatchLayout.from_recipe(batch_size, None, 1)
    sampler = StepBatchSampler(len(dataset), layout, 0, seed, 0, warmup + batches)
    loader = build_loader(ClipDataset(dataset, views, seed), sampler, 0, False, False, 2)
    sums: dict[str, list[float]] = {}
    for i, batch in enumerate(loader):
        out = model(normalize_on_device(batch, views))
        own_keys.after_batch()
        if i < warmup:
            continue
        for key, value in {"loss": out.loss, **out.metrics}.items():
            sums.setdefault(key, []).append(float(value))
    chance = chance_levels(model, batch_size)
    return {k: statistics.fmean(v) for k, v in sums.items()}, chance


def parse_rows(texts: Sequence[str], preset: str) -> dict[str, tuple[str, ...]]:
    """The conditions to measure: ``--row`` texts, else the preset's rows."""
    if not texts:
        presets = {"classic": CLASSIC_ROWS, "pooled": POOLED_ROWS, "shaded": SHADED_ROWS}
        return dict(presets.get(preset, ROWS))
    rows = {}
    for text in texts:
        name, sep, rest = text.partition(":")
        if not sep or not name.strip() or any("=" not in o for o in rest.split()):
            raise ValueError(
                f"--row {text!r}: write it as 'NAME: key=value ...' (no overrides: 'NAME:')"
            )
        rows[name.strip()] = tuple(rest.split())
    return rows


def markdown(table: dict[str, dict]) -> str:
    """One line per run and condition; each metric with its chance level in the header."""
    keys = sorted({k for m in table.values() for row in m["rows"].values() for k in row})
    lines = ["| run | videos | " + " | ".join(keys) + " |", "|---" * (len(keys) + 2) + "|"]
    for run, measured in table.items():
        chance = measured["chance"]
        lines.append(
            f"| {Path(run).name} | chance | "
            + " | ".join(f"{chance[k]:.3f}" if k in chance else "–" for k in keys)
            + " |"
        )
        for name, row in measured["rows"].items():
            cells = [f"{row[k]:.3f}" if k in row else "–" for k in keys]
            lines.append(f"| {Path(run).name} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def method_of(run: str) -> str:
    """A run folder's method: its name without the seed suffix (``rotation-s0`` -> rotation)."""
    name = Path(run).name
    head, sep, seed = name.rpartition("-s")
    return head if sep and seed.isdigit() else name


def summary(table: dict[str, dict], metric: str = "acc") -> str:
    """One line per method, one column per condition: ``metric`` averaged over the method's
    runs (seeds), with its chance level; the methods without ``metric`` are left out."""
    by_method: dict[str, list[dict]] = {}
    for run, measured in table.items():
        if any(metric in row for row in measured["rows"].values()):
            by_method.setdefault(method_of(run), []).append(measured)
    if not by_method:
        return ""
    conditions = list(next(iter(by_method.values()))[0]["rows"])
    lines = [
        f"| method ({metric}) | chance | " + " | ".join(conditions) + " |",
        "|---" * (len(conditions) + 2) + "|",
    ]
    for method, runs in by_method.items():
        chance = statistics.fmean(m["chance"].get(metric, math.nan) for m in runs)
        cells = [
            " / ".join(f"{m['rows'][c][metric]:.2f}" for m in runs if metric in m["rows"][c])
            for c in conditions
        ]
        lines.append(f"| {method} | {chance:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="pretraining run folders")
    p.add_argument("--batches", type=int, default=16, help="batches per row (default 16)")
    p.add_argument(
        "--video-seed", type=int, default=1, help="moving_shapes seed of the held-out videos"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the clip sampling")
    p.add_argument(
        "--rows",
        choices=("default", "shaded", "pooled", "classic"),
        default="default",
        help="the preset conditions: the default style's cues (default), those of the videos "
        "the default rendered on 2026-12-07 (shaded), until 2026-12-07 (pooled), or the classic "
        "style's",
    )
    p.add_argument(
        "--row",
        action="append",
        default=[],
        metavar="'NAME: key=value ...'",
        help="a condition to measure (repeatable; replaces the preset rows)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = p.parse_args(argv)
    try:
        rows = parse_rows(args.row, args.rows)
    except ValueError as exc:
        p.error(str(exc))
    from vssl_core.plugins import load_plugins

    host = load_plugins()
    table: dict[str, dict] = {}
    for run in args.runs:
        if not (run / "checkpoints" / "last.pt").is_file():
            p.error(f"{run}: no checkpoints/last.pt (give a finished pretraining run folder)")
        measured, chance = {}, {}
        for name, extra in rows.items():
            overrides = [f"data.dataset.seed={args.video_seed}", *extra]
            measured[name], chance = pretext_metrics(run, overrides, args.batches, args.seed, host)
        table[str(run)] = {"chance": chance, "rows": measured}
    print(markdown(table), end="")
    for metric in ("acc", "batch_acc"):
        if text := summary(table, metric):
            print(f"\n{text}", end="")
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
