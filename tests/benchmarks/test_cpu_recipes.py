"""benchmarks/cpu_recipes.py: runs recipes as written, summarizes their logs, resumes."""

import json

import pytest


def test_summary_takes_the_mean_of_the_first_and_last_windows(cpu_recipes):
    rows = [{"step": s, "loss": float(10 - s), "acc": s / 10} for s in range(1, 9)]
    got = cpu_recipes.summarize(rows)
    assert got["loss"] == (8.0, 3.0) and got["acc"] == pytest.approx((0.2, 0.7))
    assert "batch_acc" not in got


def test_runs_a_recipe_and_skips_it_when_finished(cpu_recipes, tmp_path, capsys, monkeypatch):
    argv = ["--recipes", "rotation", "--out", str(tmp_path), "--json", str(tmp_path / "r.json")]
    tiny = ["train.max_steps=3", "log.every_steps=1", "data.dataset.num_samples=16"]
    assert cpu_recipes.main([*argv, *tiny]) == 0
    result = json.loads((tmp_path / "r.json").read_text())["runs"]["rotation"]
    assert result["steps"] == 3 and set(result["metrics"]) == {"loss", "acc"}
    assert "| rotation |" in capsys.readouterr().out

    def no_rerun(*a, **k):
        raise AssertionError("a finished recipe ran again")

    monkeypatch.setattr(cpu_recipes.subprocess, "run", no_rerun)
    assert cpu_recipes.main([*argv, *tiny]) == 0
