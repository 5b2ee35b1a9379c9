"""benchmarks/data_throughput.py end to end at a tiny size: every data path delivers clips, the
ratios are the per-round quotients of the rates, and the dataset is written once and reused.

Run in a subprocess: the script imports decord, which must stay out of the pytest process (see
tests/plugins/decoders/decoder_kit.py)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from kit.optional import installed

pytestmark = pytest.mark.extras  # CI runs it again with the optional extras (-m extras)

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "data_throughput.py"
TINY = ["--videos", "4", "--seconds", "2", "--rounds", "2", "--batches", "1", "--batch", "2"]
TINY += ["--repeats", "2"]  # also the torch paths with 2 clips per decoded video


def run(data: Path, out: Path, paths: list[str]) -> dict:
    argv = [sys.executable, str(SCRIPT), *TINY, "--workers", "1", "--data", str(data)]
    argv += ["--paths", ",".join(paths), "--json", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text())


@pytest.mark.slow
def test_every_path_delivers_and_the_dataset_is_reused(tmp_path):
    paths = ["pyav"]
    paths += [p for p in ("decord", "ffcv") if installed(p)]
    data = tmp_path / "data"
    first = run(data, tmp_path / "a.json", paths)
    torch_paths = [p for p in paths if p != "ffcv"]
    assert set(first["rates"]) == set(paths) | {f"{p}x2" for p in torch_paths}
    assert {f"{p}x2/{p}" for p in torch_paths} <= set(first["ratios"])
    for name, rates in first["rates"].items():
        assert len(rates) == 2 and all(r > 0 for r in rates), name
    for key, per_round in first["ratios"].items():  # "ffcv/decord": ffcv's rate / decord's
        top, base = key.split("/")
        expected = [t / b for t, b in zip(first["rates"][top], first["rates"][base], strict=True)]
        assert per_round == pytest.approx(expected)
    if "ffcv" in paths:
        assert "ffcv/pyav" in first["ratios"]

    videos = sorted(data.rglob("*.mp4"))
    assert len(videos) == 4
    written = [v.stat().st_mtime_ns for v in videos]
    assert set(run(data, tmp_path / "b.json", ["pyav"])["rates"]) == {"pyav", "pyavx2"}
    # same settings: nothing was rewritten
    assert [v.stat().st_mtime_ns for v in videos] == written
