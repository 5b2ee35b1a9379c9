"""`vssl data check` lists deleted videos (issue 18, defect 6)."""

from __future__ import annotations

import os

import pytest
import yaml
from kit.cli import run_cli
from vssl_datasets.synth_disk import SynthSpec, write_layout


@pytest.fixture
def ucf(tmp_path):
    root = tmp_path / "ucf"
    write_layout("ucf101", root, SynthSpec(num_classes=2, videos_per_class=2, frames=8, size=16))
    listed = (root / "ucfTrainTestlist" / "trainlist01.txt").read_text().splitlines()
    return root, [f"UCF-101/{line.split()[0]}" for line in listed if line.strip()]


@pytest.mark.parametrize("missing", ["error", "skip"])
def test_deleted_videos_are_listed_as_missing(ucf, tmp_path, capsys, missing):
    root, videos = ucf
    deleted = videos[:2]
    for rel in deleted:
        os.remove(root / rel)
    with open(root / videos[2], "r+b") as f:  # one more, corrupt
        f.truncate(100)
    recipe = tmp_path / "check.yaml"
    dataset = {"name": "ucf101", "root": str(root), "missing": missing}
    recipe.write_text(yaml.safe_dump({"data": {"dataset": dataset}}))
    out = tmp_path / "quarantine.txt"
    code = run_cli(["data", "check", str(recipe), "--workers", "1", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 1
    counts = dict(
        line.split() for line in text.splitlines() if line.startswith(("missing ", "ok "))
    )
    assert counts["missing"] == "2", text
    listed = [li for li in out.read_text().splitlines() if li and not li.startswith("#")]
    assert set(deleted) <= set(listed) and videos[2] in listed
    assert "# missing: no such file" in out.read_text()
