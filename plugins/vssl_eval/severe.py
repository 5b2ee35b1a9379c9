"""``vssl severe CHECKPOINT``: the SEVERE benchmark (Thoker et al., ECCV 2022) on one checkpoint.

Runs the chosen settings one after another, each an evaluation recipe of ``recipes/severe/``
(or of its synthetic miniature, ``recipes/severe/synthetic/``; the copies vssl ships, or those of
the working directory) through the same protocol
``vssl eval`` runs, each in ``OUT/<setting>/``; then writes the report (:mod:`vssl_eval.report`).

Resumable: a setting whose ``metrics.json`` exists is not run again (it must be of the same
checkpoint), one with a training checkpoint continues from it (``resume=true``); so after an
interruption the same command picks up where it stopped.

What every setting gets, in order (later wins): ``run.output_root=OUT run.name=<setting>``; the
backbone a vssl checkpoint was trained with (its saved ``recipe.backbone``, also kept by
``vssl convert --backbone``), so the recipes fit the checkpoint; ``checkpoint`` and ``--format``;
the dataset root given with ``--root DATASET=PATH``; ``resume=true`` if interrupted; then the
command line's ``key=value`` overrides, and ``SETTING:key=value`` ones for that setting only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vssl_core.cli.commands import CliCommand

log = logging.getLogger("vssl.severe")

NO_CHECKPOINT = "none"  # CHECKPOINT value for a randomly initialised backbone (SEVERE's "None")


@dataclass(frozen=True)
class Setting:
    """One SEVERE setting: its recipe (``<key>.yaml``), what it measures and how it is read."""

    key: str  # recipe stem and published-results key (recipes/zoo/results/settings.yaml)
    title: str
    factor: str  # domain | samples | actions | tasks | existing
    dataset: str  # the dataset component the real recipe reads (its root is --root NAME=PATH)
    metric: str  # the metrics.json entry the report shows
    higher_is_better: bool = True
    mini: str = ""  # what the synthetic miniature measures instead ("" : no miniature)


SETTINGS: tuple[Setting, ...] = (
    Setting("ssv2", "SS-v2", "domain", "ssv2", "top1", mini="motions in another look (flat)"),
    Setting("gym99", "Gym-99", "domain", "gym99", "top1", mini="20 motions, noisy look"),
    Setting("ucf101_1k", "UCF 10^3", "samples", "ucf101", "top1", mini="10 videos per class"),
    Setting("gym99_1k", "Gym 10^3", "samples", "gym99", "top1", mini="Gym mini, 10 per class"),
    Setting(
        "fx_s1", "FX-S1", "actions", "gym99", "mean_class_top1", mini="classes differ in speed"
    ),
    Setting("ub_s1", "UB-S1", "actions", "gym99", "mean_class_top1", mini="classes differ in path"),
    Setting("ucf_rc", "UCF-RC", "tasks", "ucfrep", "mae", False, mini="repetition counting"),
    Setting("charades", "Charades", "tasks", "charades", "map", mini="two motions, multi-label"),
    Setting("ucf101", "UCF101", "existing", "ucf101", "top1"),
    Setting("hmdb51", "HMDB51", "existing", "hmdb51", "top1"),
)
BY_KEY = {s.key: s for s in SETTINGS}
BENCHMARK = tuple(s.key for s in SETTINGS if s.factor != "existing")  # SEVERE's eight
DATASETS = tuple(sorted({s.dataset for s in SETTINGS}))


@dataclass
class Outcome:
    """How one setting went: ``status`` is completed, skipped (finished earlier), preempted or
    failed; ``metrics`` come from its metrics.json."""

    setting: Setting
    run_dir: Path
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""


# ------------------------------------------------------------------------------ arguments


def parse_settings(text: str | None, synthetic: bool) -> list[Setting]:
    """``a,b,...`` -> settings in the order given (default: SEVERE's eight)."""
    keys = BENCHMARK if not text else tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown:
        raise ValueError(
            f"--settings: unknown {', '.join(unknown)}; choose from {', '.join(BY_KEY)}"
        )
    chosen = [BY_KEY[k] for k in dict.fromkeys(keys)]
    no_mini = [s.key for s in chosen if synthetic and not s.mini]
    if no_mini:
        raise ValueError(
            f"--synthetic: {', '.join(no_mini)} have no miniature; the miniature has "
            f"{', '.join(BENCHMARK)}"
        )
    return chosen


def parse_roots(items: list[str]) -> dict[str, str]:
    """``--root NAME=PATH`` (repeatable) -> {dataset component: root}."""
    roots = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not path or name not in DATASETS:
            raise ValueError(
                f"--root {item!r}: give DATASET=PATH with DATASET one of {', '.join(DATASETS)} "
                "(e.g. --root ucf101=/data/ucf101)"
            )
        roots[name] = path
    return roots


def split_overrides(overrides: list[str], settings: list[Setting]) -> tuple[list, dict]:
    """``key=value`` for every setting; ``SETTING:key=value`` for one."""
    common: list[str] = []
    own: dict[str, list[str]] = {s.key: [] for s in settings}
    for text in overrides:
        head, sep, rest = text.partition(":")
        if sep and "=" not in head:
            if head not in own:
                raise ValueError(
                    f"override {text!r}: {head!r} is not a chosen setting "
                    f"({', '.join(own)}); write SETTING:key=value"
                )
            own[head].append(rest)
        else:
            common.append(text)
    return common, own


def default_out(checkpoint: str, synthetic: bool) -> Path:
    """runs/severe/<name>[-synthetic]: the run name of runs/<name>/checkpoints/x.pt, else the
    file's stem, or "scratch" without a checkpoint."""
    if checkpoint == NO_CHECKPOINT:
        name = "scratch"
    else:
        path = Path(checkpoint)
        name = path.parent.parent.name if path.parent.name == "checkpoints" else path.stem
    return Path("runs") / "severe" / (name + ("-synthetic" if synthetic else ""))


def find_setting_recipes(
    settings: list[Setting], given: str | None, synthetic: bool, search_paths: Sequence[Path]
) -> dict[str, Path]:
    """Each setting's recipe: ``<key>.yaml`` in --recipes DIR; else ``recipes/severe[/synthetic]``
    of the working directory (a checkout, or a copy of your own), else the recipes vssl ships
    (found through the recipe folders, as ``vssl eval severe/...`` finds them)."""
    from vssl_core.recipe import find_recipe

    if given:
        recipes = {s.key: Path(given) / f"{s.key}.yaml" for s in settings}
        missing = [str(p) for p in recipes.values() if not p.is_file()]
        if missing:
            raise ValueError(f"missing SEVERE recipe(s): {', '.join(missing)}")
        return recipes
    sub = "recipes/severe/" + ("synthetic/" if synthetic else "")
    return {s.key: find_recipe(f"{sub}{s.key}.yaml", search_paths) for s in settings}


# ------------------------------------------------------------------------------ running


@dataclass(frozen=True)
class Plan:
    """What ``vssl severe`` runs: one recipe per setting, with its overrides (``base``: set by
    the command; ``user``: from the command line, applied last)."""

    out: Path
    checkpoint: str | None  # absolute path; None: random initialisation
    synthetic: bool
    settings: list[Setting]
    recipes: dict[str, Path]
    base: dict[str, list[str]]
    user: dict[str, list[str]]

    def overrides(self, setting: Setting, resume: bool = False) -> list[str]:
        return [
            *self.base[setting.key],
            *(["resume=true"] if resume else []),
            *self.user[setting.key],
        ]


def make_plan(args: argparse.Namespace, search_paths: Sequence[Path] = ()) -> Plan:
    from vssl_core.convert import stored_backbone

    settings = parse_settings(args.settings, args.synthetic)
    recipes = find_setting_recipes(settings, args.recipes, args.synthetic, search_paths)
    roots = parse_roots(args.root)
    common, own = split_overrides(args.overrides, settings)
    if args.synthetic and roots:
        raise ValueError("--root is for the real datasets; the synthetic miniature needs none")
    if not args.synthetic:
        need = sorted({s.dataset for s in settings} - set(roots))
        if need:
            raise ValueError(
                "the dataset folders are not set: "
                + " ".join(f"--root {n}=PATH" for n in need)
                + " (layouts: docs/datasets.md; or choose fewer with --settings)"
            )
    out = Path(args.out) if args.out else default_out(args.checkpoint, args.synthetic)
    ckpt = None if args.checkpoint == NO_CHECKPOINT else str(Path(args.checkpoint).resolve())
    weights = []
    if ckpt is not None:
        backbone = stored_backbone(ckpt)
        if backbone is not None:
            weights.append("backbone=" + json.dumps(backbone))
            log.info("backbone from the checkpoint's recipe: %s", backbone)
        weights.append(f"objective.backbone_checkpoint={ckpt}")
    if args.format:
        if ckpt is None:
            raise ValueError(f"--format {args.format}: there is no checkpoint to read")
        weights.append(f"objective.checkpoint_format={args.format}")
    base = {}
    for s in settings:
        base[s.key] = [f"run.output_root={out}", f"run.name={s.key}", *weights]
        if not args.synthetic:
            base[s.key].append(f"data.dataset.root={roots[s.dataset]}")
    user = {s.key: [*common, *own[s.key]] for s in settings}
    return Plan(out, ckpt, args.synthetic, settings, recipes, base, user)


def preflight(plan: Plan, host) -> None:
    """Before anything runs: every setting's recipe loads, and no finished setting in OUT
    belongs to another checkpoint; all problems at once, not after hours of training."""
    from vssl_core.config import load_config
    from vssl_core.schema import RecipeError

    problems = []
    for s in plan.settings:
        try:
            _finished(plan.out / s.key, plan.checkpoint)
            load_config(plan.recipes[s.key], plan.overrides(s), host)
        except (RecipeError, ValueError) as exc:
            problems.append(f"{s.key}: {exc}")
    if problems:
        raise RecipeError("\n".join(problems))


def _finished(run_dir: Path, checkpoint: str | None) -> dict | None:
    """The metrics.json of a finished run of this checkpoint (None: not finished)."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return None
    done = json.loads(path.read_text())
    if done.get("checkpoint") != checkpoint:
        raise ValueError(
            f"{path} holds results of checkpoint {done.get('checkpoint')!r}, not {checkpoint!r}: "
            "give another --out (nothing was overwritten)"
        )
    return done


def earlier_outcomes(plan: Plan) -> list[Outcome]:
    """Settings of this checkpoint that an earlier ``vssl severe`` finished in OUT and this one
    does not run (e.g. another --settings): they stay in the report. Taken from OUT/results.json
    (same checkpoint, same benchmark or miniature), each confirmed by its metrics.json."""
    path = plan.out / "results.json"
    try:
        saved = json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return []
    if saved.get("checkpoint") != plan.checkpoint or saved.get("synthetic") != plan.synthetic:
        return []
    chosen = {s.key for s in plan.settings}
    found = []
    for key, entry in (saved.get("settings") or {}).items():
        if key in chosen or key not in BY_KEY:
            continue
        run_dir = Path(entry.get("run_dir") or plan.out / key)
        try:
            done = _finished(run_dir, plan.checkpoint)
        except ValueError:
            continue
        if done is not None:
            found.append(Outcome(BY_KEY[key], run_dir, "skipped", done["metrics"]))
    return found


def run_setting(plan: Plan, setting: Setting, host) -> Outcome:
    """Run (or skip, or resume) one setting through its recipe's protocol."""
    from vssl_core.build import build
    from vssl_core.config import load_config

    run_dir = plan.out / setting.key
    done = _finished(run_dir, plan.checkpoint)
    if done is not None:
        return Outcome(setting, run_dir, "skipped", done["metrics"])
    resume = (run_dir / "checkpoints" / "last.pt").is_file()
    config = load_config(plan.recipes[setting.key], plan.overrides(setting, resume), host)
    result = build(host.registry, "protocol", config.data["eval"]["protocol"]).run(config, host)
    return Outcome(setting, result.run_dir, result.status, dict(result.metrics))


def run_all(plan: Plan, host, announce=print) -> list[Outcome]:
    """Every setting in turn; a setting that fails with a user-fixable error is recorded and
    the next one runs; a pre-empted one stops the rest (rerun to continue)."""
    from vssl_core.data.failures import DataLoadingError
    from vssl_core.engine.checkpoint import CheckpointError
    from vssl_core.engine.signals import StopRequest
    from vssl_core.engine.trainer import TrainingError
    from vssl_core.registry import RegistryError
    from vssl_core.schema import RecipeError

    fixable = (RecipeError, RegistryError, TrainingError, CheckpointError, DataLoadingError)
    outcomes = []
    with StopRequest() as between:  # a signal while a setting ends, or between two settings
        between.start_training()  # is a request, honoured before the next setting starts
        for i, setting in enumerate(plan.settings, 1):
            if between.requested:
                between.honoured = True  # (a stop request outside this one need not hear of it)
                error = f"by {between.name} before {setting.key} started"
                outcomes.append(Outcome(setting, plan.out / setting.key, "preempted", error=error))
                break
            announce(f"[{i}/{len(plan.settings)}] {setting.key}: {plan.recipes[setting.key]}")
            try:
                outcome = run_setting(plan, setting, host)
            except (*fixable, ValueError, OSError) as exc:
                log.error("%s failed: %s", setting.key, exc)
                outcome = Outcome(setting, plan.out / setting.key, "failed", error=str(exc))
            outcomes.append(outcome)
            if outcome.status == "preempted":
                break
    return outcomes


# ------------------------------------------------------------------------------ command


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help=f"pretrained weights (any format vssl convert reads), or '{NO_CHECKPOINT}' for a "
        "randomly initialised backbone",
    )
    p.add_argument(
        "--settings",
        metavar="A,B,...",
        help=f"settings to run, in order (default: SEVERE's eight, {','.join(BENCHMARK)}; "
        "also: ucf101, hmdb51)",
    )
    p.add_argument(
        "--synthetic",
        action="store_true",
        help="the miniature on the embedded synthetic data (recipes/severe/synthetic/): minutes "
        "on a CPU, no dataset needed",
    )
    p.add_argument(
        "--root",
        action="append",
        default=[],
        metavar="DATASET=PATH",
        help=f"a dataset's folder, for every setting that reads it ({', '.join(DATASETS)}); "
        "repeatable",
    )
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/severe/<name>)")
    p.add_argument(
        "--format",
        metavar="FMT",
        help="the checkpoint's format (default: detected; see vssl convert --list)",
    )
    p.add_argument(
        "--recipes",
        metavar="DIR",
        help="the settings' recipes (default recipes/severe[/synthetic])",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="recipe overrides for every setting; SETTING:key=value for one setting",
    )


def cmd_severe(args: argparse.Namespace, host) -> int:
    from vssl_core.engine.trainer import EXIT_PREEMPTED
    from vssl_eval.report import write_report

    plan = make_plan(args, host.recipe_search_paths())
    preflight(plan, host)
    main = int(os.environ.get("RANK", "0")) == 0
    outcomes = run_all(plan, host, announce=print if main else lambda text: None)
    if outcomes[-1].status == "preempted":  # no report: settings are still to run
        if main:
            where = outcomes[-1].error or f"during {outcomes[-1].setting.key}"
            print(f"preempted {where}; run the same command again to continue")
        return EXIT_PREEMPTED
    if not main:
        return 0
    earlier = earlier_outcomes(plan)
    if earlier:  # the report then shows them all, in SEVERE's order
        order = [s.key for s in SETTINGS]
        outcomes = sorted(outcomes + earlier, key=lambda o: order.index(o.setting.key))
    report = write_report(plan, outcomes)
    for o in outcomes:
        value = o.metrics.get(o.setting.metric)
        shown = "-" if value is None else f"{value:.4g}"
        print(f"{o.setting.key:<10} {o.setting.metric:<16} {shown:>8}  ({o.status})")
    print(f"report: {report.markdown} and {report.chart}")
    failed = [o.setting.key for o in outcomes if o.status == "failed"]
    if failed:
        print(f"failed: {', '.join(failed)} (the errors are in the report); fix and rerun")
        return 1
    return 0


COMMAND = CliCommand(
    name="severe",
    help="Run the SEVERE benchmark on a checkpoint and write a report with the published numbers.",
    run=cmd_severe,
    configure=_configure,
    takes_overrides=True,
    description=(
        "Fine-tune and test a checkpoint on the SEVERE benchmark's settings (recipes/severe/), "
        "one after another, then write OUT/report.md (this checkpoint beside the published "
        "numbers, with their sources) and OUT/report.png. Rerunning continues an interrupted "
        "run and skips finished settings. --synthetic runs the miniature on the embedded data. "
        "Give the options first, then CHECKPOINT and the key=value overrides. "
        "Example: vssl severe runs/tubelet/checkpoints/last.pt --root ucf101=/data/ucf101 "
        "--root gym99=/data/gym --root ssv2=/data/ssv2 --root ucfrep=/data/ucfrep "
        "--root charades=/data/charades"
    ),
)
