"""benchmarks/memory.py: memory per clip of a recipe, through the real trainer in subprocesses."""

import json

import pytest


@pytest.mark.slow
def test_videomae_recipe_memory_grows_with_the_batch(memory, tmp_path):
    out = tmp_path / "memory.json"
    argv = ["--recipes", "videomae", "--steps", "2", "--json", str(out)]
    argv += ["--override=backbone.num_frames=8", "--override=backbone.depth=1"]
    assert memory.main(argv) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["recipe"] == "recipes/videomae.yaml" and row["batch"] == 16
    # 16 clips of 8x64x64 hold several MiB of activations each; 8 more clips must show
    assert row["peak_mib"] > row["peak_mib_half_batch"]
    assert row["per_clip_mib"] > 1.0


def test_unknown_recipe_names_the_choices(memory):
    with pytest.raises(SystemExit, match="choose from .*videomae"):
        memory.recipes(["videomea"])
