"""The data path: clip sampling, clip-consistent crops, keyed determinism, collation, loading."""

import numpy as np
import pytest
import torch

from vssl_core.data.clips import ClipDataset, collate, normalize_on_device
from vssl_core.data.loader import build_loader
from vssl_core.data.sampler import BatchLayout, StepBatchSampler
from vssl_core.data.sampling import random_clip_indices
from vssl_core.data.transforms import (
    MULTISCALE_SCALES,
    crop_resize,
    multiscale_crop_box,
    random_resized_crop_box,
)
from vssl_core.interfaces import ViewSpec
from vssl_core.random import keyed_uniform, sample_key


def test_clip_indices_follow_stride_and_pad_short_videos():
    rng = np.random.default_rng(0)
    for _ in range(50):
        idx = random_clip_indices(40, 8, 4, rng)
        assert np.all(np.diff(idx) == 4) and idx[0] >= 0 and idx[-1] < 40
    short = random_clip_indices(5, 4, 2, rng)
    assert short.tolist() == [0, 2, 4, 4]  # the last frame repeats


def test_multiscale_crop_uses_the_videomae_sizes_and_stays_inside():
    rng = np.random.default_rng(1)
    sides = {int(120 * s) for s in MULTISCALE_SCALES}
    for _ in range(200):
        top, left, h, w = multiscale_crop_box(120, 160, 112, rng)
        assert {h, w} <= sides | {112}
        assert top >= 0 and left >= 0 and top + h <= 120 and left + w <= 160


def test_random_resized_crop_stays_inside():
    rng = np.random.default_rng(2)
    for _ in range(200):
        top, left, h, w = random_resized_crop_box(64, 80, rng)
        assert 0 < h <= 64 and 0 < w <= 80 and top + h <= 64 and left + w <= 80


def test_crop_resize_applies_one_box_to_every_frame():
    clip = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(3, 2, 8, 8)
    clip = (clip % 255).to(torch.uint8)
    same = torch.cat([clip[:, :1], clip[:, :1]], dim=1)  # two identical frames
    out = crop_resize(same, (1, 2, 6, 6), 4)
    assert out.shape == (3, 2, 4, 4) and out.dtype == torch.uint8
    assert torch.equal(out[:, 0], out[:, 1])
    assert torch.equal(crop_resize(clip, (0, 0, 4, 4), 4), clip[:, :, :4, :4])


def _clips(host, **view):
    from vssl_datasets.moving_shapes import MovingShapes

    ds = MovingShapes(num_samples=16, num_classes=4, num_frames=12, size=40)
    spec = ViewSpec(**{"frames": 4, "crop_size": 32, "stride": 2, **view})
    return ClipDataset(ds, spec, seed=7)


def test_a_sample_is_a_pure_function_of_seed_epoch_and_index(host):
    clips = _clips(host, augmentation="random_resized_crop", flip=True, num_clips=2)
    a, b = clips[(3, 5)], clips[(3, 5)]
    assert all(torch.equal(x, y) for x, y in zip(a["clips"], b["clips"], strict=True))
    assert a["key"] == sample_key(7, 3, 5)
    c = clips[(4, 5)]
    assert not all(torch.equal(x, y) for x, y in zip(a["clips"], c["clips"], strict=True))
    assert a["clips"][0].shape == (3, 4, 32, 32) and a["clips"][0].dtype == torch.uint8


def test_shared_augmentation_gives_every_clip_the_same_crop(host):
    clips = _clips(
        host,
        augmentation="random_resized_crop",
        num_clips=2,
        shared_augmentation=True,
        stride=1,
        frames=12,
    )
    a = clips[(0, 1)]["clips"]  # 12 frames at stride 1 from a 12-frame video: the same frames
    assert torch.equal(a[0], a[1])


def test_collate_and_normalize(host):
    clips = _clips(host)
    batch = collate([clips[(0, i)] for i in range(3)])
    assert batch.clips[0].shape == (3, 3, 4, 32, 32) and batch.label.tolist() == [0, 1, 2]
    norm = normalize_on_device(batch, clips.views).clips[0]
    mean = torch.tensor(clips.views.mean).view(1, 3, 1, 1, 1)
    std = torch.tensor(clips.views.std).view(1, 3, 1, 1, 1)
    raw = collate([clips[(0, i)] for i in range(3)]).clips[0].float() / 255
    assert torch.allclose(norm, (raw - mean) / std, atol=1e-5)
    uint8 = collate([clips[(0, i)] for i in range(3)])
    assert torch.equal(norm, (uint8.clips[0].float() - mean * 255) / (std * 255))  # same bits
    uint8.clips = [uint8.clips[0].contiguous(memory_format=torch.channels_last_3d)]
    ndhwc = normalize_on_device(uint8, clips.views).clips[0]  # the layout is kept
    assert ndhwc.is_contiguous(memory_format=torch.channels_last_3d) and torch.equal(ndhwc, norm)


def test_worker_processes_give_the_same_batches(host):
    clips = _clips(host, augmentation="multiscale_crop")
    layout = BatchLayout.from_recipe(4, None, 1)

    def batches(workers):
        sampler = StepBatchSampler(16, layout, rank=0, seed=7, start_step=2, end_step=6)
        loader = build_loader(clips, sampler, workers, False, True, 2)
        return [(b.index.tolist(), b.clips[0]) for b in loader]

    inline, pooled = batches(0), batches(2)
    assert [i for i, _ in inline] == [i for i, _ in pooled]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(inline, pooled, strict=True))


def test_keyed_uniform_is_per_key_and_device_independent():
    keys = torch.tensor([sample_key(0, 0, i) for i in range(64)])
    u = keyed_uniform(keys, 500)
    assert u.shape == (64, 500) and 0 <= u.min() and u.max() < 1
    assert abs(u.mean().item() - 0.5) < 0.01 and abs(u.std().item() - 12**-0.5) < 0.01
    assert torch.equal(keyed_uniform(keys[10:11], 500), u[10:11])  # independent of batch mates
    assert not torch.equal(keyed_uniform(keys, 500, stream=1), u)
    # neighbouring keys and counters are uncorrelated
    corr = np.corrcoef(u[:, :-1].flatten().numpy(), u[:, 1:].flatten().numpy())[0, 1]
    assert abs(corr) < 0.02


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_keyed_uniform_matches_on_gpu():
    keys = torch.tensor([sample_key(0, 0, i) for i in range(8)])
    assert torch.equal(keyed_uniform(keys, 100), keyed_uniform(keys.cuda(), 100).cpu())


def test_sequence_clips_follow_each_other_with_the_gap():
    from vssl_core.data.sampling import sequence_clip_indices

    rng = np.random.default_rng(3)
    for _ in range(20):
        a, b, c = sequence_clip_indices(80, 16, 1, 3, 8, rng)  # VCOP: l=16, g=8, n=3, S=64
        assert b[0] == a[-1] + 1 + 8 and c[0] == b[-1] + 1 + 8
        assert a[0] >= 0 and c[-1] < 80
    short = sequence_clip_indices(6, 2, 2, 2, 1, rng)  # needs 8 frames: pad
    assert [x.tolist() for x in short] == [[0, 2], [5, 5]]


def test_shared_temporal_gives_every_clip_the_same_frames(host):
    clips = _clips(host, num_clips=2, temporal="shared", augmentation="none")
    a = clips[(0, 3)]["clips"]
    assert torch.equal(a[0], a[1])
    ind = _clips(host, num_clips=2, temporal="independent", augmentation="none")
    assert not all(torch.equal(*ind[(0, i)]["clips"]) for i in range(8))


class _CountingReads:
    """A dataset whose videos count their reads (one decode call per sample expected)."""

    def __init__(self, inner):
        self.inner, self.reads = inner, 0
        self.num_classes = inner.num_classes

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        sample, owner = self.inner[i], self

        class Video:
            num_frames = sample.video.num_frames

            def read(self, indices):
                owner.reads += 1
                return sample.video.read(indices)

        return type(sample)(Video(), sample.label, sample.index, sample.video_id)


def test_repeats_cut_several_clips_from_one_decode(host):
    plain = _clips(host, augmentation="multiscale_crop", flip=True)
    counting = _CountingReads(plain.dataset)
    repeated = ClipDataset(counting, plain.views, seed=7, repeats=3)
    item = repeated[(2, 5)]
    assert isinstance(item, list) and len(item) == 3 and counting.reads == 1
    keys = [s["key"] for s in item]
    assert keys[0] == plain[(2, 5)]["key"] and len(set(keys)) == 3
    assert torch.equal(item[0]["clips"][0], plain[(2, 5)]["clips"][0])  # repeat 0 = the plain one
    assert {s["index"] for s in item} == {5} and len({s["label"] for s in item}) == 1
    crops = [s["clips"][0] for s in item]
    assert not torch.equal(crops[0], crops[1]) or not torch.equal(crops[1], crops[2])
    batch = collate([repeated[(2, 5)], repeated[(2, 6)]])  # videos' clips side by side
    assert batch.index.tolist() == [5, 5, 5, 6, 6, 6] and batch.clips[0].shape[0] == 6
    assert len(set(batch.keys.tolist())) == 6
