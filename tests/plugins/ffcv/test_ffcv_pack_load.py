"""Pack a stamped dataset, load it back: the frames written, at the planned indices, in the
trainer's step order (per rank, resumable); broken videos listed, not packed.

Shape legend: B batch, V views, C channels, T frames, S crop side.
"""

import numpy as np
import pytest
import torch
from ffcv_kit import (
    BROKEN,
    NUM_VIDEOS,
    SIZE,
    StampedDataset,
    StampedVideo,
    frame_count,
    source_video,
)
from kit.optional import import_optional

import_optional("ffcv")
cv2 = import_optional("cv2")  # comes with ffcv (opencv-python)

from vssl_datasets.files import read_quarantine  # noqa: E402
from vssl_ffcv.dataset import FfcvVideoDataset  # noqa: E402
from vssl_ffcv.pack import pack_dataset  # noqa: E402
from vssl_ffcv.sampling import plan_for  # noqa: E402

from vssl_core.data.sampler import BatchLayout, StepBatchSampler, epoch_permutation  # noqa: E402
from vssl_core.data.video_writer import read_frame_index  # noqa: E402
from vssl_core.interfaces import ViewSpec  # noqa: E402
from vssl_core.random import sample_key  # noqa: E402

pytestmark = pytest.mark.extras  # CI runs it again with the optional extras (-m extras)

SEED = 3
PACKED = NUM_VIDEOS - 1
ROUND_TRIP = ViewSpec(frames=4, crop_size=SIZE, stride=3, num_clips=2)  # centre crop = all


def sampler(global_size: int, world: int, rank: int, start: int, end: int) -> StepBatchSampler:
    layout = BatchLayout.from_recipe(global_size, global_size // world, world)
    return StepBatchSampler(PACKED, layout, rank, SEED, start, end)


def frame(clip_BCTSS: torch.Tensor, b: int, t: int) -> np.ndarray:
    return clip_BCTSS[b, :, t].permute(1, 2, 0).numpy()


@pytest.fixture(scope="module")
def dataset(packed) -> FfcvVideoDataset:
    return FfcvVideoDataset(str(packed[0]))


@pytest.fixture(scope="module")
def loader(dataset):
    """One compiled loader (4 per micro-batch, 2 threads); tests swap its sampler."""
    return dataset.make_loader(ROUND_TRIP, sampler(4, 1, 0, 0, 2), SEED, num_workers=2)


def test_pack_lists_the_broken_video_and_packs_the_rest(packed, dataset):
    out, report = packed
    broken = f"/data/videos/v{BROKEN:02d}.mp4"
    assert report.packed == PACKED and [p for p, _ in report.failed] == [broken]
    lines = report.failed_list.read_text().splitlines()
    assert lines[1].startswith(f"{broken}  # VideoDecodeError: broken_{BROKEN}.mp4: invalid data")
    assert read_quarantine(str(report.failed_list)) == {broken}  # usable as a quarantine file
    assert len(dataset) == PACKED and dataset.num_classes == 3 and dataset.task == "classification"
    kept = [v for v in range(NUM_VIDEOS) if v != BROKEN]
    assert dataset.source_index.tolist() == kept
    assert [dataset[i].label for i in range(PACKED)] == [v % 3 for v in kept]


def test_the_python_path_reads_the_packed_frames(dataset):
    video = dataset[6].video  # source video 7
    assert (video.num_frames, video.fps) == (frame_count(7), 25.0)
    frames_THW3 = video.read([0, 9, 26])
    assert [read_frame_index(f) for f in frames_THW3] == [0, 9, 26]
    diff = np.abs(frames_THW3.astype(int) - StampedVideo(7).read([0, 9, 26]).astype(int))
    assert diff.mean() < 2, "JPEG at quality 90 keeps flat frames and stamps"


@pytest.mark.slow  # compiles the loader (seconds of numba)
def test_loader_returns_the_written_frames_at_the_planned_indices(dataset, loader):
    loader.sampler = sampler(4, 1, 0, 0, 3)  # steps 0-1 are epoch 0, step 2 is epoch 1
    batches = list(loader)
    assert len(batches) == 3
    for step, batch in enumerate(batches):
        epoch = step // 2
        assert [c.shape for c in batch.clips] == [(4, 3, 4, SIZE, SIZE)] * 2
        assert all(c.dtype == torch.uint8 and c.is_contiguous() for c in batch.clips)
        keys = [sample_key(SEED, epoch, int(i)) for i in batch.index]
        assert batch.keys.tolist() == keys
        for b, i in enumerate(batch.index.tolist()):
            src = int(dataset.source_index[i])
            assert batch.label[b] == src % 3
            idx_VT = plan_for(ROUND_TRIP, SEED, epoch, i, frame_count(src), SIZE, SIZE)[0]
            for c, clip in enumerate(batch.clips):
                got = [read_frame_index(frame(clip, b, t)) for t in range(4)]
                assert got == idx_VT[c].tolist(), f"sample {i} view {c}"
                assert source_video(frame(clip, b, 0)) == src
                expected = StampedVideo(src).read(idx_VT[c].tolist())
                decoded = clip[b].permute(1, 2, 3, 0).numpy()
                assert np.abs(decoded.astype(int) - expected.astype(int)).mean() < 2


@pytest.mark.slow  # compiles the loader (seconds of numba)
def test_ddp_ranks_split_each_step_and_cover_every_sample_once(dataset, loader):
    seen = []
    for rank in (0, 1):
        loader.sampler = sampler(8, 2, rank, 0, 1)
        (batch,) = list(loader)
        for b, i in enumerate(batch.index.tolist()):  # each clip is its index's video
            assert source_video(frame(batch.clips[0], b, 0)) == dataset.source_index[i]
        seen.append(batch.index.tolist())
    assert not set(seen[0]) & set(seen[1])
    assert seen[0] + seen[1] == epoch_permutation(PACKED, SEED, 0)[:8].tolist()


@pytest.mark.slow  # compiles the loader (seconds of numba)
def test_a_resumed_run_gets_the_same_batches(loader):
    loader.sampler = sampler(4, 1, 0, 0, 5)
    full = list(loader)[3:]
    loader.sampler = sampler(4, 1, 0, 3, 5)
    resumed = list(loader)
    assert len(resumed) == 2
    for a, b in zip(full, resumed, strict=True):
        assert torch.equal(a.index, b.index) and torch.equal(a.keys, b.keys)
        assert all(torch.equal(x, y) for x, y in zip(a.clips, b.clips, strict=True))


def reference_view(dataset, i: int, idx_T, box, flip: bool, size: int) -> np.ndarray:
    """The view computed in Python: decode, crop the box, area-resize, flip; [T, S, S, 3]."""
    top, left, h, w = box
    out = []
    for f in dataset[i].video.read(idx_T.tolist()):
        crop = cv2.resize(
            f[top : top + h, left : left + w], (size, size), interpolation=cv2.INTER_AREA
        )
        out.append(crop[:, ::-1] if flip else crop)
    return np.stack(out)


@pytest.mark.slow  # compiles a loader
@pytest.mark.parametrize(
    "views",
    [
        ViewSpec(
            frames=3,
            crop_size=32,
            stride=2,
            num_clips=3,
            temporal="shared",
            augmentation="multiscale_crop",
            flip=True,
        ),
        ViewSpec(
            frames=2,
            crop_size=40,
            stride=4,
            num_clips=2,
            temporal="sequence",
            gap=1,
            augmentation="random_resized_crop",
            crop_scale=(0.3, 1.0),
        ),
    ],
    ids=["shared-multiscale-flip", "sequence-rrc"],
)
def test_views_are_the_planned_crops_of_the_planned_frames(dataset, views):
    loader = dataset.make_loader(views, sampler(4, 1, 0, 0, 1), SEED, num_workers=1)
    (batch,) = list(loader)
    size = views.crop_size
    for b, i in enumerate(batch.index.tolist()):
        n = frame_count(int(dataset.source_index[i]))
        idx_VT, box_V4, flip_V = plan_for(views, SEED, 0, i, n, SIZE, SIZE)
        if views.temporal == "shared":
            assert (idx_VT == idx_VT[0]).all() and len({tuple(x) for x in box_V4}) > 1
        for c, clip in enumerate(batch.clips):
            expected = reference_view(dataset, i, idx_VT[c], box_V4[c], flip_V[c], size)
            got = clip[b].permute(1, 2, 3, 0).numpy()
            assert np.abs(got.astype(int) - expected.astype(int)).mean() < 1.5, (
                f"sample {i} view {c}"
            )


@pytest.mark.slow  # compiles a loader
def test_a_corrupt_frame_stops_loading_with_an_error_instead_of_hanging(packed, tmp_path):
    damaged = tmp_path / "damaged.beton"
    damaged.write_bytes(packed[0].read_bytes())
    ds = FfcvVideoDataset(str(damaged))
    ptr = int(ds.video_rows[0]["ptr"])
    with open(damaged, "r+b") as f:  # zero the JPEG data of every frame of video 0
        f.seek(ptr + 20 + 4 * (frame_count(0) + 1))
        f.write(bytes(int(ds.blob(0).size) - 20 - 4 * (frame_count(0) + 1)))
    views = ViewSpec(frames=2, crop_size=16)
    loader = FfcvVideoDataset(str(damaged)).make_loader(views, sampler(PACKED, 1, 0, 0, 1), SEED, 1)
    with pytest.raises(RuntimeError, match="loading thread failed.*libjpeg-turbo could not decode"):
        list(loader)


def test_views_the_decoder_cannot_make_are_refused(dataset):
    views = ViewSpec(frames=2, crop_size=32, temporal="segments")
    with pytest.raises(ValueError, match="temporal='segments'.*torch loading path"):
        dataset.make_loader(views, sampler(4, 1, 0, 0, 1), SEED, num_workers=1)


@pytest.mark.parametrize("task", ["multilabel", "counting"])
def test_other_label_kinds_round_trip(tmp_path, task):
    out = tmp_path / f"{task}.beton"
    pack_dataset(StampedDataset(task, num_videos=3), out, short_side=32, workers=1)
    ds = FfcvVideoDataset(str(out))
    assert ds.task == task and ds.short_side == 32
    labels = ds.labels(np.arange(3))
    expected = torch.from_numpy(
        np.array([StampedDataset(task).label(i) for i in range(3)], np.float32)
    )
    assert labels.dtype == torch.float32 and torch.equal(labels, expected)
    assert ds[2].video.read([0]).shape == (1, 32, 32, 3)


def test_a_missing_file_names_the_pack_command(tmp_path):
    with pytest.raises(ValueError, match="does not exist; write it with `vssl data pack"):
        FfcvVideoDataset(str(tmp_path / "nope.beton"))
