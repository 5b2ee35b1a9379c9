"""A small dataset whose frames carry their own identity, for the ffcv tests.

Frame ``f`` of source video ``v`` is flat: red = 8 * (f % 32), green = 8 * v, blue = 100, with
``f`` stamped into its top-left corner (vssl_core.data.video_writer), so a test can tell from the
pixels which frame of which video it got, after JPEG (flat areas and stamps survive it) and after
crops (flat areas). Source video ``BROKEN`` fails to decode, as a corrupt file would.

Shape-suffix legend: T frames, H height, W width.
"""

from __future__ import annotations

import numpy as np

from vssl_core.data.video_writer import stamp_frame_index
from vssl_core.interfaces import VideoDecodeError, VideoSample

SIZE = 64  # frames are SIZE x SIZE: stamps stay whole under the centre crop of a square
NUM_VIDEOS = 12
BROKEN = 5


def frame_count(video: int) -> int:
    return 5 if video == 3 else 20 + video  # video 3 is shorter than most clips


class StampedVideo:
    def __init__(self, video: int) -> None:
        self.video, self.num_frames, self.fps = video, frame_count(video), 25.0

    def read(self, indices) -> np.ndarray:
        if self.video == BROKEN:
            raise VideoDecodeError(f"broken_{BROKEN}.mp4: invalid data found when processing input")
        out_THW3 = np.empty((len(indices), SIZE, SIZE, 3), np.uint8)
        for t, f in enumerate(indices):
            assert 0 <= f < self.num_frames, f"frame {f} of {self.num_frames}"
            out_THW3[t] = (8 * (f % 32), 8 * self.video, 100)
            out_THW3[t] = stamp_frame_index(out_THW3[t : t + 1], first_index=f)[0]
        return out_THW3


class StampedDataset:
    """A VideoDataset of ``NUM_VIDEOS`` stamped videos; labels follow the task."""

    def __init__(self, task: str = "classification", num_videos: int = NUM_VIDEOS) -> None:
        self.task, self.num_videos, self.num_classes = task, num_videos, 3

    def __len__(self) -> int:
        return self.num_videos

    def video_path(self, index: int) -> str:
        return f"/data/videos/v{index:02d}.mp4"

    def label(self, index: int):
        if self.task == "multilabel":
            return np.array([index % 2, 1, 0], np.float32)
        return float(index) / 2 if self.task == "counting" else index % self.num_classes

    def __getitem__(self, index: int) -> VideoSample:
        return VideoSample(StampedVideo(index), self.label(index), index, f"v{index:02d}")


def source_video(frame_HW3: np.ndarray) -> int:
    """The source video a decoded frame came from (its flat green level)."""
    return int(round(float(frame_HW3[SIZE // 2 :, :, 1].mean()) / 8))
