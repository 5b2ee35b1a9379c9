"""Every video decoder backend against the Video contract, checked on the frames' own pixels."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from decoder_kit import BACKENDS, FPS, HEIGHT, NUM_FRAMES, WIDTH, backend_param, indices_of

from vssl_core.build import build, build_decoder
from vssl_core.interfaces import Video, VideoDecodeError, VideoDecoder

pytestmark = pytest.mark.extras  # CI runs it again with the optional extras (-m extras)

# containers each backend reads correctly (decord refuses AVI, MPEG-TS, raw: see decord_backend.py)
CONTAINERS = {
    "pyav": ["mp4", "mp4_start_1s", "mkv_start_half_s", "avi", "mpegts_start_1s", "raw_h264"],
    "decord": ["mp4", "mp4_start_1s", "mkv_start_half_s"],
    "torchcodec": ["mp4", "mp4_start_1s", "mkv_start_half_s", "avi", "mpegts_start_1s"],
}
CASES = [backend_param(b, c) for b in BACKENDS for c in CONTAINERS[b]]
EVERY_BACKEND = [backend_param(b) for b in BACKENDS]
UNSORTED = [39, 0, 5, 5, 17, 38, 1, 39, 8, 7, 16, 15]


def make(host, backend: str, **kwargs) -> VideoDecoder:
    return build(host.registry, "decoder", {"name": backend, **kwargs})


@pytest.mark.parametrize("backend,container", CASES)
def test_reads_exactly_the_requested_frames(host, videos, backend, container):
    video = make(host, backend).open(str(videos[container]))
    assert isinstance(video, Video)
    assert (video.num_frames, video.fps) == (NUM_FRAMES, FPS)
    frames_THWC = video.read(UNSORTED)
    assert frames_THWC.shape == (len(UNSORTED), HEIGHT, WIDTH, 3)
    assert frames_THWC.dtype == np.uint8
    assert indices_of(frames_THWC) == UNSORTED
    # later reads on the same Video: far forward, then back, then one frame before a key frame
    for indices in ([36, 37], [2], [23, 24, 25]):
        assert indices_of(video.read(indices)) == indices


@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_resampling_to_a_lower_and_a_higher_fps(host, videos, backend):
    half = make(host, backend, fps=12.5).open(str(videos["mp4"]))
    assert (half.num_frames, half.fps) == (20, 12.5)
    assert indices_of(half.read(range(20))) == list(range(0, 40, 2))
    double = make(host, backend, fps=50.0).open(str(videos["mp4"]))
    assert double.num_frames == 80
    assert indices_of(double.read([0, 1, 2, 3, 79])) == [0, 0, 1, 1, 39]
    third = make(host, backend, fps=10.0).open(str(videos["mp4"]))  # 25 -> 10: floor(j * 2.5)
    assert indices_of(third.read([0, 1, 2, 3, 15])) == [0, 2, 5, 7, 37]


def _bad_file(tmp_path, videos, case: str):
    path = tmp_path / f"{case}.mp4"
    if case == "random_bytes":
        path.write_bytes(np.random.default_rng(0).bytes(4000))
    elif case == "first_half":
        data = videos["mp4"].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "not_a_video":
        path.write_text("id,label\n1,2\n")
    return path  # "missing": never written


@pytest.mark.parametrize("case", ["random_bytes", "first_half", "empty", "not_a_video", "missing"])
@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_unusable_files_raise_decode_error_naming_the_file(host, videos, tmp_path, backend, case):
    path = _bad_file(tmp_path, videos, case)
    decoder = make(host, backend)
    with pytest.raises(VideoDecodeError) as info:
        decoder.open(str(path)).read(range(NUM_FRAMES))
    assert str(path) in str(info.value)
    if case == "missing":
        assert "no such file" in str(info.value)


@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_out_of_range_and_empty_reads(host, videos, backend):
    video = make(host, backend).open(str(videos["mp4"]))
    with pytest.raises(IndexError, match=r"index 40 is outside \[0, 40\) of video .*mp4"):
        video.read([3, 40])
    with pytest.raises(IndexError, match="-1"):
        video.read([-1])
    with pytest.raises(TypeError, match="1-D sequence of ints"):
        video.read([1.5])
    assert video.read([]).shape[0] == 0


class _VideoList(torch.utils.data.Dataset):
    def __init__(self, videos):
        self.videos = videos

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.videos[i].read([i * 5, 39 - i]))


@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_videos_survive_pickling_and_forked_workers(host, videos, backend):
    decoder = make(host, backend)
    video = decoder.open(str(videos["mp4"]))
    video.read([10])  # the parent now holds an open reader that the workers must not share
    copy = pickle.loads(pickle.dumps(video))
    assert indices_of(copy.read([30, 3])) == [30, 3]
    assert isinstance(pickle.loads(pickle.dumps(decoder)), type(decoder))
    loader = torch.utils.data.DataLoader(
        _VideoList([video] * 4),
        batch_size=None,
        num_workers=2,
        multiprocessing_context="fork",
        timeout=60,  # a deadlocked worker (decord freeing the parent's reader) fails, not hangs
    )
    got = [indices_of(batch.numpy()) for batch in loader]
    assert got == [[i * 5, 39 - i] for i in range(4)]
    assert indices_of(video.read([12])) == [12]  # the parent's reader still works


def test_registered_and_pyav_is_the_recipe_default(host):
    assert {"pyav", "frames", "decord", "torchcodec"} <= set(host.registry.names("decoder"))
    assert type(build_decoder(host.registry, {"data": {}})).__name__ == "PyAVDecoder"
    built = build_decoder(host.registry, {"data": {"decoder": {"name": "pyav", "fps": 12.5}}})
    assert built.fps == 12.5
