"""A killed or stalled DDP rank ends every rank with a message naming it, within the timeout,
and the job resumes exactly (issue 18, defect 9). 2-rank gloo torchrun on the CPU."""

from __future__ import annotations

import sys
import time

import pytest
from kit.runs import cli_env, last_weights, run_group, same_weights

from vssl_core.engine.checkpoint import load_checkpoint

TIMEOUT_S = 4
STALL = "data.dataset={name: stall_on_rank, rank: 1, after: %d, seconds: 60}"


def torchrun(cwd, recipe, *overrides, plugin="kit.faults"):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "vssl_core.cli", "-p", plugin, "train", str(recipe), *overrides]
    start = time.monotonic()
    out = run_group(cmd, env=cli_env(), cwd=cwd, timeout=300)
    return out, time.monotonic() - start


COMMON = ("train.max_steps=6", "checkpoint.every_steps=2", "data.num_workers=0")


@pytest.mark.slow
def test_a_stalled_rank_ends_every_rank_with_a_message_and_resume_is_exact(tiny_recipe, tmp_path):
    timeout = f"train.collective_timeout_s={TIMEOUT_S}"
    full, _ = torchrun(tmp_path, tiny_recipe, *COMMON, STALL % 0, "run.name=full")
    assert full.returncode == 0, full.stderr[-3000:]
    # rank 1's 9th load is the first of step 3 (4 clips per rank and step)
    cut, seconds = torchrun(tmp_path, tiny_recipe, *COMMON, STALL % 9, timeout, "run.name=cut")
    assert cut.returncode != 0
    err = cut.stderr
    assert "error: rank 0 (in step 3 (forward, backward, gradient sync)): no progress" in err, err
    assert "Rank 1 is alive but still loading the data of step 3" in err
    assert "error: rank 1 (loading the data of step 3)" in err
    assert "This rank is alive but still loading the data of step 3" in err
    assert "Traceback" not in err.split("failed (exitcode")[0]  # then torchrun's own report
    assert seconds < 120  # the stall itself lasts 60 s: the ranks ended long before
    run_dir = tmp_path / "runs" / "cut"
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 2
    resumed, _ = torchrun(tmp_path, tiny_recipe, *COMMON, STALL % 0, "run.name=cut", "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert same_weights(last_weights(tmp_path / "runs" / "full"), last_weights(run_dir))


@pytest.mark.slow
def test_a_killed_rank_ends_the_job_with_a_message_naming_it(tiny_recipe, tmp_path):
    out, seconds = torchrun(tmp_path, tiny_recipe, *COMMON, plugin="kit.kill_rank1_at3")
    assert out.returncode != 0
    assert "error: rank 0" in out.stderr and "a collective failed" in out.stderr, out.stderr[-3000:]
    assert "Rank 1 stopped responding" in out.stderr
    assert seconds < 90
