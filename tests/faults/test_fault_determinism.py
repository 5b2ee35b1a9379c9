"""Two identical runs write identical checkpoints (issue 18, defect 10)."""

from __future__ import annotations

import random

import numpy as np
from kit.runs import train_run


def test_two_identical_runs_write_byte_identical_checkpoints(tiny_recipe):
    first = train_run(tiny_recipe, "train.max_steps=2")
    a = (first.run_dir / "checkpoints" / "last.pt").read_bytes()
    first.run_dir.rename(first.run_dir.with_name("first"))
    random.random(), np.random.rand()  # whatever happened in the process between the runs
    second = train_run(tiny_recipe, "train.max_steps=2")
    b = (second.run_dir / "checkpoints" / "last.pt").read_bytes()
    assert a == b
