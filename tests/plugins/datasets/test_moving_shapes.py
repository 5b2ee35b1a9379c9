"""The embedded moving-shapes dataset: contract, determinism, and that only motion gives the label."""

import hashlib
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from vssl_datasets import moving_shapes
from vssl_datasets.moving_shapes import CLASS_TABLE, STYLES, MovingShapes

from vssl_core.interfaces import Video, VideoDataset
from vssl_core.registry import Registry


def small(**kwargs) -> MovingShapes:
    """A dataset small enough that every test renders in milliseconds."""
    return MovingShapes(**{"num_samples": 64, "num_frames": 12, "size": 32, **kwargs})


def digest(frames: np.ndarray) -> str:
    return hashlib.sha256(frames.tobytes()).hexdigest()


def test_sample_and_video_contract():
    ds = small(num_classes=5, fps=12.5)
    sample = ds[3]
    frames_THW3 = sample.video.read(range(12))
    assert isinstance(ds, VideoDataset) and isinstance(sample.video, Video)
    assert frames_THW3.shape == (12, 32, 32, 3) and frames_THW3.dtype == np.uint8
    assert (sample.label, sample.index, sample.video_id) == (3, 3, "moving_shapes_000003")
    assert (sample.video.num_frames, sample.video.fps, sample.video.size) == (12, 12.5, 32)
    assert len(ds) == 64 and ds.num_classes == 5 and len(ds.classes) == 5
    assert ds[-1].index == 63


def test_class_table_is_unique_and_spreads_variety():
    names = [m.name for m in CLASS_TABLE]
    assert len(set(names)) == len(names) == 36
    assert small(num_classes=4).classes == [
        "line-right-fast",
        "line-left-fast",
        "line-up-fast",
        "line-down-fast",
    ]
    first10 = CLASS_TABLE[:10]
    assert {m.path for m in first10} == {"line", "circle", "zigzag"}
    assert {m.speed for m in first10} == {"fast"}
    assert small(num_classes=36).classes == names


def test_registered_as_dataset_component():
    registry = Registry()
    assert registry.add_module(moving_shapes, "datasets") == 1
    assert registry.get("dataset", "moving_shapes").factory is MovingShapes


def test_same_seed_same_frames_in_any_access_order():
    forward = small(seed=7)
    backward = small(seed=7)
    order = list(range(10))
    a = {i: forward[i].video.read(range(12)) for i in order}
    b = {i: backward[i].video.read(range(11, -1, -1))[::-1] for i in reversed(order)}
    assert all(np.array_equal(a[i], b[i]) for i in order)


def test_same_frames_in_a_fresh_process():
    code = (
        "import hashlib; from vssl_datasets.moving_shapes import MovingShapes;"
        "ds = MovingShapes(num_samples=64, num_frames=12, size=32, seed=3);"
        "print(hashlib.sha256(ds[5].video.read(range(12)).tobytes()).hexdigest())"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == digest(small(seed=3)[5].video.read(range(12)))


def test_pickled_dataset_renders_the_same():
    ds = small(seed=1)
    clone = pickle.loads(pickle.dumps(ds))
    assert np.array_equal(clone[9].video.read([0, 5]), ds[9].video.read([0, 5]))


def test_different_seeds_and_indices_differ():
    frames = {
        (seed, i): digest(small(seed=seed)[i].video.read([0, 6])) for seed in (0, 1) for i in (0, 1)
    }
    assert len(set(frames.values())) == 4


def test_subset_read_matches_full_read():
    video = small()[4].video
    full_THW3 = video.read(range(12))
    indices = [5, 0, 5, 11, 2, 2]
    assert np.array_equal(video.read(indices), full_THW3[indices])
    assert np.array_equal(video.read(np.arange(0, 12, 3)), full_THW3[::3])
    assert video.read([]).shape == (0, 32, 32, 3)


def test_labels_are_balanced():
    ds = MovingShapes(num_samples=103, num_classes=10)
    counts = np.bincount([ds[i].label for i in range(len(ds))], minlength=10)
    assert counts.max() - counts.min() <= 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("num_samples", 0),
        ("num_classes", 0),
        ("num_classes", 37),
        ("num_frames", 0),
        ("size", 8),
        ("seed", -1),
        ("style", "neon"),
        ("fps", 0.0),
        ("fps", float("nan")),
        ("num_frames", 2.5),
    ],
)
def test_bad_arguments_name_themselves(name, value):
    with pytest.raises(ValueError, match=name):
        MovingShapes(**{name: value})


def test_out_of_range_indices_raise():
    ds = small()
    with pytest.raises(IndexError):
        ds[64]
    with pytest.raises(IndexError):
        ds[-65]
    with pytest.raises(IndexError):
        ds[0].video.read([0, 12])
    with pytest.raises(IndexError):
        ds[0].video.read([-1])


@pytest.mark.parametrize("size", [16, 48, 112])
def test_object_stays_fully_inside_the_frame(size):
    ds = MovingShapes(num_samples=72, num_classes=36, num_frames=32, size=size)
    for i in range(len(ds)):
        video = ds[i].video
        assert video.top_left_T2.min() >= 0
        assert video.top_left_T2.max() <= size - video.sprite_size


def test_both_styles_render():
    for style in STYLES:
        frames_THW3 = small(style=style)[0].video.read(range(12))
        assert frames_THW3.shape == (12, 32, 32, 3) and frames_THW3.std() > 0
    flat = small(style="classic_flat")[0].video.read([0])[0].reshape(-1, 3)
    textured = small(style="classic")[0].video.read([0])[0].reshape(-1, 3)
    assert len(np.unique(flat, axis=0)) <= 2 < len(np.unique(textured, axis=0))
    # flat: one solid ground colour (the shaded sprites cover the rest); default: patterned
    for style in ("flat", "default"):
        for i in range(8):
            frame_N3 = small(style=style)[i].video.read([0])[0].reshape(-1, 3)
            _, counts = np.unique(frame_N3, axis=0, return_counts=True)
            assert (counts.max() / len(frame_N3) > 0.6) == (style == "flat"), (style, i)


def nearest_centroid_accuracy(features_N: np.ndarray, labels_N: np.ndarray) -> float:
    """Fit class centroids on the first half, score on the second half."""
    half = len(labels_N) // 2
    classes = np.unique(labels_N)
    centroids = np.stack([features_N[:half][labels_N[:half] == k].mean(0) for k in classes])
    distances = ((features_N[half:, None] - centroids[None]) ** 2).sum(-1)
    return float((classes[distances.argmin(1)] == labels_N[half:]).mean())


def motion_feature(frames_THW3: np.ndarray) -> np.ndarray:
    """Displacement of the centroid of changed pixels from the first to the last frame pair."""

    def changed_centroid(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # the global dusk darkening changes every pixel a little; the object changes them a lot
        diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=-1)
        ys, xs = np.nonzero(diff > np.median(diff) + 8)
        return np.array([xs.mean(), ys.mean()]) if xs.size else np.zeros(2)

    start = changed_centroid(frames_THW3[0], frames_THW3[1])
    end = changed_centroid(frames_THW3[-2], frames_THW3[-1])
    return end - start


@pytest.mark.parametrize("style", STYLES)
def test_label_comes_from_motion_not_appearance(style):
    ds = MovingShapes(num_samples=200, num_classes=4, num_frames=8, size=48, style=style)
    samples = [ds[i] for i in range(len(ds))]
    videos = [s.video.read(range(8)) for s in samples]
    labels_N = np.array([s.label for s in samples])
    mean_rgb_N3 = np.stack([v.reshape(-1, 3).mean(0) for v in videos])
    motion_N2 = np.stack([motion_feature(v) for v in videos])
    assert nearest_centroid_accuracy(mean_rgb_N3, labels_N) < 0.5  # chance is 0.25
    assert nearest_centroid_accuracy(motion_N2, labels_N) > 0.9


def test_style_hint_lists_every_style():
    """The recipe validator checks `style` against the type hint, so it must list every style."""
    import typing

    hint = typing.get_type_hints(MovingShapes.__init__)["style"]
    assert typing.get_args(hint) == STYLES


def test_classic_light_comes_from_above_and_time_darkens_frames():
    """The classic styles' global cues: an up (rotation) and an arrow of time (clip order)."""
    ds = MovingShapes(num_samples=40, num_frames=16, size=48, style="classic")
    frames = np.stack([ds[i].video.read([0, 15]) for i in range(40)]).astype(np.float64)
    top, bottom = frames[:, 0, :8].mean(), frames[:, 0, -8:].mean()
    assert top > bottom * 1.2
    first, last = frames[:, 0].mean(), frames[:, 1].mean()
    assert first - last > 20
    flat = MovingShapes(num_samples=4, num_frames=16, size=48, style="classic_flat")[0].video
    a, b = flat.read([0, 15])
    assert np.median(a) == np.median(b)  # the flat style keeps neither cue


def test_each_global_cue_can_be_removed_alone_and_nothing_else_changes():
    """light_from_above=0 / dusk=0 remove one cue (to test what a pretext model reads); the
    motion, the sprite and the rest of the look stay those of the same video with the cue."""
    kw = dict(num_samples=24, num_frames=16, size=48, style="classic")
    datasets = (
        MovingShapes(**kw),
        MovingShapes(**kw, light_from_above=0),
        MovingShapes(**kw, dusk=0.0),
    )
    frames = [
        np.stack([ds[i].video.read([0, 15]) for i in range(24)]).astype(np.float64)
        for ds in datasets
    ]
    base, unlit, no_dusk = frames
    assert datasets[0][3].video.motion == datasets[1][3].video.motion
    assert np.array_equal(datasets[0][3].video.top_left_T2, datasets[2][3].video.top_left_T2)
    # each cue only ever darkens: without it every pixel is as bright or brighter
    assert (unlit >= base).all() and (no_dusk >= base).all()

    def top_minus_bottom(f):
        return f[:, 0, :8].mean() - f[:, 0, -8:].mean()

    assert abs(top_minus_bottom(unlit)) < 0.3 * top_minus_bottom(base)
    assert abs(top_minus_bottom(no_dusk) - top_minus_bottom(base)) < 2  # dusk=0 keeps the light

    def first_minus_last(f):
        return f[:, 0].mean() - f[:, 1].mean()

    assert abs(first_minus_last(no_dusk)) < 2 < 20 < first_minus_last(base)
    assert first_minus_last(unlit) > 20  # light_from_above=0 keeps the dusk
    assert "light_from_above=0.0" in repr(datasets[1]) and "dusk=0.0" in repr(datasets[2][0].video)


@pytest.mark.parametrize("bad", [-0.1, 1.0, True, "dim"])
def test_a_cue_out_of_range_names_the_key_and_the_range(bad):
    with pytest.raises(ValueError, match=r"light_from_above must be a number in \[0, 0.9\]"):
        MovingShapes(num_samples=2, light_from_above=bad)


def test_friction_slows_the_object_down_along_the_same_path():
    kw = dict(
        num_samples=8,
        num_frames=32,
        size=64,
        num_classes=2,
        classes=["line-right-fast", "line-up-fast"],
        gravity=0,  # (the default's fall adds the same speed at both ends: tested on its own)
    )
    plain, slowing = MovingShapes(**kw, friction=0), MovingShapes(**kw, friction=0.6)
    for i in range(8):
        a, b = plain[i].video.top_left_T2, slowing[i].video.top_left_T2
        assert np.array_equal(a[[0, -1]], b[[0, -1]])  # same start and end: same path, same class
        step = np.abs(np.diff(b, axis=0)).sum(axis=1)
        assert step[:8].sum() > 1.8 * step[-8:].sum()  # mean speed 1.44x vs 0.56x over 8 steps
        plain_step = np.abs(np.diff(a, axis=0)).sum(axis=1)
        assert abs(int(plain_step[:8].sum()) - int(plain_step[-8:].sum())) <= 2
    # counting: still out and back n times, ending where it started
    video = MovingShapes(**kw, task="counting")[0].video  # the default style's friction
    assert np.array_equal(video.top_left_T2[0], video.top_left_T2[-1])


def test_object_light_shades_the_moving_object_only():
    kw = dict(num_samples=16, num_frames=4, size=64, style="classic_flat")
    plain, shaded = MovingShapes(**kw), MovingShapes(**kw, object_light=0.5)
    for i in range(16):
        va, vb = plain[i].video, shaded[i].video
        fa, fb = va.read([0])[0].astype(float), vb.read([0])[0].astype(float)
        (x0, y0), side = va.top_left_T2[0], va.sprite_size
        changed = np.argwhere((fa != fb).any(axis=2))
        assert changed.size  # the object got darker towards its bottom...
        assert changed[:, 0].min() >= y0 and changed[:, 0].max() < y0 + side  # ...and only it
        assert changed[:, 1].min() >= x0 and changed[:, 1].max() < x0 + side
        assert (fb <= fa).all()
        bottom = slice(y0 + side - 2, y0 + side)
        assert (fa[bottom] - fb[bottom]).max() > 0.3 * fa[bottom].max()
