"""The compiled keyed plans: the same keys and draws as vssl_core.random, and what ViewSpec asks.

Shape legend: V views, T frames per clip.
"""

import numpy as np
import pytest
import torch
from kit.optional import import_optional

import_optional("numba")

from vssl_ffcv import sampling  # noqa: E402

from vssl_core.interfaces import ViewSpec  # noqa: E402
from vssl_core.random import keyed_uniform, sample_key  # noqa: E402

pytestmark = pytest.mark.extras  # CI runs it again with the optional extras (-m extras)

KEYS = [sample_key(0, e, i) for e in range(3) for i in range(40)]


@pytest.mark.parametrize(
    "seed,epoch,index", [(0, 0, 0), (1, 2, 3), (2**40, 5, 123_456_789), (7, 1000, 2**39 - 1)]
)
def test_compiled_key_is_the_core_key(seed, epoch, index):
    assert sampling.sample_key(seed, epoch, index, 0) == sample_key(seed, epoch, index)


@pytest.mark.parametrize("stream", [1, 2])
def test_compiled_draws_are_keyed_uniform(stream):
    key = sample_key(3, 1, 17)
    expected = keyed_uniform(torch.tensor([key]), 130, stream)[0].double().numpy()
    got = np.array([sampling.uniform(key, stream, c) for c in range(130)])
    np.testing.assert_array_equal(got, expected)


def _plan(views: ViewSpec, key: int, num_frames: int = 50, height: int = 90, width: int = 120):
    return sampling.clip_plan(num_frames, height, width, key, *sampling.plan_args(views))


@pytest.mark.parametrize("temporal", ["independent", "shared", "sequence"])
def test_frames_follow_the_temporal_spec(temporal):
    gap = 2 if temporal == "sequence" else 0
    views = ViewSpec(frames=4, crop_size=32, stride=3, num_clips=3, temporal=temporal, gap=gap)
    span = 10 + (2 * (4 * 3 + gap) if temporal == "sequence" else 0)  # frames the clips cover
    starts = set()
    for key in KEYS:
        idx_VT = _plan(views, key)[0]
        assert idx_VT.shape == (3, 4) and idx_VT.min() >= 0 and idx_VT.max() < 50
        assert (np.diff(idx_VT, axis=1) == 3).all(), idx_VT
        if temporal == "shared":
            assert (idx_VT == idx_VT[0]).all()
        if temporal == "sequence":  # clip k starts gap frames after clip k-1 ends
            assert (idx_VT[1:, 0] - idx_VT[:-1, 0] == 4 * 3 + 2).all()
        if temporal == "independent":
            starts |= set(idx_VT[:, 0].tolist())
        starts.add(int(idx_VT[0, 0]))
    assert len(starts) > 0.75 * (50 - span + 1), f"clip starts should spread: {sorted(starts)}"


def test_a_short_video_starts_at_zero_and_repeats_its_last_frame():
    views = ViewSpec(frames=4, crop_size=32, stride=3)
    idx_VT = _plan(views, KEYS[0], num_frames=5)[0]
    np.testing.assert_array_equal(idx_VT, [[0, 3, 4, 4]])


@pytest.mark.parametrize("augmentation", ["none", "multiscale_crop", "random_resized_crop"])
def test_boxes_lie_in_the_frame_and_shared_augmentation_shares_them(augmentation):
    views = ViewSpec(frames=2, crop_size=64, num_clips=2, augmentation=augmentation, flip=True)
    shared = ViewSpec(**{**views.__dict__, "shared_augmentation": True})
    boxes = set()
    for key in KEYS:
        _, box_V4, _ = _plan(views, key)
        top, left, h, w = box_V4.T
        assert (top >= 0).all() and (left >= 0).all() and (h > 0).all() and (w > 0).all()
        assert (top + h <= 90).all() and (left + w <= 120).all(), box_V4
        boxes.add(tuple(box_V4[0]))
        _, box_V4, flip_V = _plan(shared, key)
        assert (box_V4 == box_V4[0]).all() and (flip_V == flip_V[0]).all()
    if augmentation == "none":
        assert boxes == {(0, 15, 90, 90)}  # the centre square
    else:
        assert len(boxes) > 10


def test_flip_is_drawn_per_view_only_when_asked():
    with_flip = ViewSpec(frames=2, crop_size=32, num_clips=2, flip=True)
    flips = np.array([_plan(with_flip, key)[2] for key in KEYS])
    assert 0.3 < flips.mean() < 0.7 and (flips[:, 0] != flips[:, 1]).any()
    no_flip = ViewSpec(frames=2, crop_size=32, num_clips=2)
    assert not np.array([_plan(no_flip, key)[2] for key in KEYS]).any()


def test_a_plan_is_a_pure_function_of_seed_epoch_and_index():
    views = ViewSpec(frames=4, crop_size=32, stride=2, augmentation="random_resized_crop")
    a = sampling.plan_for(views, 0, 1, 7, 50, 90, 120)
    b = sampling.plan_for(views, 0, 1, 7, 50, 90, 120)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    other_epoch = [sampling.plan_for(views, 0, e, 7, 50, 90, 120)[0][0, 0] for e in range(2, 12)]
    assert len(set(other_epoch)) > 1


@pytest.mark.parametrize("jitter", [False, True])
def test_drawn_strides_and_jitter_follow_ctp(jitter):
    views = ViewSpec(frames=4, crop_size=32, strides=(2, 4), temporal_jitter=jitter)
    used = set()
    for key in KEYS:
        idx_T = _plan(views, key)[0][0]
        fits = [s for s in (2, 4) if np.ptp(idx_T - s * np.arange(4)) < (s if jitter else 1)]
        assert fits, f"{idx_T} is no clip of stride 2 or 4"
        used.add(fits[-1])
    assert used == {2, 4}


def test_loop_padding_wraps_a_short_video():
    views = ViewSpec(frames=4, crop_size=32, stride=3, pad="loop")
    np.testing.assert_array_equal(_plan(views, KEYS[0], num_frames=5)[0], [[0, 3, 1, 4]])
