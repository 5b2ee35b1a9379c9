"""Videos that fail to decode: replaced deterministically, bounded retries, logged once, counted
in the batch, and a clear stop past data.max_failed_fraction."""

import logging

import av.error
import numpy as np
import pytest
import torch

from vssl_core.data.clips import ClipDataset, collate
from vssl_core.data.failures import DataLoadingError, allowed_failures, replacement_index
from vssl_core.data.loader import build_loader
from vssl_core.data.sampler import BatchLayout, StepBatchSampler
from vssl_core.interfaces import VideoDecodeError, VideoSample, ViewSpec
from vssl_core.random import sample_key

SPEC = ViewSpec(frames=4, crop_size=16, stride=2, augmentation="random_resized_crop")


class _Truncated:
    """A video whose header promises more frames than it can deliver."""

    def __init__(self, video):
        self.video, self.num_frames, self.fps = video, video.num_frames, video.fps

    def read(self, indices):
        return self.video.read(indices)[:1]


class _Empty:
    num_frames, fps = 0, 25.0

    def read(self, indices):
        raise AssertionError("a video with no frames must not be read")


class _Still:
    """A cheap 12-frame video of index-valued pixels."""

    num_frames, fps = 12, 25.0

    def read(self, indices):
        return np.broadcast_to(
            np.asarray(indices, np.uint8)[:, None, None, None], (len(indices), 8, 8, 3)
        )


class Flaky:
    """Moving shapes with broken videos: ``bad`` cannot be opened, ``truncated`` returns too
    few frames, ``empty`` has none; ``error`` is what opening a bad one raises."""

    def __init__(self, n=40, bad=(), truncated=(), empty=(), error=None, cheap=False):
        from vssl_datasets.moving_shapes import MovingShapes

        self.shapes = MovingShapes(num_samples=n, num_classes=4, num_frames=12, size=24)
        self.num_classes = 4
        self.bad, self.truncated, self.empty = set(bad), set(truncated), set(empty)
        self.error = error or (lambda p: VideoDecodeError(f"{p}: moov atom not found"))
        self.opened: list[int] = []
        self.cheap = cheap

    def __len__(self):
        return len(self.shapes)

    def video_path(self, index):
        return f"/data/videos/v{index:03d}.mp4"

    def __getitem__(self, index):
        self.opened.append(index)
        if index in self.bad:
            raise self.error(self.video_path(index))
        if self.cheap:
            return VideoSample(_Still(), index % 4, index)
        sample = self.shapes[index]
        if index in self.truncated:
            return VideoSample(_Truncated(sample.video), sample.label, index)
        if index in self.empty:
            return VideoSample(_Empty(), sample.label, index)
        return sample


def test_a_bad_video_is_replaced_by_a_keyed_sample_and_logged_once(caplog):
    data = Flaky(bad={5})
    clips = ClipDataset(data, SPEC, seed=3)
    with caplog.at_level(logging.WARNING, logger="vssl.data"):
        out = clips[(2, 5)]
        again = clips[(2, 5)]
    key = sample_key(3, 2, 5)
    assert out["index"] == replacement_index(key, 1, 40) != 5 and out["key"] == key
    assert out["decode_failures"] == 1 and out["failed_paths"] == ["/data/videos/v005.mp4"]
    warnings = [r for r in caplog.records if "v005.mp4" in r.getMessage()]
    assert len(warnings) == 1 and "moov atom" in warnings[0].getMessage()
    assert data.opened.count(5) == 1  # the second time it is known bad: no decode
    fresh = ClipDataset(Flaky(bad={5}), SPEC, seed=3)[(2, 5)]  # another worker, a resumed run
    assert all(torch.equal(a, b) for a, b in zip(out["clips"], fresh["clips"], strict=True))
    assert all(torch.equal(a, b) for a, b in zip(out["clips"], again["clips"], strict=True))
    assert clips[(3, 5)]["index"] == replacement_index(sample_key(3, 3, 5), 1, 40)  # per epoch


@pytest.mark.parametrize("kind", ["truncated", "empty", "av_error", "os_error"])
def test_each_kind_of_decode_failure_is_replaced(kind):
    errors = {
        "av_error": lambda p: av.error.InvalidDataError(1094995529, "Invalid data", p),
        "os_error": lambda p: FileNotFoundError(2, "No such file", p),
    }
    data = Flaky(
        bad={7} if kind in errors else (),
        truncated={7} if kind == "truncated" else (),
        empty={7} if kind == "empty" else (),
        error=errors.get(kind),
    )
    out = ClipDataset(data, SPEC, seed=0)[(0, 7)]
    assert out["index"] != 7 and out["decode_failures"] == 1
    assert out["clips"][0].shape == (3, 4, 16, 16)


def test_a_bug_is_not_mistaken_for_a_bad_video():
    data = Flaky(bad={7}, error=lambda p: KeyError("a bug in a dataset plugin"))
    with pytest.raises(KeyError, match="a bug"):
        ClipDataset(data, SPEC, seed=0)[(0, 7)]


def test_retries_are_bounded_and_the_error_names_the_videos():
    data = Flaky(n=20, bad=set(range(20)))
    clips = ClipDataset(data, SPEC, seed=0, max_failed_fraction=1.0, max_retries=4)
    with pytest.raises(DataLoadingError, match="its 4 replacements all failed") as err:
        clips[(0, 3)]
    assert len(data.opened) <= 5 and "/data/videos/v003.mp4" in str(err.value)
    assert "vssl data check" in str(err.value)


def test_too_many_failures_stop_with_the_count_the_paths_and_the_fix():
    data = Flaky(n=400, bad=set(range(0, 400, 5)), cheap=True)  # 20% broken
    clips = ClipDataset(data, SPEC, seed=0, max_failed_fraction=0.01)
    with pytest.raises(DataLoadingError) as err:
        for i in range(400):
            clips[(0, i)]
    text = str(err.value)
    assert "data.max_failed_fraction=0.01" in text and "/data/videos/v000.mp4" in text
    assert "quarantine" in text and "vssl data check" in text
    assert clips.failures.loads < 100  # stopped early, not after an epoch


def test_failures_at_the_allowed_rate_do_not_stop_the_run():
    data = Flaky(n=300, bad={17, 150}, cheap=True)  # 0.7% broken, under the 1% allowed
    clips = ClipDataset(data, ViewSpec(frames=2, crop_size=8), seed=0, max_failed_fraction=0.01)
    got = [clips[(e, i)]["decode_failures"] for e in range(2) for i in range(300)]
    assert sum(got) >= 4 and clips.failures.failures == sum(got)
    assert len(clips.failures.bad) == 2


def test_zero_tolerance_stops_at_the_first_failure():
    clips = ClipDataset(Flaky(bad={1}), SPEC, seed=0, max_failed_fraction=0.0)
    clips[(0, 0)]
    with pytest.raises(DataLoadingError, match="1 of 2 video loads"):
        clips[(0, 1)]


def test_the_stop_rule_allows_sampling_noise_only():
    assert allowed_failures(10, 0.01) == allowed_failures(100, 0.01)  # judged on >= 100 loads
    assert 3 < allowed_failures(100, 0.01) < 4
    assert 0.01 < allowed_failures(100_000, 0.01) / 100_000 < 0.0111
    with pytest.raises(ValueError, match="data.max_failed_fraction"):
        ClipDataset(Flaky(), SPEC, seed=0, max_failed_fraction=1.5)


def test_the_batch_counts_and_names_its_failures():
    clips = ClipDataset(Flaky(bad={2, 3}), SPEC, seed=0, max_failed_fraction=1.0)
    batch = collate([clips[(0, i)] for i in range(5)])
    assert batch.extra["decode_failures"] == 2
    assert batch.extra["decode_failed_paths"] == ["/data/videos/v002.mp4", "/data/videos/v003.mp4"]
    clean = collate([clips[(0, i)] for i in (0, 1)])
    assert clean.extra == {"decode_failures": 0, "decode_failed_paths": []}


def test_worker_processes_replace_failures_like_the_main_process():
    clips = ClipDataset(Flaky(n=16, bad={1, 6, 11}), SPEC, seed=7, max_failed_fraction=1.0)
    layout = BatchLayout.from_recipe(4, None, 1)

    def batches(workers):
        sampler = StepBatchSampler(16, layout, rank=0, seed=7, start_step=0, end_step=4)
        loader = build_loader(clips, sampler, workers, False, False, 2)
        return [(b.index.tolist(), b.extra["decode_failures"], b.clips[0]) for b in loader]

    inline, pooled = batches(0), batches(2)
    assert sum(f for _, f, _ in inline) >= 3  # each bad one, and any replacement that is bad
    assert [(i, f) for i, f, _ in inline] == [(i, f) for i, f, _ in pooled]
    assert all(torch.equal(a, b) for (*_, a), (*_, b) in zip(inline, pooled, strict=True))
    assert not {1, 6, 11} & set(np.concatenate([i for i, _, _ in inline]).tolist())
