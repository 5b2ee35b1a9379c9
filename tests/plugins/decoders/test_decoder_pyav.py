"""PyAV decoder specifics: seeking cost, headers that overstate the frame count, threads."""

from __future__ import annotations

import gc

import av
import pytest
import torch
from decoder_kit import FPS, GOP, NUM_FRAMES, indices_of, stamped_frames
from vssl_decoders import pyav
from vssl_decoders.common import END_SLACK_FRAMES
from vssl_decoders.pyav import PyAVDecoder, PyAVVideo

from vssl_core.data.video_writer import write_video
from vssl_core.interfaces import VideoDecodeError


def test_a_far_read_decodes_from_the_key_frame_and_converts_each_frame_once(videos, monkeypatch):
    decoded, converted = [], []
    indexed_frames, rgb = PyAVVideo._indexed_frames, pyav._rgb

    def counting_frames(self, stream, from_start):
        for k, frame in indexed_frames(self, stream, from_start):
            decoded.append(k)
            yield k, frame

    monkeypatch.setattr(PyAVVideo, "_indexed_frames", counting_frames)
    monkeypatch.setattr(pyav, "_rgb", lambda frame: converted.append(1) or rgb(frame))
    video = PyAVDecoder().open(str(videos["mp4"]))
    assert indices_of(video.read([37, 35, 35, 37])) == [37, 35, 35, 37]
    assert decoded == [32, 33, 34, 35, 36, 37], "decode from key frame 32 up to 37, no further"
    assert len(converted) == 2
    decoded.clear()
    video.read([3])  # backwards: seeks again rather than decoding on from 37
    assert decoded == [0, 1, 2, 3]


def test_mpegts_seeks_that_overshoot_fall_back_to_decoding_from_the_start(videos, monkeypatch):
    starts = []
    decode_from = PyAVVideo._decode_from
    monkeypatch.setattr(
        PyAVVideo,
        "_decode_from",
        lambda self, w, seek: starts.append(seek) or decode_from(self, w, seek),
    )
    video = PyAVDecoder().open(str(videos["mpegts_start_1s"]))
    assert indices_of(video.read([0, 1])) == [0, 1]
    assert starts == [True, False]


@pytest.fixture(scope="module")
def cut_mp4(tmp_path_factory):
    """An MP4 whose index (written first) counts 40 frames, cut after its first 20 packets:
    the header overstates the frame count without any packet being damaged."""
    path = tmp_path_factory.mktemp("cut") / "full.mp4"
    write_video(path, stamped_frames(), FPS, gop=GOP, faststart=True)
    with av.open(str(path)) as container:
        positions = [p.pos for p in container.demux(video=0) if p.size]
    cut = path.with_name("cut.mp4")
    cut.write_bytes(path.read_bytes()[: positions[20]])
    return cut


def test_reads_past_the_decodable_end(cut_mp4):
    video = PyAVDecoder().open(str(cut_mp4))
    assert video.num_frames == NUM_FRAMES  # what the header says
    assert indices_of(video.read(range(19))) == list(range(19))
    # 20 packets decode to 20 frames, 0..19; the cut lost B-frame 19, so frame 19 shows 20
    assert indices_of(video.read([19])) == [20]
    reach = 19 + END_SLACK_FRAMES
    assert indices_of(video.read([reach])) == [20], "within the slack: the last decodable frame"
    with pytest.raises(
        VideoDecodeError, match=rf"cut\.mp4: frame {reach + 1} was asked .* truncated"
    ):
        video.read([5, reach + 1])
    counted = PyAVDecoder(num_frames_from="packets").open(str(cut_mp4))
    assert counted.num_frames == 20


@pytest.mark.parametrize("threads", [0, 2])
def test_threaded_decoding_gives_the_same_frames_also_in_forked_workers(videos, threads):
    video = PyAVDecoder(threads=threads).open(str(videos["mp4"]))
    assert indices_of(video.read([39, 4, 20])) == [39, 4, 20]
    assert indices_of(video.read([9])) == [9]  # stops mid-stream, frames in flight in threads
    # the workers inherit the parent's threaded decoder and must open their own
    loader = torch.utils.data.DataLoader(
        [video] * 2,
        batch_size=None,
        num_workers=2,
        multiprocessing_context="fork",
        timeout=60,  # a deadlocked worker fails the test instead of hanging the suite
        collate_fn=lambda v: torch.from_numpy(v.read([7, 30])),
    )
    assert [indices_of(b.numpy()) for b in loader] == [[7, 30], [7, 30]]


def _collect_in_worker(_):
    gc.collect()  # what a worker's allocations trigger sooner or later
    return torch.zeros(1)


def test_forked_workers_never_free_the_parents_garbage_readers(videos):
    """A threaded reader that is garbage in a reference cycle, not yet collected when the
    DataLoader forks: a worker's collector must not free it, since freeing joins FFmpeg threads
    that exist only in the parent (the worker hung in pthread_cond_destroy)."""
    gc.disable()  # keep the cycle uncollected until the fork, as a busy parent may
    try:
        video = PyAVDecoder(threads=2).open(str(videos["mp4"]))
        video.read([9])  # stops mid-stream: the codec's threads hold frames
        cycle = [video]
        cycle.append(cycle)
        del video, cycle
        loader = torch.utils.data.DataLoader(
            [0, 1], batch_size=None, num_workers=2, multiprocessing_context="fork",
            timeout=60, collate_fn=_collect_in_worker,
        )  # fmt: skip
        assert len(list(loader)) == 2
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"fps": 0.0}, "fps must be > 0"),
        ({"threads": -1}, "threads must be >= 0"),
        ({"num_frames_from": "guess"}, "'header' or 'packets'"),
    ],
)
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PyAVDecoder(**kwargs)


def test_a_file_without_a_video_stream(tmp_path):
    path = tmp_path / "audio.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame(format="s16", layout="mono", samples=800)
        frame.sample_rate = 8000
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(VideoDecodeError, match="audio.wav: the file has no video stream"):
        PyAVDecoder().open(str(path))
