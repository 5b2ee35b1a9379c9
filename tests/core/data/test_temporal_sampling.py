"""Temporal sampling: TSN segments, evenly spaced test clips, jittered strides, padding, and the
ViewSpec fields that select them."""

import numpy as np
import pytest
import torch

from vssl_core.data.clips import ClipDataset
from vssl_core.data.sampling import (
    evenly_spaced_clip_indices,
    evenly_spaced_starts,
    fixed_segment_indices,
    jittered_clip_indices,
    pad_indices,
    random_clip_indices,
    random_segment_indices,
)
from vssl_core.interfaces import ViewSpec


def test_random_segments_take_one_frame_inside_each_segment():
    rng = np.random.default_rng(0)
    for n in (16, 50, 301):
        for _ in range(20):
            idx = random_segment_indices(n, 8, rng)
            low = np.floor(np.arange(8) * n / 8)  # segment k spans [k n/8, (k+1) n/8)
            high = np.ceil(np.arange(1, 9) * n / 8) - 1
            assert np.all((low <= idx) & (idx <= high)), (n, idx)
    seen = {int(random_segment_indices(80, 8, rng)[0]) for _ in range(200)}
    assert seen == set(range(10))  # the offset covers the whole first segment


def test_fixed_segments_take_the_centres_and_interleave_for_several_clips():
    (centre,) = fixed_segment_indices(80, 8, 1)
    assert centre.tolist() == [5, 15, 25, 35, 45, 55, 65, 75]  # TSN: int(tick/2 + tick*x)
    a, b = fixed_segment_indices(80, 8, 2)
    assert a.tolist() == [2, 12, 22, 32, 42, 52, 62, 72]  # quarter of each 10-frame segment
    assert b.tolist() == [7, 17, 27, 37, 47, 57, 67, 77]
    short = fixed_segment_indices(3, 8, 1)[0]  # fewer frames than segments: frames repeat
    assert short.min() == 0 and short.max() == 2 and np.all(np.diff(short) >= 0)


def test_evenly_spaced_test_clips_follow_severe_dense_testing():
    starts = evenly_spaced_starts(100, 32, 10)  # SEVERE: linspace(0, nf - 32, 10) as int
    assert starts.tolist() == np.linspace(0, 68, 10).astype(int).tolist()
    assert starts[0] == 0 and starts[-1] + 32 == 100
    clips = evenly_spaced_clip_indices(100, 16, 2, 5)
    assert [c[0] for c in clips] == np.linspace(0, 100 - 31, 5).astype(int).tolist()
    assert all(np.all(np.diff(c) == 2) for c in clips) and clips[-1][-1] == 99
    short = evenly_spaced_clip_indices(20, 32, 1, 10)  # shorter than a clip: the same clip
    assert all(np.array_equal(c, short[0]) for c in short) and short[0][-1] == 19


@pytest.mark.parametrize(
    ("pad", "expected"), [("repeat_last", [0, 2, 4, 4, 4]), ("loop", [0, 2, 4, 1, 3])]
)
def test_short_videos_are_padded_by_repeating_or_looping(pad, expected):
    rng = np.random.default_rng(0)
    assert random_clip_indices(5, 5, 2, rng, pad=pad).tolist() == expected
    assert pad_indices(np.arange(7), 3, pad).max() <= 2


def test_strides_are_drawn_per_clip_from_the_choices():
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(200):
        idx = jittered_clip_indices(200, 16, (1, 2, 3, 4), False, rng)
        steps = set(np.diff(idx).tolist())
        assert len(steps) == 1 and idx.min() >= 0 and idx.max() < 200
        seen |= steps
    assert seen == {1, 2, 3, 4}


def test_jitter_keeps_each_index_in_its_own_stride_window():
    rng = np.random.default_rng(2)
    for _ in range(100):
        idx = jittered_clip_indices(500, 8, (4,), True, rng)
        base = idx - np.arange(8) * 4
        start = base.min()
        assert np.all((base - start >= 0) & (base - start <= 3))


def test_viewspec_rejects_fields_that_would_be_ignored():
    with pytest.raises(ValueError, match="one frame per segment"):
        ViewSpec(frames=8, crop_size=16, temporal="segments", stride=2)
    with pytest.raises(ValueError, match="not both"):
        ViewSpec(frames=8, crop_size=16, stride=2, strides=(1, 2))
    with pytest.raises(ValueError, match="strides/temporal_jitter work with"):
        ViewSpec(frames=8, crop_size=16, temporal="test_clips", temporal_jitter=True)
    with pytest.raises(ValueError, match="gap=2 is only used"):
        ViewSpec(frames=8, crop_size=16, gap=2)
    with pytest.raises(ValueError, match="temporal 'tsn': choose one of"):
        ViewSpec(frames=8, crop_size=16, temporal="tsn")
    with pytest.raises(ValueError, match="pad 'mirror'"):
        ViewSpec(frames=8, crop_size=16, pad="mirror")


def test_viewspec_spans():
    assert ViewSpec(frames=16, crop_size=8, stride=4).clip_span == 61
    assert ViewSpec(frames=16, crop_size=8, strides=(1, 4), temporal_jitter=True).clip_span == 64
    assert ViewSpec(frames=16, crop_size=8, temporal="segments").clip_span == 16
    vcop = ViewSpec(frames=16, crop_size=8, num_clips=3, gap=8, temporal="sequence")
    assert vcop.frames_needed == 64  # VCOP: S = n*l + (n-1)*g
    assert ViewSpec(frames=4, crop_size=8, num_clips=5, test_crops=3).num_views == 15


def _shapes(num_frames=30):
    from vssl_datasets.moving_shapes import MovingShapes

    return MovingShapes(num_samples=8, num_classes=4, num_frames=num_frames, size=32)


def test_test_clips_are_deterministic_and_clip_major_over_crops():
    spec = ViewSpec(
        frames=4, crop_size=16, stride=2, num_clips=3, temporal="test_clips", test_crops=3
    )
    clips = ClipDataset(_shapes(), spec, seed=0)
    a, b = clips[(0, 2)]["clips"], clips[(5, 2)]["clips"]  # another epoch: same views
    assert len(a) == 9 and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert torch.equal(a[0], a[1])  # a square 32x32 frame: its three crops coincide
    assert not torch.equal(a[0], a[3])  # the next temporal clip


def test_segments_views_through_the_clip_dataset():
    spec = ViewSpec(frames=6, crop_size=16, temporal="segments", num_clips=2)
    out = ClipDataset(_shapes(), spec, seed=0)[(0, 1)]["clips"]
    assert len(out) == 2 and out[0].shape == (3, 6, 16, 16)
    again = ClipDataset(_shapes(), spec, seed=0)[(0, 1)]["clips"]
    assert all(torch.equal(x, y) for x, y in zip(out, again, strict=True))
