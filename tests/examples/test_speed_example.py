"""examples/vssl_speed, the third-party playback-speed plugin: installed with pip into a private
folder and trained from its recipe like a user's package; its sampling checked exactly."""

import importlib
import json
import math
from pathlib import Path

import pytest
import torch
from kit.pip_target import pip_install_target, run_vssl

from vssl_core.interfaces import Batch

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "vssl_speed"


@pytest.fixture
def speed(monkeypatch):
    """The example's objective module, imported from its source folder."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    return importlib.import_module("vssl_speed.objective")


def test_play_at_picks_every_stride_th_frame_from_the_start(speed):
    B, S, T = 3, 57, 8
    frame_index_BCSHW = (
        torch.arange(S, dtype=torch.float32).view(1, 1, S, 1, 1).expand(B, 2, S, 4, 4)
    )
    stride_B, start_B = torch.tensor([1, 4, 8]), torch.tensor([5, 20, 0])
    clip_BCTHW = speed.play_at(frame_index_BCSHW, stride_B, start_B, T)
    assert clip_BCTHW.shape == (B, 2, T, 4, 4)
    for b in range(B):
        expected_T = start_B[b] + stride_B[b] * torch.arange(T)
        assert torch.equal(clip_BCTHW[b, 0, :, 0, 0], expected_T.float())
        assert torch.equal(clip_BCTHW[b, 1, :, 3, 2], expected_T.float())


def test_speeds_and_starts_are_uniform_in_range_and_keyed_per_sample(speed):
    speeds_K = torch.tensor([1, 2, 4, 8])
    keys_B = torch.arange(4000) * 7919 + 11
    label_B, start_B = speed.draw_speeds_and_starts(
        keys_B, 4, window=57, frames=8, speeds_K=speeds_K
    )
    counts_K = torch.bincount(label_B, minlength=4).float() / len(keys_B)
    assert torch.all((counts_K - 0.25).abs() < 0.03), counts_K
    slack_B = 57 - (7 * speeds_K[label_B] + 1)
    assert bool(((start_B >= 0) & (start_B <= slack_B)).all())
    assert int(start_B[label_B == 0].max()) == 57 - 8  # speed 1 reaches the last start
    alone = speed.draw_speeds_and_starts(keys_B[17:18], 4, 57, 8, speeds_K)
    assert (alone[0].item(), alone[1].item()) == (label_B[17].item(), start_B[17].item())


@pytest.mark.parametrize("speeds", [[4, 2], [1], [0, 1], [1, 1, 2]])
def test_bad_speeds_are_a_clear_error(speed, speeds):
    with pytest.raises(
        ValueError, match=r"at least two distinct frame strides >= 1 in increasing order"
    ):
        speed.check_speeds(speeds)


def test_forward_classifies_the_speed_and_every_parameter_learns(speed, host):
    backbone = host.registry.get("backbone", "cnn3d_small").factory(
        img_size=16, num_frames=4, width=4
    )
    model = speed.PlaybackSpeed(backbone, speeds=(1, 3))
    views = model.views()
    assert (views.frames, views.crop_size, views.stride) == (10, 16, 1)  # (4 - 1) * 3 + 1
    B = 6
    batch = Batch(
        clips=[torch.randn(B, 3, views.frames, 16, 16)],
        label=torch.zeros(B, dtype=torch.long),
        index=torch.arange(B),
        keys=torch.arange(B),
    )
    out = model(batch)
    assert torch.isfinite(out.loss) and 0.0 <= float(out.metrics["acc"]) <= 1.0
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    return pip_install_target(EXAMPLE, tmp_path_factory.mktemp("speed"))


@pytest.mark.slow
def test_installed_with_pip_it_is_listed_and_trains_from_its_recipe(installed, tmp_path):
    listed = run_vssl(["list", "objective"], installed, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert any(
        line.split()[:2] == ["playback_speed", "[speed]"] for line in listed.stdout.splitlines()
    )
    overrides = [
        f"run.output_root={tmp_path}",
        "data.dataset.num_samples=24",
        "data.dataset.size=32",
        "data.num_workers=0",
        "batch.global_size=8",
        "train.max_steps=3",
        "log.every_steps=1",
        "log.progress_bar=false",
        "log.tensorboard=false",
    ]
    run = run_vssl(["train", "speed/synthetic.yaml", *overrides], installed, tmp_path)
    assert run.returncode == 0, run.stderr
    assert "completed at step 3" in run.stdout
    rows = [
        json.loads(line) for line in (tmp_path / "speed" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert math.isfinite(r["loss"]) and 0.0 <= r["acc"] <= 1.0
