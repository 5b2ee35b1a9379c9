"""The `vssl severe` report when run in pieces, and what its chart shows."""

import json
from pathlib import Path

import pytest
from vssl_eval import report, severe
from vssl_eval.severe import BY_KEY, Outcome, Plan


def finished(out: Path, key: str, checkpoint: str | None, value: float, labels=(0, 1, 2, 3)):
    """A setting's run folder as a finished evaluation leaves it."""
    run_dir = out / key
    run_dir.mkdir(parents=True, exist_ok=True)
    metric = BY_KEY[key].metric
    (run_dir / "metrics.json").write_text(
        json.dumps({"checkpoint": checkpoint, "metrics": {metric: value}})
    )
    rows = [{"index": i, "label": y, "scores": [0.0] * 10} for i, y in enumerate(labels)]
    (run_dir / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return Outcome(BY_KEY[key], run_dir, "completed", {metric: value})


def test_settings_run_one_at_a_time_into_one_folder_stay_in_the_report(tmp_path):
    ckpt = "/w/runs/rotation/checkpoints/last.pt"
    first = Plan(tmp_path, ckpt, True, [BY_KEY["ssv2"]], {}, {}, {})
    report.write_report(first, [finished(tmp_path, "ssv2", ckpt, 40.0)])
    second = Plan(tmp_path, ckpt, True, [BY_KEY["ucf101_1k"]], {}, {}, {})
    earlier = severe.earlier_outcomes(second)
    assert [(o.setting.key, o.status, o.metrics) for o in earlier] == [
        ("ssv2", "skipped", {"top1": 40.0})
    ]
    # another checkpoint's results, or the real benchmark's, are not this report's
    assert severe.earlier_outcomes(Plan(tmp_path, "/w/other.pt", True, [], {}, {}, {})) == []
    assert severe.earlier_outcomes(Plan(tmp_path, ckpt, False, [], {}, {}, {})) == []


def test_cmd_severe_reports_the_settings_finished_earlier(tmp_path, monkeypatch, capsys):
    ckpt = None
    report.write_report(
        Plan(tmp_path, ckpt, True, [BY_KEY["ssv2"]], {}, {}, {}),
        [finished(tmp_path, "ssv2", ckpt, 40.0)],
    )
    monkeypatch.setattr(severe, "preflight", lambda plan, host: None)
    monkeypatch.setattr(
        severe, "run_setting", lambda plan, s, host: finished(tmp_path, s.key, ckpt, 55.0)
    )
    args = ["severe", "--synthetic", "--settings", "ucf101_1k", "--out", str(tmp_path), "none"]
    from vssl_core.cli.main import main

    assert main(args) == 0
    saved = json.loads((tmp_path / "results.json").read_text())["settings"]
    assert list(saved) == ["ssv2", "ucf101_1k"]  # SEVERE's order
    assert (
        "| **this checkpoint** (miniature) | **40.0** | **55.0** |"
        in (tmp_path / "report.md").read_text()
    )


@pytest.mark.slow  # matplotlib: about 2 s
def test_the_chart_names_the_run_its_metric_and_chance_and_hides_nothing(tmp_path):
    ckpt = "/w/runs/rotation/checkpoints/last.pt"
    out = finished(tmp_path, "ucf101_1k", ckpt, 71.25)
    fig = report.build_chart(
        Plan(tmp_path, ckpt, False, [out.setting], {}, {}, {}), [out], report.load_published()
    )
    fig.canvas.draw()
    assert fig.get_suptitle() == "SEVERE benchmark: rotation (last.pt)"
    (ax,) = fig.axes
    assert ax.get_ylabel() == "top-1 accuracy (%)"
    chance = [line for line in ax.get_lines() if line.get_label() == "chance"]
    assert chance and chance[0].get_ydata()[0] == pytest.approx(10.0)  # 10 classes
    whole = fig.bbox
    title = fig._suptitle.get_window_extent()
    assert whole.x0 <= title.x0 and title.x1 <= whole.x1  # one panel: the title is not clipped
    (legend,) = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert sorted(labels) == ["chance", "published", "this checkpoint"]
    assert not legend.get_window_extent().overlaps(ax.get_window_extent())  # covers no bar
