"""Every file dataset reads the synthetic copy of its real layout: counts, labels, decoding."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from synth_kit import TINY, K, N
from vssl_datasets import plugin
from vssl_datasets.charades import charades
from vssl_datasets.gym import gym99
from vssl_datasets.hmdb51 import hmdb51
from vssl_datasets.kinetics import kinetics400
from vssl_datasets.ssv2 import ssv2
from vssl_datasets.synth_disk import GYM_LABELS, LAYOUTS, class_names
from vssl_datasets.ucf101 import ucf101
from vssl_datasets.ucfrep import ucfrep
from vssl_datasets.video_list import video_list

from vssl_core.build import build_dataset
from vssl_core.data.video_writer import read_frame_index
from vssl_core.interfaces import Video, VideoDataset

FACTORIES = {
    "ucf101": ucf101,
    "hmdb51": hmdb51,
    "kinetics400": kinetics400,
    "ssv2": ssv2,
    "gym99": gym99,
    "charades": charades,
    "ucfrep": ucfrep,
    "video_list": video_list,
}

# (layout, arguments, videos per class); see synth_disk's docstring for the per-layout rules
CLASSIFICATION = [
    *[("ucf101", {"subset": "train", "split": s}, 2 * N) for s in (1, 2, 3)],
    *[("ucf101", {"subset": "test", "split": s}, N) for s in (1, 2, 3)],
    *[("hmdb51", {"subset": "train", "split": s}, 2 * N - 1) for s in (1, 2, 3)],
    ("hmdb51", {"subset": "test", "split": 2}, N),
    *[("kinetics400", {"subset": s}, N) for s in ("train", "val", "test")],
    *[("ssv2", {"subset": s}, N) for s in ("train", "val")],
    *[("gym99", {"subset": s}, N) for s in ("train", "val")],
    *[("video_list", {"subset": s}, N) for s in ("train", "val", "test")],
]


def open_dataset(synth, decoder, layout: str, **kwargs):
    return FACTORIES[layout](root=str(synth(layout).root), decoder=decoder, **kwargs)


def test_every_layout_has_a_dataset_registered_under_its_name(host):
    assert set(FACTORIES) == set(LAYOUTS)
    for name, factory in FACTORIES.items():
        assert host.registry.get("dataset", name).factory is factory
    # + moving_shapes and video_folder (any folder of videos: no layout of its own)
    assert len(plugin.DATASET_MODULES) == len(LAYOUTS) + 2


@pytest.mark.parametrize(("layout", "kwargs", "per_class"), CLASSIFICATION)
def test_counts_and_labels_match_what_was_written(synth, decoder, layout, kwargs, per_class):
    s = synth(layout)
    ds = open_dataset(synth, decoder, layout, **kwargs)
    names = class_names(layout, K)
    shown = Counter()
    for i in range(len(ds)):
        written = s.written[s.rel(ds.video_path(i))]  # a KeyError: a path synth never wrote
        assert ds.classes[ds.label(i)] == names[written.classes[0]]
        shown[written.classes[0]] += 1
    assert shown == {c: per_class for c in range(K)}
    assert ds.task == "classification" and isinstance(ds, VideoDataset)


def test_split_lists_partition_the_videos(synth, decoder):
    """UCF101: each split's train and test lists are disjoint and together cover every video."""
    every = {p for p in synth("ucf101").written}
    for split in (1, 2, 3):
        train = open_dataset(synth, decoder, "ucf101", subset="train", split=split)
        test = open_dataset(synth, decoder, "ucf101", subset="test", split=split)
        a = {synth("ucf101").rel(train.video_path(i)) for i in range(len(train))}
        b = {synth("ucf101").rel(test.video_path(i)) for i in range(len(test))}
        assert not a & b and a | b == every


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_sample_decodes_to_the_frames_asked_for(synth, decoder, layout):
    subset = {"ucfrep": "val", "charades": "test"}.get(layout, "train")
    ds = open_dataset(synth, decoder, layout, subset=subset)
    sample = ds[len(ds) - 1]
    video = sample.video
    assert isinstance(video, Video) and sample.index == len(ds) - 1
    last = video.num_frames - 1
    frames_THWC = video.read([0, last, 1])
    assert frames_THWC.shape == (3, TINY.size, TINY.size, 3) and frames_THWC.dtype == np.uint8
    first = ds.records[-1].segment[0] if layout == "ucfrep" else 0
    assert [read_frame_index(f) for f in frames_THWC] == [first, first + last, first + 1]
    assert video.fps == pytest.approx(TINY.fps)


def test_gym_label_sets_keep_and_shift_severe_labels(synth, decoder):
    s = synth("gym99")
    names = class_names("gym99", K)
    for label_set, low, size in (("fx_s1", 6, 11), ("ub_s1", 74, 15)):
        ds = open_dataset(synth, decoder, "gym99", subset="val", label_set=label_set)
        assert ds.num_classes == len(ds.classes) == size
        synthetic = [c for c in range(K) if low <= GYM_LABELS[c] < low + size]
        assert len(ds) == N * len(synthetic) > 0
        for i in range(len(ds)):
            c = s.written[s.rel(ds.video_path(i))].classes[0]
            assert ds.label(i) == GYM_LABELS[c] - low and ds.classes[ds.label(i)] == names[c]
    full = open_dataset(synth, decoder, "gym99", subset="train")
    assert full.num_classes == 99 and full.classes[GYM_LABELS[0]] == names[0]


def test_charades_labels_are_multi_hot_unions_of_the_timed_actions(synth, decoder):
    s = synth("charades")
    ds = open_dataset(synth, decoder, "charades", subset="train")
    assert ds.task == "multilabel" and ds.num_classes == K and len(ds) == K * N
    for i in range(len(ds)):
        label_K = ds.label(i)
        assert label_K.dtype == np.float32 and label_K.shape == (K,)
        written = s.written[s.rel(ds.video_path(i))].classes
        assert set(np.flatnonzero(label_K)) == set(written)
        actions = ds.actions(i)
        assert {a[0] for a in actions} == set(written) and all(a[1] < a[2] for a in actions)
    assert ds[0].label is ds.label(0) and not ds.label(0).flags.writeable


def test_ucfrep_count_segment_and_cycle_annotation(synth, decoder):
    s = synth("ucfrep")
    ds = open_dataset(synth, decoder, "ucfrep", subset="train")
    assert ds.task == "counting" and len(ds) == K * N and ds.num_classes == 1
    assert ds.actions == sorted(class_names("ucfrep", K))
    for i in range(len(ds)):
        written = s.written[s.rel(ds.video_path(i))]
        ann = ds.annotation(i)
        assert ds.label(i) == float(written.count) == float(ann.count)
        first, last = ds.records[i].segment
        assert ann.bounds_N[0] == 0 and ann.bounds_N[-1] == last - first
        assert len(ann.offset_next_F) == last - first + 1


def test_built_from_a_recipe_gets_the_recipe_decoder(host, synth):
    recipe = {"data": {"dataset": {"name": "ucf101", "root": str(synth("ucf101").root)}}}
    ds = build_dataset(host.registry, recipe)
    assert type(ds.decoder).__name__ == "PyAVDecoder"  # data.decoder {} means pyav
    assert ds[0].video.read([0]).shape == (1, TINY.size, TINY.size, 3)
