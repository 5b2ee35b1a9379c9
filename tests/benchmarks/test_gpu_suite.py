"""benchmarks/gpu_suite.sh (the one command a lent GPU runs) and gpu_deps.sh: valid bash, and the
rows the suite asks gpu_throughput.py for exist (a renamed row would select nothing there).
A whole dry run on a CPU: GPU_SUITE_TINY=1 bash benchmarks/gpu_suite.sh WORK_DIR."""

import re
import shlex
import subprocess
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.parametrize("script", ["gpu_suite.sh", "gpu_deps.sh"])
def test_the_scripts_are_valid_bash(script):
    done = subprocess.run(["bash", "-n", str(BENCHMARKS / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def suite_args(script: str) -> list[str]:
    """The arguments the suite passes to benchmarks/<script>: arithmetic as 1, $tiny dropped,
    other shell words (paths) as "x"."""
    text = (BENCHMARKS / "gpu_suite.sh").read_text().replace("\\\n", " ")
    text = re.sub(r"\$\(\([^)]*\)\)", "1", text)
    line = next(li for li in text.splitlines() if f"benchmarks/{script}" in li and "--json" in li)
    words = shlex.split(line.split(f"benchmarks/{script}", 1)[1].split(">")[0])
    return ["x" if "$" in w else w for w in words if w != "$tiny"]


def test_the_suite_asks_for_rows_and_profiles_that_exist(gpu_throughput):
    args = suite_args("gpu_throughput.py")
    parsed = gpu_throughput.parse_args(args)
    rows = gpu_throughput.selected_rows(parsed)
    labels = {k.label() for _, k in rows}
    assert set(parsed.labels) <= labels  # every label the suite names selects a row
    assert ("hf_videomae_vit_b", gpu_throughput.Knobs(compile=True)) in rows
    assert parsed.profile_compiled == ["videomae_vit_b"]


def test_the_suite_passes_options_the_end_to_end_script_takes(e2e_throughput):
    parsed = e2e_throughput.parse_args(suite_args("e2e_throughput.py"))
    assert parsed.paths == ["device", "ffcv", "pyav"] and parsed.steps == 8
    assert parsed.workers == 1 and parsed.budget_s == 170
