"""Mini SEVERE: does each method learn something that transfers? (CPU scale, embedded data)

Every method's recipe (``recipes/<method>.yaml``) pretrains on the embedded synthetic data for the
same compute budget, then each checkpoint is fine-tuned and linearly probed on the synthetic
SEVERE miniature (``vssl severe CHECKPOINT --synthetic``: domain shift, sample size, action
granularity, task shift), beside two references: a randomly initialised backbone (one per
backbone the methods use) and supervised pretraining on the pretraining set's labels
(``recipes/supervised.yaml``).

The budget is a number of optimizer steps per method, calibrated once: each recipe runs a few
steps alone on this machine, its steady-state steps/s (median over the logged windows) times the
budget in seconds gives its step count, saved in ``OUT/calibration.json`` and reused on every
rerun. So "10 minutes" means "the steps this method makes in 10 minutes alone here", the same
compute for every method, and the runs stay deterministic whatever else shares the machine.

Resumable: a finished pretraining or evaluation (its ``benchmark_done.json``) is skipped, an
interrupted one continues (``resume=true``; ``vssl severe`` skips its finished settings), so
the same command picks up where it stopped. Writes ``OUT/results.json`` (every number),
``OUT/results.md`` (tables) and ``OUT/results.png`` (plot)::

    python benchmarks/mini_severe.py --budget-minutes 10 --seeds 0 1 --jobs 2
    python benchmarks/mini_severe.py --tiny       # the whole pipeline in seconds (a test)

A *variant* is one more arm: a method's recipe with recipe overrides and/or a multiple of the
budget, to test why a method does (not) transfer, e.g. ``--variant 'moco_colour=moco
objective.photometric=mocov2'`` or ``--variant 'tubelet_x4=tubelet*4'``. A variant makes its
method's number of steps (times X), whatever the overrides cost per step, so that the comparison
with the method isolates what the overrides change.

``--data KEY=VALUE`` changes the embedded videos of the whole benchmark: a ``moving_shapes``
option (e.g. ``looks=1``, ``centre_jitter=0``) set for the pretraining videos and for every
setting's training and test videos, the random-init arms included, so that a candidate design
of the default videos is measured end to end before it becomes the default, and a former
default is measured again (``--data object_light=0.6 --data gravity=0``: the shaded videos of
2026-12-07). It is part of OUT, as the budget is. Not ``style``: the settings choose their own
(the domain shift's is another).

Shape legend: none (no tensors here).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
try:
    import vssl_core  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from vssl_eval.severe import BY_KEY, Setting  # noqa: E402

METHODS = ("rotation", "clip_order", "moco", "tubelet", "videomae", "sigma")
# Third-party methods of examples/, found through their plugin's recipe search path once the
# package is installed (pip install examples/vssl_speed)
EXAMPLE_METHODS = {"speed": "speed/synthetic.yaml"}
SUPERVISED = "supervised"
PROTOCOLS = ("finetune", "linear")
FACTORS = ("domain", "samples", "actions", "tasks")
SETTINGS = ("ssv2", "gym99", "ucf101_1k", "gym99_1k", "fx_s1", "ub_s1", "ucf_rc", "charades")
GOAL_POINTS, GOAL_FACTORS = 5.0, 3  # beat random init by >= 5 points on >= 3 of the 4 factors
# A linear probe of the recipes' fine-tuning settings: frozen backbone (BatchNorm in eval mode),
# a new head trained with Adam at SEVERE's linear-eval lr (spec contrastive-and-severe §6.9).
LINEAR = ("objective.freeze_backbone=true", "eval.protocol.name=linear", "optim.lr=0.01")
# --tiny: every stage on a handful of videos, to test the pipeline, not to measure anything
# (no loader workers: starting one costs more than rendering a handful of videos)
TINY_PRETRAIN = ("data.dataset.num_samples=64", "data.num_workers=0")
TINY_EVAL = (
    "data.dataset.num_samples=32",
    "eval.test_dataset.num_samples=16",
    "train.epochs=1",
    "data.num_workers=0",
    "eval.test_clips=1",
)
TINY_SETTINGS = ("ssv2", "ucf101_1k", "fx_s1", "ucf_rc")  # one per factor, counting included
DONE = "benchmark_done.json"


# ------------------------------------------------------------------------------ what runs


@dataclass(frozen=True)
class Arm:
    """One row of the table: a pretraining (``recipe``) or a random initialisation (``recipe``
    None) of ``backbone``; ``baseline`` names the random arm it is compared with."""

    name: str
    recipe: Path | None
    backbone: dict
    baseline: str
    overrides: tuple[str, ...] = ()  # a variant's recipe overrides
    budget_x: float = 1.0  # a variant's multiple of the budget
    variant_of: str = ""  # a variant's method, whose calibration.json entry sets its steps

    @property
    def pretrained(self) -> bool:
        return self.recipe is not None

    @property
    def timed_as(self) -> str:
        return self.variant_of or self.name


@dataclass(frozen=True)
class Variant:
    """``NAME=METHOD[*X] [key=value ...]``: METHOD's recipe with overrides, budget x X."""

    name: str
    method: str
    budget_x: float
    overrides: tuple[str, ...]


def parse_variant(text: str) -> Variant:
    head, *overrides = text.split()
    name, sep, spec = head.partition("=")
    method, star, factor = spec.partition("*")
    fix = "write it as NAME=METHOD[*X] [key=value ...], e.g. 'moco_colour=moco objective.photometric=mocov2'"
    if not sep or not name or not method or not name.replace("_", "").isalnum():
        raise ValueError(f"--variant {text!r}: {fix}")
    try:
        budget_x = float(factor) if star else 1.0
    except ValueError:
        raise ValueError(
            f"--variant {text!r}: the budget multiple {factor!r} is not a number"
        ) from None
    if budget_x <= 0 or any("=" not in o for o in overrides):
        raise ValueError(f"--variant {text!r}: {fix} (X > 0)")
    if name in (*METHODS, *EXAMPLE_METHODS, SUPERVISED) or name.startswith("random_"):
        raise ValueError(f"--variant {text!r}: {name!r} names an arm already; pick another name")
    return Variant(name, method, budget_x, tuple(overrides))


def random_arm_name(backbone: dict, taken: Sequence[str]) -> str:
    """``random_<backbone>`` (``random_cnn3d_small``), numbered when two specs share a name."""
    name = f"random_{backbone['name']}"
    return name if name not in taken else f"{name}_{len(taken) + 1}"


def resolve_backbone(recipe: Path, overrides: Sequence[str], host) -> dict:
    """The backbone spec a recipe trains (after the benchmark's overrides)."""
    from vssl_core.config import load_config

    return dict(load_config(recipe, list(overrides), host).data["backbone"])


def method_recipe(method: str, recipes: Path, host) -> Path:
    """``recipes/<method>.yaml``, or an installed example plugin's recipe (by its name)."""
    local = recipes / f"{method}.yaml"
    if local.is_file():
        return local
    name = EXAMPLE_METHODS.get(method)
    if name and any((Path(d) / name).is_file() for d in host.recipe_search_paths()):
        return Path(name)
    hint = f" (pip install examples/vssl_{method} first)" if name else ""
    raise SystemExit(
        f"--methods {method}: no recipe {local}{hint}; choose from "
        f"{', '.join([*METHODS, *EXAMPLE_METHODS, SUPERVISED])}"
    )


def default_methods(host) -> list[str]:
    """Every built-in method, the installed example methods, then supervised."""
    found = []
    for method, name in EXAMPLE_METHODS.items():
        if any((Path(d) / name).is_file() for d in host.recipe_search_paths()):
            found.append(method)
        else:
            print(f"note: {method} not benchmarked (pip install examples/vssl_{method} to add it)")
    return [*METHODS, *found, SUPERVISED]


def make_arms(
    names: Sequence[str],
    recipes: Path,
    pretrain_overrides: Sequence[str],
    host,
    variants: Sequence[Variant] = (),
):
    """The pretrained arms in the order given, then the variants, then one random arm per
    distinct backbone."""
    from vssl_core.schema import RecipeError

    arms: list[Arm] = []
    randoms: list[tuple[dict, str]] = []
    wanted = [(n, n, 1.0, ()) for n in names]
    wanted += [(v.name, v.method, v.budget_x, v.overrides) for v in variants]
    for name, method, budget_x, overrides in wanted:
        recipe = method_recipe(method, recipes, host)
        if name in [a.name for a in arms]:
            raise SystemExit(f"arm {name!r} is asked for twice: give the variant another name")
        try:
            backbone = resolve_backbone(recipe, [*pretrain_overrides, *overrides], host)
        except RecipeError as exc:  # a typo in a variant's overrides, before anything runs
            raise SystemExit(f"arm {name!r}: {exc}") from None
        match = [r for b, r in randoms if b == backbone]
        if not match:
            match = [random_arm_name(backbone, [r for _, r in randoms])]
            randoms.append((backbone, match[0]))
        variant_of = "" if name == method else method  # a variant makes its method's steps
        arms.append(Arm(name, recipe, backbone, match[0], overrides, budget_x, variant_of))
    return arms + [Arm(r, None, b, r) for b, r in randoms]


@dataclass(frozen=True)
class Budget:
    """Pretraining steps per arm: ``budget_s`` x the arm's calibrated steps/s (at least
    ``min_steps``), timed over ``calibrate_steps`` steps."""

    budget_s: float
    calibrate_steps: int
    min_steps: int = 2


# ------------------------------------------------------------------------------ running vssl


@dataclass
class Runner:
    """Runs ``vssl`` commands: in this process (``--in-process``, one at a time) or as
    subprocesses with ``threads`` torch threads each, logging to ``OUT/logs/<name>.log``."""

    out: Path
    threads: int
    in_process: bool
    env: dict = field(default_factory=dict)
    children: list = field(default_factory=list)  # the subprocesses started, to forward signals

    def start(self, name: str, argv: list[str]) -> Callable[[], int | None]:
        """Start ``vssl argv``; returns a poll function (None while it runs, then the exit code)."""
        log_path = self.out / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(f"$ vssl {' '.join(argv)}\n")
        if self.in_process:
            code = self._run_here(argv, log_path)
            return lambda: code
        env = {**os.environ, **self.env, "OMP_NUM_THREADS": str(self.threads)}
        with log_path.open("a") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "vssl_core.cli", *argv],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env=env,
            )
        self.children.append(proc)
        return proc.poll

    def forward(self, signum: int) -> None:
        """Pass a stop signal to the runs still going: each saves a checkpoint and exits."""
        for proc in self.children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def _run_here(self, argv: list[str], log_path: Path) -> int:
        import torch

        from vssl_core.cli.main import main

        torch.set_num_threads(self.threads)
        with log_path.open("a") as log_file, contextlib.redirect_stdout(log_file):
            try:
                return main(argv)
            except SystemExit as exc:  # argparse's usage errors
                return exc.code if isinstance(exc.code, int) else 2


@dataclass
class Task:
    """One vssl command of the benchmark; ``after`` must finish first; ``finish`` runs after a
    successful exit (writes the done marker)."""

    name: str
    argv: Callable[[], list[str]]
    after: tuple[str, ...] = ()
    finish: Callable[[float], None] = lambda wall_s: None
    status: str = "waiting"  # waiting | running | done | failed | skipped | stopped
    wall_s: float = 0.0


# exit statuses of a run stopped by a signal (its checkpoint saved): the benchmark stops too
STOPPED = {128 + signal.SIGTERM: "SIGTERM", 128 + signal.SIGINT: "SIGINT"}


@dataclass
class StopFlag:
    """Set by SIGTERM / SIGINT (or a run that was stopped by one): start nothing new."""

    signum: int | None = None

    @contextlib.contextmanager
    def catching(self, runner: Runner):
        def handle(signum, frame):
            self.signum = self.signum or signum
            runner.forward(signum)

        previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum if self.signum else 0


def run_tasks(
    tasks: list[Task], runner: Runner, jobs: int, say=print, stop: StopFlag | None = None
) -> None:
    """Run ``tasks`` at most ``jobs`` at a time, in list order as their ``after`` allow; a task
    after a failed one is skipped. After a stop signal (to this process, or one that ended a
    run) no task starts and the running ones finish (they save a checkpoint first)."""
    stop = stop or StopFlag()
    by_name = {t.name: t for t in tasks}
    running: dict[str, tuple[Callable[[], int | None], float]] = {}
    while any(t.status in ("waiting", "running") for t in tasks):
        for name, (poll, t0) in list(running.items()):
            code = poll()
            if code is None:
                continue
            task = by_name[name]
            task.wall_s = time.perf_counter() - t0
            task.status = "done" if code == 0 else "failed"
            if code == 0:
                task.finish(task.wall_s)
            elif code in STOPPED and stop.signum is None:
                stop.signum = code - 128
            say(f"{task.status}: {name} ({task.wall_s:.0f} s)" + (f", exit {code}" if code else ""))
            del running[name]
        if stop.signum is not None:
            for task in tasks:
                if task.status == "waiting":
                    task.status = "stopped"
        for task in tasks:
            if task.status != "waiting" or len(running) >= jobs:
                continue
            before = [by_name[a].status for a in task.after if a in by_name]
            if any(s in ("failed", "skipped") for s in before):
                task.status = "skipped"
                say(f"skipped: {task.name} (an earlier step failed)")
            elif all(s == "done" for s in before):
                say(f"start: {task.name}")
                task.status = "running"
                t0 = time.perf_counter()  # before start: in process, start runs the command
                running[task.name] = (runner.start(task.name, task.argv()), t0)
        if running:
            time.sleep(0.2)


# ------------------------------------------------------------------------------ calibration


def steady_steps_per_s(metrics_jsonl: Path, global_batch: int) -> float:
    """Median steps/s over the logged windows after the first (which includes start-up)."""
    rows = [json.loads(line) for line in metrics_jsonl.read_text().splitlines() if line.strip()]
    rates = [r["clips_per_s"] / global_batch for r in rows if "clips_per_s" in r]
    if not rates:
        raise SystemExit(f"{metrics_jsonl}: no clips_per_s logged; calibrate with more steps")
    return statistics.median(rates[1:] or rates)


def calibration_tasks(arms: list[Arm], args, pretrain_overrides: list[str]) -> list[Task]:
    """One short timed run per pretraining recipe that ``calibration.json`` lacks."""
    path = args.out / "calibration.json"
    known = json.loads(path.read_text()) if path.is_file() else {}
    tasks = []
    for arm in arms:
        key = arm.timed_as
        if not arm.pretrained or key in known or f"calibrate-{key}" in [t.name for t in tasks]:
            continue
        n = args.budget.calibrate_steps
        run = args.out / "calibrate" / key
        argv = [
            "train",
            str(arm.recipe),
            *pretrain_overrides,
            f"run.output_root={run.parent}",
            f"run.name={key}",
            f"train.max_steps={n}",
            f"log.every_steps={max(1, n // 4)}",
            "checkpoint.every_steps=null",
            "log.progress_bar=false",
        ]

        def finish(wall_s: float, key=key, run=run) -> None:
            batch = int(_saved_recipe(run)["batch"]["global_size"])
            rate = steady_steps_per_s(run / "metrics.jsonl", batch)
            table = json.loads(path.read_text()) if path.is_file() else {}
            table[key] = {
                "steps_per_s": rate,
                "steps_timed": args.budget.calibrate_steps,
                "threads": args.threads,
                "wall_s": round(wall_s, 1),
            }
            path.write_text(json.dumps(table, indent=2) + "\n")

        def fresh(argv=argv, run=run) -> list[str]:
            shutil.rmtree(run, ignore_errors=True)  # a calibration is timed from its start
            return argv

        tasks.append(Task(f"calibrate-{key}", fresh, finish=finish))
    return tasks


def _saved_recipe(run_dir: Path) -> dict:
    import yaml

    return yaml.safe_load((run_dir / "recipe.yaml").read_text())


def budget_steps(arm: Arm, args) -> int:
    """The arm's pretraining steps: budget (x a variant's multiple) x calibrated steps/s."""
    budget: Budget = args.budget
    table = json.loads((args.out / "calibration.json").read_text())
    rate = table[arm.timed_as]["steps_per_s"]
    return max(budget.min_steps, int(budget.budget_s * arm.budget_x * rate))


# ------------------------------------------------------------------------------ the plan


def _done(run_dir: Path) -> dict | None:
    path = run_dir / DONE
    return json.loads(path.read_text()) if path.is_file() else None


def _mark_done(run_dir: Path, info: dict) -> Callable[[float], None]:
    def finish(wall_s: float) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / DONE).write_text(json.dumps({**info(), "wall_s": round(wall_s, 1)}) + "\n")

    return finish


def pretrain_task(arm: Arm, seed: int, args, overrides: list[str]) -> Task | None:
    run = args.out / "pretrain" / f"{arm.name}-s{seed}"
    if _done(run):
        return None

    def argv() -> list[str]:
        resume = ["resume=true"] if (run / "checkpoints" / "last.pt").is_file() else []
        return [
            "train",
            str(arm.recipe),
            *overrides,
            *arm.overrides,
            f"run.output_root={run.parent}",
            f"run.name={run.name}",
            f"run.seed={seed}",
            f"train.max_steps={budget_steps(arm, args)}",
            "log.progress_bar=false",
            *resume,
        ]

    after = (f"calibrate-{arm.timed_as}",)
    info = lambda: {"steps": budget_steps(arm, args)}  # noqa: E731
    return Task(f"pretrain-{arm.name}-s{seed}", argv, after, _mark_done(run, info))


def eval_task(arm: Arm, seed: int, protocol: str, args, settings: list[str]) -> Task | None:
    run = args.out / "eval" / f"{arm.name}-s{seed}" / protocol
    done = _done(run)
    if done and set(settings) <= set(done["settings"]):
        return None  # (with more settings asked for, vssl severe skips the finished ones)
    ckpt = args.out / "pretrain" / f"{arm.name}-s{seed}" / "checkpoints" / "last.pt"
    weights = [str(ckpt)] if arm.pretrained else ["none", "backbone=" + json.dumps(arm.backbone)]
    argv = [
        "severe",
        "--synthetic",
        "--settings",
        ",".join(settings),
        "--out",
        str(run),
        *weights,  # the checkpoint (or none), then overrides: argparse wants options first
        f"run.seed={seed}",
        "log.progress_bar=false",
        *(LINEAR if protocol == "linear" else ()),
        *args.eval_overrides,
    ]
    after = (f"pretrain-{arm.name}-s{seed}",) if arm.pretrained else ()
    return Task(
        f"eval-{arm.name}-s{seed}-{protocol}",
        lambda: argv,
        after,
        _mark_done(
            run, lambda: {"settings": sorted({*settings, *(done or {}).get("settings", [])})}
        ),
    )


def plan_tasks(arms: list[Arm], args, pretrain_overrides: list[str]) -> list[Task]:
    """Calibrations first (each alone), then seed by seed every pretraining and its evals, so
    an interrupted benchmark has whole seeds to show."""
    tasks = calibration_tasks(arms, args, pretrain_overrides)
    for seed in args.seeds:
        for arm in arms:
            if arm.pretrained:
                tasks.append(pretrain_task(arm, seed, args, pretrain_overrides))
            for protocol in args.protocols:
                tasks.append(eval_task(arm, seed, protocol, args, args.settings))
    return [t for t in tasks if t is not None]


# ------------------------------------------------------------------------------ results


def points(setting: Setting, value: float) -> float:
    """A metric as points where higher is better: % metrics as they are, a relative error (mae,
    a fraction) as 100 x (1 - error), so a difference of points is an improvement."""
    return value if setting.higher_is_better else 100.0 * (1.0 - value)


def read_value(args, arm: str, seed: int, protocol: str, key: str) -> float | None:
    path = args.out / "eval" / f"{arm}-s{seed}" / protocol / key / "metrics.json"
    if not path.is_file():
        return None
    value = json.loads(path.read_text())["metrics"].get(BY_KEY[key].metric)
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def mean_sd(values: list[float]) -> dict:
    return {
        "mean": statistics.fmean(values) if values else None,
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0 if values else None,
        "n": len(values),
        "values": values,
    }


def factor_gain(args, arm: Arm, seed: int, protocol: str, factor: str) -> float | None:
    """Mean over the factor's settings of (arm - its random baseline) in points, one seed."""
    gains = []
    for key in args.settings:
        setting = BY_KEY[key]
        if setting.factor != factor:
            continue
        mine = read_value(args, arm.name, seed, protocol, key)
        base = read_value(args, arm.baseline, seed, protocol, key)
        if mine is None or base is None:
            return None
        gains.append(points(setting, mine) - points(setting, base))
    return statistics.fmean(gains) if gains else None


def summarize(arms: list[Arm], args) -> dict:
    """Every number of the benchmark, as written to results.json."""
    scores: dict = {}
    factors: dict = {}
    for protocol in args.protocols:
        scores[protocol], factors[protocol] = {}, {}
        for arm in arms:
            scores[protocol][arm.name] = {
                key: mean_sd(
                    [
                        v
                        for s in args.seeds
                        if (v := read_value(args, arm.name, s, protocol, key)) is not None
                    ]
                )
                for key in args.settings
            }
            if arm.name == arm.baseline:
                continue
            per_factor = {}
            for factor in FACTORS:
                gains = [factor_gain(args, arm, s, protocol, factor) for s in args.seeds]
                per_factor[factor] = mean_sd([g for g in gains if g is not None])
            # rounded: (4.375 + 5.625) / 2 is 4.999... in floating point, and exactly 5 counts
            beaten = [
                f for f, g in per_factor.items() if g["n"] and round(g["mean"], 9) >= GOAL_POINTS
            ]
            factors[protocol][arm.name] = {
                "baseline": arm.baseline,
                "gain": per_factor,
                "factors_beaten": beaten,
                "goal_met": len(beaten) >= GOAL_FACTORS,
            }
    return {"scores": scores, "factors": factors}


def _cell(stat: dict, digits: int = 1) -> str:
    if not stat["n"]:
        return "–"
    mean, sd = stat["mean"], stat["sd"]
    return f"{mean:.{digits}f} ± {sd:.{digits}f}" if stat["n"] > 1 else f"{mean:.{digits}f}"


def markdown(arms: list[Arm], args, summary: dict, meta: dict) -> str:
    """The tables of results.md: scores per protocol, then the gains over random init."""
    seeds = ", ".join(map(str, args.seeds))
    lines = [
        f"Mean ± standard deviation over seeds {seeds}; budget {meta['budget']}; "
        f"{meta['threads']} torch thread(s) per run; the runs' wall times summed: pretraining "
        f"{meta['pretrain_min']:.0f} min, evaluation {meta['eval_min']:.0f} min.",
    ]
    variants = [a for a in arms if a.variant_of]
    if variants:
        lines += ["", "Variants (each makes its method's steps, times its multiple):"]
        for arm in variants:
            what = " ".join(arm.overrides) or "its method's recipe"
            times = f", {arm.budget_x:g}x the steps" if arm.budget_x != 1 else ""
            lines.append(f"- {arm.name}: {arm.variant_of} with {what}{times}")
    for protocol in args.protocols:
        head = [
            f"{BY_KEY[k].key} ({BY_KEY[k].metric}{'' if BY_KEY[k].higher_is_better else ' ↓'})"
            for k in args.settings
        ]
        lines += ["", f"**{protocol}**", "", "| arm | " + " | ".join(head) + " |"]
        lines.append("|---" * (len(head) + 1) + "|")
        for arm in arms:
            row = summary["scores"][protocol][arm.name]
            cells = [_cell(row[k], 1 if BY_KEY[k].higher_is_better else 3) for k in args.settings]
            lines.append(f"| {arm.name} | " + " | ".join(cells) + " |")
    for protocol in args.protocols:
        lines += [
            "",
            f"**{protocol}: gain over random init, points** (mean over the factor's settings; "
            f"counting as 100 x (1 - mae); goal >= {GOAL_POINTS:g} on >= {GOAL_FACTORS} factors)",
            "",
            "| arm | vs | " + " | ".join(FACTORS) + " | goal |",
            "|---" * (len(FACTORS) + 3) + "|",
        ]
        for name, info in summary["factors"][protocol].items():
            cells = [_cell(info["gain"][f]) for f in FACTORS]
            met = "yes" if info["goal_met"] else "no"
            lines.append(f"| {name} | {info['baseline']} | " + " | ".join(cells) + f" | {met} |")
    return "\n".join(lines) + "\n"


def plot(arms: list[Arm], args, summary: dict, path: Path) -> None:
    """Per protocol: each setting's score per arm (top), each factor's gain over random init
    (bottom), error bars one standard deviation over seeds."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # one colour per arm, the same in every panel (the default cycle repeats after 10)
    palette = colormaps["tab20" if len(arms) > 10 else "tab10"]
    colour = {arm.name: palette(i % palette.N) for i, arm in enumerate(arms)}
    cols = len(args.protocols)
    fig = Figure(figsize=(7 * cols, 8.5), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, cols, squeeze=False)
    for c, protocol in enumerate(args.protocols):
        top, bottom = axes[0][c], axes[1][c]
        width = 0.8 / len(arms)
        for i, arm in enumerate(arms):
            row = summary["scores"][protocol][arm.name]
            xs = [j + i * width for j in range(len(args.settings))]
            ys = [points(BY_KEY[k], row[k]["mean"]) if row[k]["n"] else 0 for k in args.settings]
            es = [
                row[k]["sd"] * (1 if BY_KEY[k].higher_is_better else 100) if row[k]["n"] else 0
                for k in args.settings
            ]
            top.bar(xs, ys, width, yerr=es, label=arm.name, color=colour[arm.name])
        top.set_xticks([j + 0.4 - width / 2 for j in range(len(args.settings))], args.settings)
        top.set_title(f"{protocol}: score (counting: 100 x (1 - mae))")
        gained = list(summary["factors"][protocol].items())
        width = 0.8 / max(len(gained), 1)
        for i, (name, info) in enumerate(gained):
            g = [info["gain"][f] for f in FACTORS]
            xs = [j + i * width for j in range(len(FACTORS))]
            means, sds = [s["mean"] or 0 for s in g], [s["sd"] or 0 for s in g]
            bottom.bar(xs, means, width, yerr=sds, label=name, color=colour[name])
        bottom.axhline(GOAL_POINTS, color="k", linestyle="--", linewidth=1)
        bottom.axhline(0, color="k", linewidth=0.5)
        bottom.set_xticks([j + 0.4 - width / 2 for j in range(len(FACTORS))], FACTORS)
        bottom.set_title(f"{protocol}: gain over random init (points; dashed: goal)")
        top.legend(fontsize=7, ncol=3)
        bottom.legend(fontsize=7, ncol=3)
    fig.savefig(path, dpi=110)


# ------------------------------------------------------------------------------ command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--budget-minutes",
        type=float,
        default=None,
        help="pretraining budget per method, minutes of this machine (default 10; --tiny: 0.05)",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 (--tiny: 0)")
    p.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help="recipes to pretrain (default: every method, the installed example methods and "
        "supervised; random-init arms are added per backbone)",
    )
    p.add_argument(
        "--settings",
        default=None,
        help=f"comma-separated SEVERE miniature settings (default all eight: {','.join(SETTINGS)})",
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="'NAME=METHOD[*X] [key=value ...]'",
        help="one more arm: METHOD's recipe with overrides and/or X times METHOD's steps "
        "(repeatable), e.g. 'moco_colour=moco objective.photometric=mocov2', 'tubelet_x4=tubelet*4'",
    )
    p.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a moving_shapes option for every video of the benchmark, pretraining and settings "
        "(repeatable), e.g. looks=1",
    )
    p.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default runs/mini_severe, --tiny: runs/mini_severe_tiny)",
    )
    p.add_argument(
        "--jobs", type=int, default=1, help="runs at a time after calibration (subprocesses)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per run (default: all cores / jobs)",
    )
    p.add_argument("--calibrate-steps", type=int, default=40, help="steps of each calibration run")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="run vssl in this process (needs --jobs 1; no start-up cost per run)",
    )
    p.add_argument(
        "--tiny",
        action="store_true",
        help="a smoke run of the whole pipeline on a handful of videos (in process)",
    )
    p.add_argument(
        "--report-only", action="store_true", help="only (re)write the results from what OUT holds"
    )
    args = p.parse_args(argv)
    args.seeds = args.seeds or ([0] if args.tiny else [0, 1])
    if args.tiny:
        args.in_process = True
        args.settings = args.settings or ",".join(TINY_SETTINGS)
        args.budget_minutes = 0.05 if args.budget_minutes is None else args.budget_minutes
        args.calibrate_steps = min(args.calibrate_steps, 4)
    if args.in_process and args.jobs != 1:
        p.error("--in-process runs one command at a time: use --jobs 1")
    args.budget_minutes = 10.0 if args.budget_minutes is None else args.budget_minutes
    if args.budget_minutes <= 0 or args.jobs < 1 or args.calibrate_steps < 8 and not args.tiny:
        p.error("--budget-minutes must be > 0, --jobs >= 1, --calibrate-steps >= 8")
    args.settings = _settings(args.settings or ",".join(SETTINGS), p)
    args.out = args.out or ROOT / "runs" / ("mini_severe_tiny" if args.tiny else "mini_severe")
    args.threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    args.budget = Budget(args.budget_minutes * 60, args.calibrate_steps)
    bad = [d for d in args.data if "=" not in d or d.startswith(("=", "data.", "eval."))]
    if bad:
        p.error(f"--data {bad[0]!r}: write a moving_shapes option as KEY=VALUE, e.g. looks=1")
    if any(d.startswith("style=") for d in args.data):
        p.error(
            "--data style=...: the settings choose their own styles (the domain shift renders "
            "the videos in another style); give the style's options instead, e.g. the shaded "
            "videos: --data object_light=0.6 --data gravity=0"
        )
    args.data_overrides = [f"data.dataset.{d}" for d in args.data]
    args.eval_overrides = [
        *(TINY_EVAL if args.tiny else ()),
        *args.data_overrides,
        *(f"eval.test_dataset.{d}" for d in args.data),
    ]
    try:
        args.variants = [parse_variant(v) for v in args.variant]
    except ValueError as exc:
        p.error(str(exc))
    return args


def common_pretrain_overrides(args) -> list[str]:
    """What every pretraining (and calibration) run gets: --tiny's small data, --data's videos."""
    return [*(TINY_PRETRAIN if args.tiny else ()), *args.data_overrides]


def _settings(text: str, p: argparse.ArgumentParser) -> list[str]:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in keys if k not in SETTINGS]
    if bad:
        p.error(f"--settings: unknown {', '.join(bad)}; choose from {','.join(SETTINGS)}")
    return keys


def _check_same_budget(args) -> None:
    """A rerun must not change what finished runs measured: the budget and the videos are
    part of OUT."""
    path = args.out / "benchmark.json"
    want = {"budget_minutes": args.budget_minutes, "tiny": args.tiny, "data": args.data}
    if path.is_file():
        have = {"data": [], **json.loads(path.read_text())}  # (no "data": the default videos)
        if {k: have.get(k) for k in want} != want:
            raise SystemExit(
                f"{args.out} holds a benchmark with {have}, not {want}: give another --out "
                "(or rerun with the same settings to continue it)"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(want) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from vssl_core.plugins import load_plugins

    host = load_plugins()
    pretrain_overrides = common_pretrain_overrides(args)
    methods = args.methods or default_methods(host)
    arms = make_arms(methods, ROOT / "recipes", pretrain_overrides, host, args.variants)
    _check_same_budget(args)
    t0 = time.perf_counter()
    failed: list[str] = []
    stop = StopFlag()
    if not args.report_only:
        runner = Runner(args.out, args.threads, args.in_process)
        with stop.catching(runner):
            calib = calibration_tasks(arms, args, pretrain_overrides)
            run_tasks(calib, runner, jobs=1, stop=stop)  # alone: their timings set the budget
            rest = [
                t
                for t in plan_tasks(arms, args, pretrain_overrides)
                if not t.name.startswith("calibrate-")
            ]
            run_tasks(rest, runner, args.jobs, stop=stop)
        failed = [t.name for t in calib + rest if t.status in ("failed", "skipped")]
    wall_min = (time.perf_counter() - t0) / 60
    write_results(arms, args, wall_min, failed)
    if stop.signum is not None:
        name = signal.Signals(stop.signum).name
        print(f"stopped by {name}: the runs saved their checkpoints; rerun the command to continue")
        return stop.exit_code
    if failed:
        print(f"not finished: {', '.join(failed)} (logs in {args.out / 'logs'}); rerun to retry")
        return 1
    return 0


def _pretext_row(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("lr", "clips_per_s", "data_wait")}


def pretext_curves(arms: list[Arm], args) -> dict:
    """Per pretraining run, its first and last logged loss and metrics (did the pretext task
    learn at all? A method that does not transfer may simply not have trained)."""
    curves = {}
    for arm in arms:
        for seed in args.seeds:
            path = args.out / "pretrain" / f"{arm.name}-s{seed}" / "metrics.jsonl"
            if not arm.pretrained or not path.is_file():
                continue
            rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
            rows = [_pretext_row(r) for r in rows if "loss" in r]
            if rows:
                curves[f"{arm.name}-s{seed}"] = {"first": rows[0], "last": rows[-1]}
    return curves


def write_results(arms: list[Arm], args, wall_min: float, failed: list[str]) -> None:
    calibration_path = args.out / "calibration.json"
    calibration = json.loads(calibration_path.read_text()) if calibration_path.is_file() else {}
    steps = {
        a.name: budget_steps(a, args) for a in arms if a.pretrained and a.timed_as in calibration
    }
    wall = {}
    runs = {f"{a.name}-s{seed}" for a in arms for seed in args.seeds}
    for path in sorted(args.out.glob("*/**/" + DONE)):
        where = path.parent.relative_to(args.out)  # pretrain/ARM-sN or eval/ARM-sN/PROTOCOL
        if where.parts[1] in runs:  # this report's arms and seeds only
            wall[str(where)] = json.loads(path.read_text())["wall_s"]
    threads = sorted({c["threads"] for c in calibration.values()}) or [args.threads]
    meta = {
        "budget": f"{args.budget_minutes:g} min per pretraining (calibration.json)",
        "threads": "/".join(map(str, threads)),
        "pretrain_min": sum(v for k, v in wall.items() if k.startswith("pretrain")) / 60,
        "eval_min": sum(v for k, v in wall.items() if k.startswith("eval")) / 60,
    }
    summary = summarize(arms, args)
    results = {
        "pretext": pretext_curves(arms, args),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "budget_minutes": args.budget_minutes,
        "data": args.data,  # moving_shapes options of every video (none: the default videos)
        "pretrain_steps": steps,
        "calibration": calibration,
        "seeds": args.seeds,
        "settings": {
            k: {"factor": BY_KEY[k].factor, "metric": BY_KEY[k].metric} for k in args.settings
        },
        "arms": {
            a.name: {
                "recipe": str(a.recipe) if a.recipe else None,
                "overrides": list(a.overrides),
                "budget_x": a.budget_x,
                "backbone": a.backbone,
                "baseline": a.baseline,
            }
            for a in arms
        },
        "wall_s": wall,
        "wall_min_this_call": round(wall_min, 2),
        "not_finished": failed,
        **summary,
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "results.md").write_text(markdown(arms, args, summary, meta))
    plot(arms, args, summary, args.out / "results.png")
    print(
        f"results: {args.out / 'results.md'}, {args.out / 'results.json'}, {args.out / 'results.png'}"
    )


if __name__ == "__main__":
    sys.exit(main())
