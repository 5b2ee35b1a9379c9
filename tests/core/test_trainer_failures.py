"""A run that fails says why in train.log, and one that cannot start leaves no run folder."""

import pytest
from kit import faults

from vssl_core.config import load_config
from vssl_core.engine.trainer import TrainingError, train
from vssl_core.plugins import load_plugins


def run(recipe, *overrides, extra=()):
    host = load_plugins(extra=extra)
    return train(load_config(recipe, list(overrides), host), host)


def test_a_run_that_cannot_start_leaves_no_run_folder(tiny_recipe):
    with pytest.raises(TrainingError, match="fewer than one global batch"):
        run(tiny_recipe, "batch.global_size=64")  # the dataset has 32 samples
    assert not (tiny_recipe.parent / "runs" / "tiny").exists()


def test_train_log_records_why_a_run_failed(tiny_recipe):
    with pytest.raises(TrainingError, match="non-finite loss"):
        run(tiny_recipe, "objective={name: nan_after, nan_at_call: 3}", extra=[("faults", faults)])
    last = (tiny_recipe.parent / "runs" / "tiny" / "train.log").read_text().splitlines()[-1]
    assert "ERROR failed at step 2: TrainingError: non-finite loss (nan) at step 3" in last
