"""Multi-view testing: the view tensor (clips x crops from the expected frames and places),
aggregation and metrics, on stub videos whose pixels say which frame and position they come
from; an undecodable video is listed, not replaced."""

from functools import partial

import numpy as np
import pytest
import torch
from vssl_eval.multiview import (
    MultiViewClips,
    ViewPlan,
    aggregate,
    collate_views,
)
from vssl_eval.runner import DistEnv, run_test, view_loader, weights_in_ndhwc

from vssl_core.interfaces import VideoDecodeError, VideoSample


class StubVideo:
    """Pixel (t, y, x) = (frame index, y, x): every view says where it was cut from."""

    def __init__(self, num_frames: int, height: int = 40, width: int = 60, broken: bool = False):
        self.num_frames, self.fps, self.h, self.w, self.broken = (
            num_frames,
            25.0,
            height,
            width,
            broken,
        )

    def read(self, indices):
        if self.broken:
            raise VideoDecodeError("stub.mp4: moov atom not found")
        t = np.asarray(indices, dtype=np.uint8)[:, None, None]
        y = np.arange(self.h, dtype=np.uint8)[None, :, None]
        x = np.arange(self.w, dtype=np.uint8)[None, None, :]
        shape = (len(indices), self.h, self.w)
        return np.stack([np.broadcast_to(a, shape) for a in (t, y, x)], axis=-1)


class StubDataset:
    num_classes = 2

    def __init__(self, videos, labels):
        self.videos, self.labels = videos, labels

    def __len__(self):
        return len(self.videos)

    def __getitem__(self, i):
        return VideoSample(self.videos[i], self.labels[i], i, f"v{i}")


def test_views_are_clip_major_and_cut_from_the_expected_frames_and_places():
    views = ViewPlan(frames=4, stride=2, crop_size=20, short_side=40, num_clips=2, num_crops=3)
    item = MultiViewClips(StubDataset([StubVideo(30)], [1]), [0], views)[0]
    v = item["views"]  # [V, C, T, S, S]
    assert v.shape == (6, 3, 4, 20, 20) and v.dtype == torch.uint8
    for c, start in enumerate((0, 23)):  # evenly spaced: the last clip ends on the last frame
        frames = [start + 2 * k for k in range(4)]
        for j, left in enumerate((0, 20, 40)):
            view = v[c * 3 + j]
            assert view[0, :, 0, 0].tolist() == frames
            assert int(view[1, 0, 0, 0]) == 10 and int(view[2, 0, 0, 0]) == left


def test_aggregation_mean_and_max_over_views():
    s = torch.tensor([[[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]]])
    assert torch.allclose(aggregate(s, "mean"), torch.tensor([[0.3, 0.7]]))
    assert torch.allclose(aggregate(s, "max"), torch.tensor([[0.6, 0.9]]))


def _first_frame_scores(clips_NCTHW):
    """A stub model: the clip's first frame index t0 gives scores [t0, 100 - t0] / 100."""
    t0 = clips_NCTHW[:, 0, 0, 0, 0]
    return torch.stack([t0, 100 - t0], dim=1) / 100


@pytest.mark.parametrize("channels_last", [False, True], ids=["ncdhw", "ndhwc"])
@pytest.mark.parametrize("how, expected", [("mean", [0.18, 0.82]), ("max", [0.36, 1.0])])
def test_dense_test_aggregates_known_per_view_outputs(how, expected, channels_last):
    # 40 frames, 3 clips of 4 frames start at 0, 18, 36; 3 crops each: 9 views per video
    videos = [StubVideo(40), StubVideo(40, broken=True), StubVideo(40)]
    data = StubDataset(videos, [1, 0, 0])
    views = ViewPlan(frames=4, stride=1, crop_size=20, short_side=40, num_clips=3, num_crops=3)
    env = DistEnv(0, 1, torch.device("cpu"))
    layouts = []

    def scores(clips_NCTHW):  # clips come in the layout of a model trained in it
        layouts.append(clips_NCTHW.is_contiguous(memory_format=torch.channels_last_3d))
        return _first_frame_scores(clips_NCTHW)

    out = run_test(
        scores,
        view_loader(data, views, env, batch_size=2, num_workers=0),
        env,
        "classification",
        2,
        partial(aggregate, how=how),
        (0.0, 0.0, 0.0),
        (1 / 255, 1 / 255, 1 / 255),  # identity normalisation: pixels reach the stub as is
        "fp32",
        channels_last=channels_last,
    )
    assert layouts and set(layouts) == {channels_last}
    assert [r["index"] for r in out.rows] == [0, 2]
    for row in out.rows:
        assert row["scores"] == pytest.approx(expected, abs=1e-6) and row["prediction"] == 1
    assert out.failed == [
        {"index": 1, "video_id": "1", "error": "VideoDecodeError: stub.mp4: moov atom not found"}
    ]
    assert out.metrics["top1"] == pytest.approx(50.0)  # video 0 (label 1) right, video 2 wrong


def test_collate_keeps_multilabel_and_count_labels():
    views = torch.zeros(2, 3, 1, 2, 2, dtype=torch.uint8)
    multi = collate_views(
        [
            {"views": views, "label": np.array([0, 1], np.float32), "index": i, "video_id": ""}
            for i in range(2)
        ]
    )
    assert multi.labels.shape == (2, 2) and multi.labels.dtype == torch.float32
    counts = collate_views([{"views": views, "label": 3.0, "index": 0, "video_id": ""}])
    assert counts.labels.dtype == torch.float32 and counts.views.shape == (1, 2, 3, 1, 2, 2)


def test_a_model_trained_in_ndhwc_is_recognised_by_its_weights():
    from vssl_core.engine.trainer import use_channels_last

    model = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3), torch.nn.Linear(4, 2))
    assert not weights_in_ndhwc(model)
    use_channels_last(model)
    assert weights_in_ndhwc(model)
