"""benchmarks/pretext_cues.py: a finished pretraining is reloaded and measured on held-out
videos with each global cue removed, and only the cue differs between the rows."""

import json
from pathlib import Path

import pytest

from vssl_core.cli.main import main as vssl

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "rotation.yaml"


def test_rows_measure_the_trained_model_on_the_same_videos_without_each_cue(
    pretext_cues, tmp_path, capsys
):
    run = tmp_path / "rotation-tiny"
    argv = [
        "train",
        str(RECIPE),
        f"run.output_root={tmp_path}",
        "run.name=rotation-tiny",
    ]
    argv += ["data.dataset.num_samples=32", "train.max_steps=2", "log.progress_bar=false"]
    assert vssl(argv) == 0
    out = tmp_path / "cues.json"
    assert pretext_cues.main([str(run), "--batches", "2", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())[str(run)]
    assert list(rows) == list(pretext_cues.CUES)
    for row in rows.values():
        assert set(row) == {"loss", "acc"} and 0 <= row["acc"] <= 1
    # dusk does not touch the background's light gradient, but removing the light changes inputs
    assert rows["as rendered"]["loss"] != rows["no light from above"]["loss"]
    assert "| rotation-tiny | neither cue |" in capsys.readouterr().out


def test_a_malformed_row_names_the_fix(pretext_cues, tmp_path, capsys):
    with pytest.raises(SystemExit):
        pretext_cues.main([str(tmp_path), "--row", "jitter objective.photometric=mocov2"])
    assert "write it as 'NAME: key=value ...'" in capsys.readouterr().err
