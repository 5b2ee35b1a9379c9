"""Evaluation outputs in the run directory: ``metrics.json`` (the final metrics and how they were
obtained) and ``predictions.jsonl`` (one row per test video, in dataset order).

Every rank writes its own rows to a part file; rank 0 merges them, so no rank holds all
predictions in memory twice and no collective carries Python objects.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from vssl_eval.runner import DistEnv, TestOutput

log = logging.getLogger("vssl.eval")


def _write_lines(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def write_results(run_dir: Path, env: DistEnv, out: TestOutput, info: dict) -> dict:
    """Write both files (rank 0); return what ``metrics.json`` holds (complete on rank 0, the
    metrics alone on other ranks)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    part = run_dir / f".predictions.part{env.rank}.jsonl"
    failed_part = run_dir / f".failed.part{env.rank}.jsonl"
    _write_lines(part, out.rows)
    _write_lines(failed_part, out.failed)
    env.barrier()
    payload = {**info, "metrics": out.metrics}
    if env.is_main:
        rows, failed = [], []
        for r in range(env.world_size):
            rows += _read_lines(run_dir / f".predictions.part{r}.jsonl")
            failed += _read_lines(run_dir / f".failed.part{r}.jsonl")
        rows.sort(key=lambda row: row["index"])
        failed.sort(key=lambda row: row["index"])
        payload.update(num_videos=len(rows), num_failed=len(failed), failed_videos=failed)
        _write_lines(run_dir / "predictions.jsonl", rows)
        (run_dir / "metrics.json").write_text(json.dumps(payload, indent=2) + "\n")
        for r in range(env.world_size):
            (run_dir / f".predictions.part{r}.jsonl").unlink()
            (run_dir / f".failed.part{r}.jsonl").unlink()
        if failed:
            log.warning(
                "%d test video(s) could not be decoded and are left out of the metrics; they "
                "are listed under failed_videos in %s",
                len(failed),
                run_dir / "metrics.json",
            )
    env.barrier()
    return payload
