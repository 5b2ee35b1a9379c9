"""The frame-folder decoder: numbered JPEG/PNG files, their gaps, and what it refuses."""

from __future__ import annotations

import pickle

import pytest
from decoder_kit import HEIGHT, WIDTH, indices_of, stamped_frames
from vssl_decoders.frames import NOMINAL_FPS, FrameFolderDecoder

from vssl_core.build import build
from vssl_core.data.video_writer import write_frame_folder
from vssl_core.interfaces import Video, VideoDecodeError

N = 12


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames")
    frames = stamped_frames(N)
    write_frame_folder(root / "jpg", frames)  # img_00001.jpg ...
    write_frame_folder(root / "png", frames, pattern="{:06d}.png", start_index=0)
    return root


@pytest.mark.parametrize(
    "folder,kwargs",
    [("jpg", {}), ("png", {"pattern": "{:06d}.png", "start_index": 0})],
)
def test_reads_exactly_the_requested_frames(folders, folder, kwargs):
    video = FrameFolderDecoder(**kwargs).open(str(folders / folder))
    assert isinstance(video, Video)
    assert (video.num_frames, video.fps) == (N, NOMINAL_FPS)
    indices = [11, 0, 3, 3, 7, 1, 11]
    frames_THWC = video.read(indices)
    assert frames_THWC.shape == (len(indices), HEIGHT, WIDTH, 3)
    assert indices_of(frames_THWC) == indices
    assert video.read([]).shape == (0, HEIGHT, WIDTH, 3)
    assert indices_of(pickle.loads(pickle.dumps(video)).read([5])) == [5]


def test_resampling_needs_the_extraction_rate(host, folders):
    video = FrameFolderDecoder(source_fps=25.0, fps=12.5).open(str(folders / "jpg"))
    assert (video.num_frames, video.fps) == (N // 2, 12.5)
    assert indices_of(video.read(range(N // 2))) == list(range(0, N, 2))
    with pytest.raises(ValueError, match="set source_fps too"):
        build(host.registry, "decoder", {"name": "frames", "fps": 12.5})


def test_other_files_in_the_folder_are_ignored(tmp_path):
    write_frame_folder(tmp_path, stamped_frames(3))
    for stray in ("img_1.jpg", "flow_x_00001.jpg", "img_00004.jpg.tmp", "notes.txt"):
        (tmp_path / stray).write_text("not a frame")
    assert FrameFolderDecoder().open(str(tmp_path)).num_frames == 3


def test_a_gap_in_the_numbering_names_the_first_missing_file(tmp_path):
    write_frame_folder(tmp_path, stamped_frames(5))
    (tmp_path / "img_00003.jpg").unlink()
    with pytest.raises(VideoDecodeError, match=r"not numbered 1\.\.4 .*img_00003\.jpg"):
        FrameFolderDecoder().open(str(tmp_path))
    with pytest.raises(VideoDecodeError, match=r"numbered 0\.\.3 .*img_00000\.jpg"):
        FrameFolderDecoder(start_index=0).open(str(tmp_path))


@pytest.mark.parametrize("case", ["missing", "a_file", "empty", "corrupt_frame"])
def test_unusable_folders_raise_decode_error_naming_them(tmp_path, case):
    path = tmp_path / "video"
    if case == "a_file":
        path.write_text("")
    elif case == "empty":
        path.mkdir()
    elif case == "corrupt_frame":
        write_frame_folder(path, stamped_frames(3))
        (path / "img_00002.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    with pytest.raises(VideoDecodeError) as info:
        FrameFolderDecoder().open(str(path)).read([0, 1, 2])
    assert str(path) in str(info.value)
    if case == "corrupt_frame":
        assert "img_00002.jpg" in str(info.value)


@pytest.mark.parametrize("pattern", ["img.jpg", "{:05d}_{:05d}.jpg", "{name}.jpg", "{:s}.jpg"])
def test_patterns_need_exactly_one_integer_field(pattern):
    with pytest.raises(ValueError, match="pattern"):
        FrameFolderDecoder(pattern=pattern)
