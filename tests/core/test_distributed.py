"""2-process torchrun (gloo) against a 1-process run with the same global batch."""

import subprocess
import sys

import pytest
import torch
from kit.runs import cli_env, read_metrics

from vssl_core.engine.checkpoint import load_checkpoint

CL3D = torch.channels_last_3d


def _train(cwd, recipe, nproc, name, *overrides):
    if nproc == 1:
        cmd = [sys.executable, "-m", "vssl_core.cli"]
    else:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "-m",
            "vssl_core.cli",
        ]
    cmd += ["train", str(recipe), f"run.name={name}", *overrides]
    out = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(), cwd=cwd, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


@pytest.mark.slow
def test_two_ranks_match_one_rank_with_the_same_global_batch(tiny_recipe, tmp_path):
    one = _train(tmp_path, tiny_recipe, 1, "one", "batch.per_rank=4")  # 4 x 1 rank x 2 accum
    two = _train(tmp_path, tiny_recipe, 2, "two", "batch.per_rank=4")  # 4 x 2 ranks x 1 accum
    assert (
        "8 = 4 per rank x 2 rank(s) x 1 accumulation"
        in (tmp_path / "runs/two/recipe.yaml").read_text()
    )
    assert (
        "8 = 4 per rank x 1 rank(s) x 2 accumulation"
        in (tmp_path / "runs/one/recipe.yaml").read_text()
    )
    l1 = [r["loss"] for r in read_metrics(tmp_path / "runs" / "one")]
    l2 = [r["loss"] for r in read_metrics(tmp_path / "runs" / "two")]
    assert len(l1) == len(l2) == 8
    assert l2 == pytest.approx(l1, rel=1e-4)
    assert l1[-1] < l1[0]
    assert "completed at step 8" in one.stdout and "completed at step 8" in two.stdout


@pytest.mark.slow
def test_a_monitor_agrees_between_two_ranks_and_one(tiny_recipe, tmp_path):
    """The knn monitor under torchrun: each rank embeds its share of an odd number of videos,
    the bank is gathered and the metrics synced. At step 0 both runs hold the same weights, so
    the numbers must be equal; every rank must finish (no collective left waiting)."""
    bank = "{name: moving_shapes, num_samples: 7, num_classes: 4, num_frames: 8, size: 32, seed: 1}"
    test = "{name: moving_shapes, num_samples: 5, num_classes: 4, num_frames: 8, size: 32, seed: 2}"
    monitor = (
        f"monitor={{name: knn, every_steps: 4, k: 3, train_dataset: {bank}, test_dataset: {test}}}"
    )
    _train(tmp_path, tiny_recipe, 1, "one", "batch.per_rank=4", monitor)
    two = _train(tmp_path, tiny_recipe, 2, "two", "batch.per_rank=4", monitor)
    assert "completed at step 8" in two.stdout
    rows = {n: read_metrics(tmp_path / "runs" / n) for n in ("one", "two")}
    for name, got in rows.items():
        assert [r["step"] for r in got if "knn_top1" in r] == [0, 4, 8], name
    first = {n: {k: v for k, v in got[0].items() if k.startswith("knn")} for n, got in rows.items()}
    assert first["one"] == first["two"]
    assert 0 <= first["one"]["knn_top1"] <= 100


@pytest.mark.slow
def test_channels_last_two_ranks_match_one_rank(tiny_recipe, tmp_path):
    """DDP buckets NDHWC gradients as the single process steps them (a CNN with BatchNorm: 4
    clips per forward on both sides)."""
    cnn = (
        "backbone={name: cnn3d_small, img_size: 32, num_frames: 4, width: 8}",
        "objective={name: rotation, sampling_stride: 2, dropout: 0.0}",  # per-rank dropout seeds
        "optim={name: sgd, lr: 0.05, lr_scaling: none}",
        "train.channels_last=true",
        "batch.per_rank=4",
    )
    _train(tmp_path, tiny_recipe, 1, "one", *cnn)
    _train(tmp_path, tiny_recipe, 2, "two", *cnn)
    l1 = [r["loss"] for r in read_metrics(tmp_path / "runs" / "one")]
    l2 = [r["loss"] for r in read_metrics(tmp_path / "runs" / "two")]
    assert len(l1) == len(l2) == 8 and l2 == pytest.approx(l1, rel=1e-4)
    for name in ("one", "two"):  # the option took effect on both sides
        state = load_checkpoint(tmp_path / "runs" / name / "checkpoints" / "last.pt")["model"]
        convs = [w for w in state.values() if w.ndim == 5]
        assert convs and all(w.is_contiguous(memory_format=CL3D) for w in convs)


@pytest.mark.slow
def test_compiled_two_ranks_match_one_eager_rank(tiny_recipe, tmp_path):
    """The zoo's VideoMAE recipes compile under torchrun: the compiled DDP module (graphs split
    at its gradient buckets) logs the losses of an eager single process."""
    _train(tmp_path, tiny_recipe, 1, "one", "batch.per_rank=4")
    two = _train(tmp_path, tiny_recipe, 2, "two", "batch.per_rank=4", "train.compile=true")
    assert "completed at step 8" in two.stdout
    l1 = [r["loss"] for r in read_metrics(tmp_path / "runs" / "one")]
    l2 = [r["loss"] for r in read_metrics(tmp_path / "runs" / "two")]
    assert len(l1) == len(l2) == 8 and l2 == pytest.approx(l1, rel=1e-3, abs=1e-4)
    state = load_checkpoint(tmp_path / "runs" / "two" / "checkpoints" / "last.pt")["model"]
    assert not any("_orig_mod" in k or k.startswith("module.") for k in state)
