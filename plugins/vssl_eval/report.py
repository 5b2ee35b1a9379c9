"""The ``vssl severe`` report: this checkpoint beside the published numbers.

Writes three files into the output folder:

- ``report.md``: a Markdown table, this checkpoint's row first, then every published row that
  has a number for a setting that was run, each name marked with its source ([1], [2], ...);
  cells a source does not give (or that could not be read) are shown as "–", never filled in;
  then per setting: status, every metric, the selected model and the run directory;
- ``report.png``: one panel per setting, the published numbers as grey dots, this
  checkpoint's as a red bar and chance as a dashed line (for the synthetic miniature only its
  own bars: the real benchmark's numbers measure something else), titled by the checkpoint's
  run;
- ``results.json``: the same numbers for scripts.

The published numbers are ``severe_published.yaml`` beside this file, in the recipe zoo's
published-results format (``recipes/zoo/results/README.md``), which :func:`load_published`
reads from any such file.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from vssl_eval.severe import Outcome, Plan, Setting

PUBLISHED = Path(__file__).with_name("severe_published.yaml")
METRIC_TEXT = {
    "top1": "top-1 accuracy over videos (%)",
    "mean_class_top1": "mean per-class top-1 accuracy (%)",
    "map": "mean average precision (%)",
    "mae": "mean counting error |c' - c| / c, lower is better",
}
MISSING = "–"


@dataclass(frozen=True)
class PublishedRow:
    name: str
    protocol: str
    source: str
    results: dict[str, float]
    note: str = ""


@dataclass(frozen=True)
class Report:
    markdown: Path
    chart: Path
    results: Path


def load_published(path: Path = PUBLISHED) -> list[PublishedRow]:
    """The groups of a published-results file (``published: [{name, protocol, source, note,
    results}]``; a zoo file's ``recipe``/``overrides`` keys are allowed and not needed here)."""
    data = yaml.safe_load(Path(path).read_text())
    groups = data.get("published") if isinstance(data, dict) else None
    if not isinstance(groups, list):
        raise ValueError(f"{path}: expected `published:` with a list of result groups")
    rows = []
    for i, g in enumerate(groups):
        missing = [k for k in ("name", "protocol", "source", "results") if k not in g]
        if missing:
            raise ValueError(f"{path}: published[{i}] lacks {', '.join(missing)}")
        rows.append(
            PublishedRow(
                g["name"], g["protocol"], g["source"], dict(g["results"]), g.get("note", "")
            )
        )
    return rows


def _fmt(value: float | None, setting: Setting) -> str:
    if value is None:
        return MISSING
    return f"{value:.3f}" if setting.metric == "mae" else f"{value:.1f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _published_rows(settings: list[Setting], published: list[PublishedRow]):
    """Rows with a number in at least one shown column; sources numbered in order of use."""
    sources: dict[str, int] = {}
    rows = []
    for p in published:
        if not any(s.key in p.results for s in settings):
            continue
        ref = sources.setdefault(p.source, len(sources) + 1)
        rows.append([f"{p.name} [{ref}]", *(_fmt(p.results.get(s.key), s) for s in settings)])
    return rows, sources


def _checkpoint_label(plan: Plan) -> str:
    return f"`{plan.checkpoint}`" if plan.checkpoint else "none (random initialisation)"


def _header(s: Setting) -> str:
    return s.title + (" ↓" if not s.higher_is_better else "")


def render_markdown(plan: Plan, outcomes: list[Outcome], published: list[PublishedRow]) -> str:
    settings = [o.setting for o in outcomes]
    mine = [_fmt(o.metrics.get(o.setting.metric), o.setting) for o in outcomes]
    mine = [f"**{v}**" if v != MISSING else v for v in mine]
    pub_rows, sources = _published_rows(settings, published)
    kind = "synthetic miniature" if plan.synthetic else "benchmark"
    lines = [
        f"# SEVERE {kind}: {plan.checkpoint or 'random initialisation'}",
        "",
        f"Checkpoint: {_checkpoint_label(plan)}. Written by `vssl severe` on "
        f"{datetime.date.today().isoformat()}; runs in `{plan.out}`.",
        "",
    ]
    this = ["**this checkpoint**" + (" (miniature)" if plan.synthetic else "")]
    if plan.synthetic:
        lines += [
            "The synthetic miniature (recipes/severe/synthetic/) stands in for each setting on "
            "the embedded moving-shapes data: "
            + "; ".join(f"{s.title}: {s.mini}" for s in settings)
            + ". Its numbers measure the same four factors at toy scale and are **not "
            "comparable** with the published numbers of the real benchmark, listed below for "
            "reference.",
            "",
            *_table(["", *map(_header, settings)], [this + mine, _chance_row(outcomes)]),
            "",
            "Chance: what guessing scores on these test videos: 1 / classes for accuracies, the "
            "mean error of the best constant count for UCF-RC, the label frequency (the mAP of "
            "random scores) for Charades.",
            "",
            "## Published numbers of the real benchmark (reference)",
            "",
            *_table(["", *map(_header, settings)], pub_rows),
        ]
    else:
        lines += _table(["", *map(_header, settings)], [this + mine, *pub_rows])
    metrics = "; ".join(f"{_header(s)}: {METRIC_TEXT[s.metric]}" for s in settings)
    lines += [
        "",
        f"Metrics: {metrics}.",
        "",
        f"{MISSING}: not reported by the source, unreadable in it, or not run. Published rows "
        "are R(2+1)D-18 pretrained on Kinetics-400 unless the name says otherwise. FX-S1 and "
        "UB-S1: the tables likely report mean per-class accuracy (spec "
        "contrastive-and-severe.md §8.7); this checkpoint's top-1 is in the details below.",
        "",
        "Sources:",
        "",
        *_sources(sources, published),
    ]
    lines += ["", "## Details", "", *_details(outcomes)]
    return "\n".join(lines) + "\n"


def _sources(sources: dict[str, int], published: list[PublishedRow]) -> list[str]:
    """Numbered sources; a note every shown row of a source shares is said once, with it."""
    shown = [p for p in published if p.source in sources]
    lines, per_row = [], []
    for text, n in sources.items():
        notes = {p.note for p in shown if p.source == text}
        shared = len(notes) == 1 and "" not in notes
        lines.append(f"{n}. {text}" + (f" ({next(iter(notes))})" if shared else ""))
        if not shared:
            per_row += [f"- {p.name} [{n}]: {p.note}" for p in shown if p.source == text and p.note]
    if per_row:
        lines += ["", "Notes on published rows:", "", *per_row]
    return lines


def chance_level(setting: Setting, run_dir: Path) -> float | None:
    """What guessing scores on a run's test videos (from its predictions.jsonl): 100 / classes
    for accuracies, the mean error of the best constant count, the mean label frequency (the
    expected average precision of random scores) for mAP. None without predictions."""
    path = Path(run_dir) / "predictions.jsonl"
    if not path.is_file():
        return None
    labels = [json.loads(line)["label"] for line in path.read_text().splitlines() if line]
    if not labels:
        return None
    if setting.metric == "mae":
        return min(
            sum(abs(c - n) / n for n in labels) / len(labels)
            for c in range(1, int(max(labels)) + 1)
        )
    num_classes = len(json.loads(path.read_text().splitlines()[0])["scores"])
    if setting.metric == "map":
        return 100 * sum(len(x) for x in labels) / (len(labels) * num_classes)
    return 100 / num_classes


def _chance_row(outcomes: list[Outcome]) -> list[str]:
    return ["chance"] + [_fmt(chance_level(o.setting, o.run_dir), o.setting) for o in outcomes]


def _details(outcomes: list[Outcome]) -> list[str]:
    rows = []
    for o in outcomes:
        info = _metrics_file(o.run_dir)
        sel = info.get("selected", {})
        selected = f"{sel.get('rule', '')} (step {sel.get('step', '?')})" if sel else MISSING
        videos = f"{info.get('num_videos', MISSING)} ({info.get('num_failed', 0)} failed)"
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in o.metrics.items()) or o.error or MISSING
        rows.append(
            [o.setting.key, o.setting.factor, o.status, metrics, selected, videos, f"`{o.run_dir}`"]
        )
    header = ["setting", "factor", "status", "metrics", "model", "test videos", "run"]
    return _table(header, rows)


def _metrics_file(run_dir: Path) -> dict:
    path = Path(run_dir) / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


METRIC_AXIS = {
    "top1": "top-1 accuracy (%)",
    "mean_class_top1": "mean class top-1 (%)",
    "map": "mAP (%)",
    "mae": "counting error (lower is better)",
}


def checkpoint_name(checkpoint: str | None) -> str:
    """What the chart calls a checkpoint: its run for ``runs/<run>/checkpoints/<file>``
    ("rotation (last.pt)"), else its file name; "random init" without one."""
    if not checkpoint:
        return "random init"
    path = Path(checkpoint)
    if path.parent.name == "checkpoints" and path.parent.parent.name:
        return f"{path.parent.parent.name} ({path.name})"
    return path.name


def build_chart(plan: Plan, outcomes: list[Outcome], published: list[PublishedRow]):
    """One panel per setting: this checkpoint as a red bar, the published values as grey dots
    (the real benchmark only), what guessing scores as a dashed line; the metric on each y axis,
    the legend below the panels (it covers no bar)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(outcomes)
    fig = Figure(figsize=(max(2.1 * n + 0.6, 6.0), 3.9), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, o in zip(axes, outcomes, strict=True):
        s = o.setting
        values = (
            [] if plan.synthetic else [p.results[s.key] for p in published if s.key in p.results]
        )
        if values:
            offsets = [((i * 0.37) % 0.6) - 0.3 for i in range(len(values))]
            ax.scatter(offsets, values, s=12, color="0.55", label="published", zorder=3)
        mine = o.metrics.get(s.metric)
        if mine is not None:
            ax.bar([0], [mine], width=0.5, color="tab:red", alpha=0.8, zorder=1,
                   label="this checkpoint")  # fmt: skip
            ax.annotate(_fmt(mine, s), (0, mine), ha="center", va="bottom", fontsize=8)
        chance = chance_level(s, o.run_dir)
        if chance is not None:
            ax.axhline(chance, color="0.2", linestyle="--", linewidth=1, zorder=2, label="chance")
        ax.set_title(_header(s), fontsize=9)
        ax.set_ylabel(METRIC_AXIS[s.metric], fontsize=7)
        ax.set_xticks([])
        ax.set_xlim(-0.6, 0.6)
        ax.tick_params(labelsize=7)
        if s.metric == "mae":
            ax.set_ylim(0, max([0.5, *values, mine or 0, chance or 0]) * 1.15)
        else:
            ax.set_ylim(0, 105)
    labels: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            labels.setdefault(label, handle)
    if labels:
        fig.legend(list(labels.values()), list(labels), loc="outside lower center",
                   ncols=len(labels), fontsize=7, frameon=False)  # fmt: skip
    kind = "SEVERE miniature (synthetic)" if plan.synthetic else "SEVERE benchmark"
    fig.suptitle(f"{kind}: {checkpoint_name(plan.checkpoint)}", fontsize=10)
    return fig


def render_chart(
    plan: Plan, outcomes: list[Outcome], published: list[PublishedRow], path: Path
) -> None:
    build_chart(plan, outcomes, published).savefig(path, dpi=120)


def write_report(plan: Plan, outcomes: list[Outcome], published_file: Path = PUBLISHED) -> Report:
    published = load_published(published_file)
    plan.out.mkdir(parents=True, exist_ok=True)
    report = Report(plan.out / "report.md", plan.out / "report.png", plan.out / "results.json")
    report.markdown.write_text(render_markdown(plan, outcomes, published))
    render_chart(plan, outcomes, published, report.chart)
    results = {
        "checkpoint": plan.checkpoint,
        "synthetic": plan.synthetic,
        "settings": {
            o.setting.key: {
                "status": o.status,
                "metric": o.setting.metric,
                "value": o.metrics.get(o.setting.metric),
                "metrics": o.metrics,
                "run_dir": str(o.run_dir),
                "error": o.error,
            }
            for o in outcomes
        },
    }
    report.results.write_text(json.dumps(results, indent=2) + "\n")
    return report
