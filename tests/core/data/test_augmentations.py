"""Clip-consistent augmentation: colour jitter, grayscale and blur (one keyed draw per clip, the
same on every frame), the random-resized-crop scale range, and the test-time crop boxes."""

import colorsys
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from vssl_core.data.clips import ClipDataset
from vssl_core.data.photometric import (
    PhotometricDraw,
    apply_photometric,
    draw_photometric,
    gaussian_blur,
    rotate_hue,
)
from vssl_core.data.transforms import eval_crop_boxes, random_resized_crop_box
from vssl_core.interfaces import ViewSpec

MOCO_V2 = dict(color_jitter=(0.4, 0.4, 0.4, 0.1), color_jitter_prob=0.8, grayscale_prob=0.2)


def _draw(**kw) -> PhotometricDraw:
    base = dict(
        jitter=True,
        order=(0, 1, 2, 3),
        brightness=1.0,
        contrast=1.0,
        saturation=1.0,
        hue=0.0,
        grayscale=False,
        blur_sigma=None,
    )
    return PhotometricDraw(**{**base, **kw})


def _clip(value_rgb, t=3, size=4) -> torch.Tensor:
    return torch.tensor(value_rgb, dtype=torch.uint8).view(3, 1, 1, 1).expand(3, t, size, size)


def test_jitter_ops_follow_the_colorjitter_maths():
    grey = _clip([100, 100, 100])
    assert apply_photometric(grey, _draw(brightness=1.5)).unique().tolist() == [150]
    assert apply_photometric(grey, _draw(brightness=3.0)).unique().tolist() == [255]  # clamped
    red = _clip([200, 0, 0])
    desaturated = apply_photometric(red, _draw(saturation=0.0))
    assert desaturated[:, 0, 0, 0].tolist() == [60, 60, 60]  # 0.299 * 200 = 59.8
    green = apply_photometric(red, _draw(hue=1 / 3))  # a third of a turn: red -> green
    assert green[:, 0, 0, 0].tolist() == [0, 200, 0]
    half = torch.cat([_clip([0, 0, 0], t=1), _clip([200, 200, 200], t=1)], dim=2)  # 8 x 4
    flat = apply_photometric(half, _draw(contrast=0.0))  # contrast 0: the frame's mean gray
    assert flat.unique().tolist() == [100]


def test_grayscale_and_blur():
    rng = np.random.default_rng(0)
    clip = torch.from_numpy(rng.integers(0, 256, (3, 2, 16, 16), dtype=np.uint8))
    gray = apply_photometric(clip, _draw(jitter=False, grayscale=True))
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    blurred = apply_photometric(clip, _draw(jitter=False, blur_sigma=1.5))
    assert blurred.float().std() < 0.6 * clip.float().std()  # noise is smoothed
    constant = torch.full((3, 1, 9, 9), 77.0)
    assert torch.allclose(gaussian_blur(constant, 2.0), constant)  # the kernel sums to one


@pytest.mark.parametrize("turns", [0.07, -0.1, 1 / 3, 0.5])
def test_rotate_hue_matches_colorsys_hsv_round_trip(turns):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (3, 2, 6, 7)).astype(np.float32)
    rgb[:, 0, 0, :3] = rgb[0, 0, 0, :3]  # gray pixels (chroma 0) and ties between channels
    rgb[1, 1, 2, :] = rgb[0, 1, 2, :]
    want = np.empty_like(rgb)
    for idx in np.ndindex(rgb.shape[1:]):
        h, s, v = colorsys.rgb_to_hsv(*(rgb[(slice(None), *idx)] / 255))
        want[(slice(None), *idx)] = np.array(colorsys.hsv_to_rgb((h + turns) % 1.0, s, v)) * 255
    got = rotate_hue(torch.from_numpy(rgb), turns).numpy()
    assert np.abs(got - want).max() < 1e-3


def _reference_blur(x_CTHW: torch.Tensor, sigma: float) -> torch.Tensor:
    """The textbook way: pad by reflection, two one-channel 1D convolutions."""
    import torch.nn.functional as F

    c, t, h, w = x_CTHW.shape
    radius = min(math.ceil(3 * sigma), h - 1, w - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    frames = F.pad(x_CTHW.reshape(c * t, 1, h, w), (radius,) * 4, mode="reflect")
    frames = F.conv2d(F.conv2d(frames, kernel.view(1, 1, 1, -1)), kernel.view(1, 1, -1, 1))
    return frames.reshape(c, t, h, w)


@pytest.mark.parametrize(("sigma", "size"), [(0.4, (9, 9)), (1.5, (16, 12)), (2.0, (5, 7))])
def test_blur_matches_reflect_padded_convolution(sigma, size):
    x = torch.rand(3, 2, *size) * 255  # (5, 7) at sigma 2: the radius is capped at h - 1
    assert torch.allclose(gaussian_blur(x, sigma), _reference_blur(x, sigma), atol=1e-3)


def test_one_draw_applies_to_every_frame_of_the_clip():
    rng = np.random.default_rng(1)
    frame = torch.from_numpy(rng.integers(0, 256, (3, 1, 12, 12), dtype=np.uint8))
    clip = frame.expand(3, 5, 12, 12).contiguous()  # five identical frames
    for seed in range(10):
        spec = dict(MOCO_V2, blur_prob=0.5, blur_sigma=(0.1, 2.0))
        draw = draw_photometric(np.random.default_rng(seed), **spec)
        out = apply_photometric(clip, draw)
        assert all(torch.equal(out[:, 0], out[:, t]) for t in range(1, 5))


def test_draws_are_keyed_and_follow_the_probabilities():
    def draws(seed, n=400):
        rng = np.random.default_rng(seed)
        return [
            draw_photometric(rng, **MOCO_V2, blur_prob=0.5, blur_sigma=(0.1, 2.0)) for _ in range(n)
        ]

    a, b = draws(3), draws(3)
    assert a == b and a != draws(4)
    assert 0.72 < np.mean([d.jitter for d in a]) < 0.88  # p = 0.8
    assert 0.14 < np.mean([d.grayscale for d in a]) < 0.26  # p = 0.2
    assert all(0.6 <= d.brightness <= 1.4 and -0.1 <= d.hue <= 0.1 for d in a)
    off = draw_photometric(
        np.random.default_rng(0), (0.0, 0.0, 0.0, 0.0), 1.0, 0.0, 0.0, (0.1, 2.0)
    )
    assert off.is_identity


def _shapes():
    from vssl_datasets.moving_shapes import MovingShapes

    return MovingShapes(num_samples=8, num_classes=4, num_frames=8, size=32)


def test_clip_dataset_colour_is_keyed_per_sample_and_shared_when_asked():
    spec = ViewSpec(frames=4, crop_size=16, num_clips=2, temporal="shared", **MOCO_V2)
    clips = ClipDataset(_shapes(), spec, seed=0)
    a = clips[(0, 3)]["clips"]
    assert all(torch.equal(x, y) for x, y in zip(a, clips[(0, 3)]["clips"], strict=True))
    assert any(not torch.equal(*clips[(0, i)]["clips"]) for i in range(8))  # own draw per clip
    shared = ClipDataset(_shapes(), replace(spec, shared_augmentation=True), 0)
    assert all(torch.equal(*shared[(0, i)]["clips"]) for i in range(8))


def test_photometric_options_leave_the_crops_unchanged():
    plain = ViewSpec(frames=4, crop_size=16, augmentation="random_resized_crop", flip=True)
    gray = replace(plain, grayscale_prob=1.0)
    a = ClipDataset(_shapes(), plain, 0)[(0, 5)]["clips"][0]
    b = ClipDataset(_shapes(), gray, 0)[(0, 5)]["clips"][0]
    luma = (0.299 * a[0] + 0.587 * a[1] + 0.114 * a[2]).round()  # the same crop, in gray
    assert (luma - b[0].float()).abs().max() <= 1


@pytest.mark.parametrize("scale", [(0.2, 1.0), (0.5, 0.6)])
def test_random_resized_crop_respects_the_scale_range(scale):
    rng = np.random.default_rng(0)
    areas = []
    for _ in range(300):
        top, left, h, w = random_resized_crop_box(120, 160, rng, scale=scale)
        assert top + h <= 120 and left + w <= 160
        areas.append(h * w / (120 * 160))
    assert min(areas) >= scale[0] * 0.9 and max(areas) <= scale[1] * 1.1


def test_viewspec_crop_scale_reaches_the_crop():
    spec = ViewSpec(
        frames=2, crop_size=8, augmentation="random_resized_crop", crop_scale=(0.9, 1.0)
    )
    assert spec.crop_scale == (0.9, 1.0)
    with pytest.raises(ValueError, match="crop_scale"):
        ViewSpec(frames=2, crop_size=8, crop_scale=(0.5, 0.2))


def test_eval_crop_boxes():
    # SEVERE: short side to 128, centre crop 112 -> in a 240x320 frame, a centred 210 square
    assert eval_crop_boxes(240, 320, 112, 1, short_side=128) == [(15, 55, 210, 210)]
    # without short_side the crop is the whole short side (resize short side to the crop size)
    assert eval_crop_boxes(240, 320, 224, 1) == [(0, 40, 240, 240)]
    left, centre, right = eval_crop_boxes(240, 320, 224, 3)  # VideoMAE 3-crop test
    assert (left[1], centre[1], right[1]) == (0, 40, 80) and left[0] == centre[0] == 0
    top, mid, bottom = eval_crop_boxes(320, 240, 224, 3)  # portrait: along the height
    assert (top[0], mid[0], bottom[0]) == (0, 40, 80) and top[1] == 0
    with pytest.raises(ValueError, match="num_crops"):
        eval_crop_boxes(240, 320, 224, 2)
    with pytest.raises(ValueError, match="short_side"):
        eval_crop_boxes(240, 320, 224, 1, short_side=200)
