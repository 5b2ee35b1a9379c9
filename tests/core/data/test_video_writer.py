"""The video/frame-folder writer and the frame-index stamp that decoder tests rely on."""

from __future__ import annotations

import av
import numpy as np
import pytest

from vssl_core.data.video_writer import (
    read_frame_index,
    stamp_frame_index,
    write_frame_folder,
    write_video,
)


def _noise(t: int = 12, h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def _decode_all(path) -> tuple[list[np.ndarray], list[bool]]:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return [f.to_ndarray(format="rgb24") for f in frames], [f.key_frame for f in frames]


@pytest.mark.parametrize("shape", [(48, 64), (32, 64), (64, 32), (16, 128)])
def test_stamp_round_trips_exactly(shape):
    frames = stamp_frame_index(_noise(5, *shape), first_index=65530)
    assert [read_frame_index(f) for f in frames] == [65530, 65531, 65532, 65533, 65534]


def test_stamp_leaves_the_input_alone_and_rejects_small_frames():
    frames = _noise(2)
    before = frames.copy()
    stamp_frame_index(frames)
    assert np.array_equal(frames, before)
    with pytest.raises(ValueError, match="too small to stamp"):
        stamp_frame_index(_noise(1, 8, 64))
    with pytest.raises(ValueError, match="does not carry a stamped index"):
        read_frame_index(np.full((48, 64, 3), 128, np.uint8))


@pytest.mark.parametrize(
    "suffix,codec", [(".mp4", "libx264"), (".mkv", "libx264"), (".avi", "mpeg4")]
)
def test_written_video_keeps_every_frame_index_through_lossy_coding(tmp_path, suffix, codec):
    path = tmp_path / f"v{suffix}"
    write_video(path, stamp_frame_index(_noise(20)), fps=25, codec=codec)
    decoded, _ = _decode_all(path)
    assert [read_frame_index(f) for f in decoded] == list(range(20))
    with av.open(str(path)) as container:
        assert container.streams.video[0].average_rate == 25


def test_gop_and_start_time(tmp_path):
    path = tmp_path / "v.mp4"
    write_video(path, _noise(20), fps=25, gop=8, start_time=2.0)
    _, key = _decode_all(path)
    assert [i for i, k in enumerate(key) if k] == [0, 8, 16]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert float(stream.start_time * stream.time_base) == pytest.approx(2.0)


def test_bad_arguments_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="even height and width"):
        write_video(tmp_path / "odd.mp4", _noise(2, 47, 64), fps=25)
    with pytest.raises(ValueError, match="not in this PyAV build"):
        write_video(tmp_path / "x.mp4", _noise(2), fps=25, codec="no_such_codec")
    with pytest.raises(ValueError, match="crf is libx264"):
        write_video(tmp_path / "x.avi", _noise(2), fps=25, codec="mpeg4", crf=20)
    with pytest.raises(ValueError, match=r"\[T, H, W, 3\]"):
        write_video(tmp_path / "x.mp4", _noise(2)[..., 0], fps=25)
    with pytest.raises(ValueError, match="faststart applies to .mp4"):
        write_video(tmp_path / "x.mkv", _noise(2), fps=25, faststart=True)
    assert not list(tmp_path.iterdir()), "a rejected call must not leave a file behind"


@pytest.mark.parametrize(
    "pattern,start,exact", [("img_{:05d}.jpg", 1, False), ("{:d}.png", 0, True)]
)
def test_frame_folder(tmp_path, pattern, start, exact):
    frames = stamp_frame_index(_noise(3))
    paths = write_frame_folder(tmp_path, frames, pattern=pattern, start_index=start)
    assert [p.name for p in paths] == [pattern.format(start + t) for t in range(3)]
    for t, path in enumerate(paths):
        (image,), _ = _decode_all(path)
        assert read_frame_index(image) == t
        error = np.abs(image.astype(int) - frames[t]).mean()
        assert error == 0 if exact else error < 8, f"{path.name}: mean abs error {error}"
    with pytest.raises(ValueError, match="suffix must be one of"):
        write_frame_folder(tmp_path, frames, pattern="{:d}.bmp")


def test_mpeg4_quality_does_not_drift_over_the_video(tmp_path):
    """FFmpeg's default mpeg4 bit rate starved textured frames: the coding error grew from 4 to
    11 levels over 30 frames, enough to hide a small moving object (the synthetic UCFRep videos'
    repetitions no longer matched)."""
    rng = np.random.default_rng(0)
    checker_HW = (np.add.outer(np.arange(64) // 8, np.arange(64) // 8) % 2).astype(np.uint8)
    frame_HW3 = np.stack([checker_HW * 90, checker_HW * 40 + 20, 60 - checker_HW * 50], axis=-1)
    frames_THW3 = np.repeat(frame_HW3[None], 30, axis=0).copy()
    for t, frame_HW3 in enumerate(frames_THW3):  # a bright square moving across the pattern
        frame_HW3[20:34, 2 * t : 2 * t + 14] = rng.integers(160, 256, size=3)
    path = tmp_path / "v.avi"
    write_video(path, frames_THW3, fps=25, codec="mpeg4")
    with av.open(str(path)) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    error_T = np.abs(decoded.astype(np.int16) - frames_THW3).mean(axis=(1, 2, 3))
    assert error_T[-10:].mean() < 1.5 * error_T[:10].mean() + 1, error_T.round(1)
