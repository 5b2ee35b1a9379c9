"""benchmarks/pretext_cues.py: a finished pretraining is reloaded and measured on held-out
videos with each cue removed, only the cue differs between the rows, and each metric comes with
its chance level."""

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
    measured = json.loads(out.read_text())[str(run)]
    rows = measured["rows"]
    assert list(rows) == list(pretext_cues.ROWS)
    assert measured["chance"] == {"acc": 0.25}  # 4 rotations
    for row in rows.values():
        assert set(row) == {"loss", "acc"} and 0 <= row["acc"] <= 1
    # each row changes the inputs: no two conditions give the same loss
    losses = [row["loss"] for row in rows.values()]
    assert len(set(losses)) == len(losses)
    printed = capsys.readouterr().out
    assert (
        "| rotation-tiny | frozen objects |" in printed and "| rotation-tiny | chance |" in printed
    )


def test_classic_rows_remove_the_classic_styles_global_cues(pretext_cues):
    rows = pretext_cues.parse_rows([], "classic")
    assert rows["no light from above"] == ("data.dataset.light_from_above=0",)
    assert rows["neither cue"] == ("data.dataset.light_from_above=0", "data.dataset.dusk=0")
    every_row = set(pretext_cues.ROWS) | set(pretext_cues.SHADED_ROWS)
    assert set(pretext_cues.OBJECT_CUES) | set(pretext_cues.OTHER_CUES) < every_row


def test_pooled_rows_render_the_former_defaults_videos_under_every_cue(pretext_cues):
    """Runs trained before 2026-12-07 saw 16 looks and paths off the centre: every row keeps
    those videos (a look row sets both options itself), so only the named cue changes."""
    rows = pretext_cues.parse_rows([], "pooled")
    for name, overrides in rows.items():
        assert overrides[0] == "data.dataset.style=pooled", name
        looks = [o for o in overrides if o.startswith("data.dataset.looks=")]
        assert len(looks) == ("look" in name), name
    assert rows["no friction"][-1] == "data.dataset.friction=0"


def test_shaded_rows_render_the_2026_12_07_defaults_videos_under_every_cue(pretext_cues):
    """Runs trained on 2026-12-07 saw the shaded videos: every row keeps them, and the cue the
    shaded videos' up lives in (the object's shading) replaces the gravity row."""
    rows = pretext_cues.parse_rows([], "shaded")
    assert all(o[0] == "data.dataset.style=shaded" for o in rows.values())
    assert rows["no object light"][1:] == ("data.dataset.object_light=0",)
    assert "no gravity" not in rows and set(rows) - {"no object light"} < set(pretext_cues.ROWS)


def test_a_malformed_row_names_the_fix(pretext_cues, tmp_path, capsys):
    with pytest.raises(SystemExit):
        pretext_cues.main([str(tmp_path), "--row", "jitter objective.photometric=mocov2"])
    assert "write it as 'NAME: key=value ...'" in capsys.readouterr().err


def test_the_summary_puts_each_methods_seeds_side_by_side(pretext_cues):
    def measured(acc_as_rendered: float, acc_frozen: float) -> dict:
        rows = {"as rendered": {"acc": acc_as_rendered}, "frozen objects": {"acc": acc_frozen}}
        return {"chance": {"acc": 0.25}, "rows": rows}

    table = {
        "p/rotation-s0": measured(0.9, 0.25),
        "p/rotation-s1": measured(0.8, 0.3),
        "p/videomae-s0": {"chance": {}, "rows": {"as rendered": {"loss": 0.5}}},
    }
    text = pretext_cues.summary(table)
    assert "| method (acc) | chance | as rendered | frozen objects |" in text
    assert "| rotation | 0.250 | 0.90 / 0.80 | 0.25 / 0.30 |" in text
    assert "videomae" not in text and pretext_cues.summary(table, "batch_acc") == ""
    assert pretext_cues.method_of("runs/x/clip_order_obj-s12") == "clip_order_obj"


def test_a_queue_is_refilled_with_keys_of_the_measured_videos(pretext_cues):
    """A checkpoint's queue holds keys of its training videos; measured against it, a changed
    condition's positives stand out because the negatives look otherwise (MoCo's instance
    accuracy read 0.66 with one look for all videos; 0.02 against keys of those videos)."""
    import torch

    from vssl_core.nn.contrastive import KeyQueue

    class Contrast(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.queue = KeyQueue(dim=4, size=8)

        def embed_keys(self, clip, keys):
            return clip

    model = Contrast()
    own = pretext_cues.OwnKeys(model, batch_size=2)
    assert own.warmup_batches == 4  # 8 rows, 2 keys a batch
    for b in range(own.warmup_batches):
        keys = torch.full((2, 4), float(b))
        assert model.embed_keys(keys, None) is keys  # the model still gets its keys
        own.after_batch()
    assert sorted(model.queue.queue[:, 0].tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]
    no_queue = pretext_cues.OwnKeys(torch.nn.Linear(2, 2), batch_size=2)
    assert no_queue.warmup_batches == 0
    no_queue.after_batch()  # nothing to refill
