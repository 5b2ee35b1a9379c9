"""benchmarks/transform_speed.py: the reference implementations it times against compute what the
current ones compute (the photometric one is the code before 381d08d), a quick run reports both
cases, and a case whose outputs disagree gets no speed-up.

Shape legend: B batch, C channels, T frames, H height, W width.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from vssl_rotation.objective import rotate_clips

from vssl_core.data.photometric import (
    apply_photometric,
    draw_photometric,
    gaussian_blur,
    rotate_hue,
)

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_reports_both_cases(transform_speed, tmp_path, capsys):
    out = tmp_path / "speed.json"
    assert transform_speed.main(["--quick", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["threads"] == 1 and payload["rounds"] == 2
    cases = {c["case"]: c for c in payload["cases"]}
    assert list(cases) == ["photometric", "rotation"]
    for case in cases.values():
        assert case["outputs"]["agree"]
        for clock in ("cpu", "wall"):
            for side in ("reference", "current"):
                assert len(case["ms_per_unit"][side][clock]) == 2
                assert case[f"{side}_ms_{clock}"]["median"] > 0
            ratio = case["speedup"][clock]
            assert ratio["n"] == 2 and 0 < ratio["q1"] <= ratio["median"] <= ratio["q3"]
    assert cases["rotation"]["outputs"]["max_abs_diff"] == 0
    printed = capsys.readouterr().out
    assert "| photometric (per clip) | cpu |" in printed
    assert "| rotation (per batch) | wall |" in printed


@pytest.mark.parametrize("turns", [0.07, -0.1, 1 / 3, 0.5])
def test_reference_hue_rotation_matches_the_current_one(transform_speed, turns):
    gen = torch.Generator().manual_seed(0)
    rgb_CTHW = torch.randint(0, 256, (3, 2, 20, 20), generator=gen).float()
    rgb_CTHW[:, 0, 0, :3] = rgb_CTHW[0, 0, 0, :3]  # gray pixels (chroma 0)
    rgb_CTHW[1, 1, 2, :] = rgb_CTHW[0, 1, 2, :]  # ties between the max channels
    rgb_CTHW[:, 1, 3, :4] = 0.0  # black
    want = transform_speed.rotate_hue_before_381d08d(rgb_CTHW, turns)
    assert (want - rotate_hue(rgb_CTHW, turns)).abs().max() < 1e-3


@pytest.mark.parametrize(("sigma", "size"), [(0.4, (9, 9)), (1.5, (16, 12)), (2.0, (5, 7))])
def test_reference_blur_matches_the_current_one(transform_speed, sigma, size):
    x_CTHW = torch.rand(3, 2, *size) * 255  # (5, 7) at sigma 2: the radius is capped at h - 1
    want = transform_speed.gaussian_blur_before_381d08d(x_CTHW, sigma)
    assert (want - gaussian_blur(x_CTHW, sigma)).abs().max() < 1e-3


def test_reference_moco_v2_augmentation_agrees_within_one_level(transform_speed):
    work = transform_speed.photometric_workload(48, 4, 24)
    assert all(work.notes[k] > 0 for k in ("jitter", "grayscale", "blur"))  # every op is checked
    same = transform_speed.compare_outputs(work)
    assert same["agree"] and same["max_abs_diff"] <= 1, same
    assert same["differing_fraction"] <= transform_speed.MAX_DIFFERING_FRACTION


def test_reference_is_the_photometric_code_before_381d08d(transform_speed, tmp_path):
    """Bit-identical to the module as it was in git, so its time is the old code's time."""
    show = subprocess.run(
        ["git", "-C", str(ROOT), "show", "381d08d^:vssl_core/data/photometric.py"],
        capture_output=True,
        text=True,
        check=False,
    )
    if show.returncode != 0:
        pytest.skip(f"no git history for 381d08d: {show.stderr.strip()}")
    path = tmp_path / "photometric_before_381d08d.py"
    path.write_text(show.stdout)
    key = "vssl_photometric_before_381d08d"
    spec = importlib.util.spec_from_file_location(key, path)
    old = importlib.util.module_from_spec(spec)
    sys.modules[key] = old  # dataclasses look the module up while building PhotometricDraw
    try:
        spec.loader.exec_module(old)
    finally:
        del sys.modules[key]
    rng = np.random.default_rng(5)
    for i in range(24):  # MoCo v2 draws, blur sigma as ViewSpec's default
        clip = torch.from_numpy(rng.integers(0, 256, (3, 3, 20, 20), dtype=np.uint8))
        draw = draw_photometric(rng, (0.4, 0.4, 0.4, 0.1), 0.8, 0.2, 0.5, (0.1, 2.0))
        ours = transform_speed.apply_photometric_before_381d08d(clip, draw)
        assert torch.equal(ours, old.apply_photometric(clip, draw)), (i, draw)
        assert (ours.int() - apply_photometric(clip, draw).int()).abs().max() <= 1


def test_masked_rot90_reference_equals_rotate_clips(transform_speed):
    gen = torch.Generator().manual_seed(0)
    turns_B = torch.tensor([0, 1, 2, 3, 5, -1, 3, 0])  # every turn, and turns outside 0..3
    for clip_BCTHW in (
        torch.randn((8, 3, 2, 6, 6), generator=gen),
        torch.randint(0, 256, (8, 3, 2, 5, 5), generator=gen, dtype=torch.uint8),
    ):
        want = transform_speed.rotate_clips_masked_rot90(clip_BCTHW, turns_B)
        assert torch.equal(want, rotate_clips(clip_BCTHW, turns_B))
        assert torch.equal(want[1], torch.rot90(clip_BCTHW[1], 1, dims=(-2, -1)))


def test_outputs_that_disagree_get_no_speedup(transform_speed, capsys):
    work = transform_speed.photometric_workload(4, 2, 8)
    reference = work.reference
    work.current = lambda i: (reference(i).int() + 2).clamp(0, 255).to(torch.uint8)
    result = transform_speed.run_case(work, rounds=2)
    assert not result["outputs"]["agree"] and result["outputs"]["max_abs_diff"] == 2
    assert result["speedup"] is None and result["ms_per_unit"] is None
    assert "no speed-up reported" in capsys.readouterr().out
    assert "not measured: outputs differ" in transform_speed.table([result])
