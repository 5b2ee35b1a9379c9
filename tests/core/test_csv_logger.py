"""log.csv: metrics.csv beside metrics.jsonl, the same rows, kept right across a resume."""

import csv

from kit import faults
from kit.runs import read_metrics

from vssl_core.config import load_config
from vssl_core.engine.trainer import train
from vssl_core.plugins import load_plugins


def run(recipe, *overrides, extra=()):
    host = load_plugins(extra=extra)
    return train(load_config(recipe, list(overrides), host), host)


def rows(run_dir):
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_the_csv_holds_the_jsonl_rows_and_survives_a_resume(tiny_recipe):
    run(tiny_recipe, "log.csv=true", extra=[("sigterm", faults.SigtermAt(3))])
    result = run(tiny_recipe, "log.csv=true", "resume=true")
    table, jsonl = rows(result.run_dir), read_metrics(result.run_dir)
    assert [int(r["step"]) for r in table] == list(range(1, 9))
    assert list(table[0])[:3] == ["step", "loss", "lr"]
    for a, b in zip(table, jsonl, strict=True):
        assert float(a["loss"]) == b["loss"]


def test_a_metric_that_appears_later_adds_a_column_to_every_row(tmp_path):
    from pathlib import Path
    from types import SimpleNamespace

    from vssl_core.engine.logging import CsvLogger

    logger = CsvLogger()
    run_ctx = SimpleNamespace(is_main=True, run_dir=Path(tmp_path), start_step=0)
    logger.vssl_train_start(run_ctx)
    logger.vssl_step_end(run_ctx, 1, {"loss": 1.0})
    logger.vssl_step_end(run_ctx, 2, None)
    logger.vssl_step_end(run_ctx, 3, {"loss": 0.5, "knn_top1": 40.0})
    assert rows(tmp_path) == [
        {"step": "1", "loss": "1.0", "knn_top1": ""},
        {"step": "3", "loss": "0.5", "knn_top1": "40.0"},
    ]
