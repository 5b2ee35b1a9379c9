"""moving_shapes' variants for the SEVERE miniature: named class subsets, two motions per video
(multilabel) and a motion repeated n times (counting); the default videos stay as they were."""

import numpy as np
import pytest
from vssl_datasets.moving_shapes import CLASS_TABLE, MovingShapes

from vssl_core.schema import validate_component

SPEED_PAIRS = ["line-right-fast", "line-right-slow", "circle-cw-fast", "circle-cw-slow"]


def small(**kwargs) -> MovingShapes:
    return MovingShapes(**{"num_samples": 48, "num_frames": 32, "size": 32, **kwargs})


def test_named_classes_render_exactly_as_the_same_motions_picked_by_count():
    names = [m.name for m in CLASS_TABLE[:4]]
    by_name, by_count = small(num_classes=4, classes=names), small(num_classes=4)
    assert by_name.classes == by_count.classes == names
    for i in (0, 5, 11):
        a, b = by_name[i], by_count[i]
        assert a.label == b.label
        assert np.array_equal(a.video.read(range(32)), b.video.read(range(32)))


def test_named_classes_pick_fine_grained_label_sets():
    ds = small(num_classes=4, classes=SPEED_PAIRS)
    assert [ds[i].video.motion.name for i in range(4)] == SPEED_PAIRS
    assert {ds[i].label for i in range(8)} == {0, 1, 2, 3}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 2, "classes": ["line-right-fast", "line-sideways-fast"]}, "unknown"),
        ({"num_classes": 3, "classes": ["line-right-fast", "line-left-fast"]}, "num_classes: 2"),
        ({"num_classes": 2, "classes": ["line-right-fast", "line-right-fast"]}, "distinct"),
        ({"count_range": (1, 3)}, "task: counting"),
        ({"task": "counting", "count_range": (0, 3)}, "1 <= low <= high"),
        ({"task": "multilabel", "num_classes": 1}, "num_classes >= 2"),
        ({"task": "regression"}, "task must be one of"),
    ],
)
def test_bad_variant_arguments_say_what_to_change(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small(**kwargs)


def test_multilabel_videos_show_two_different_motions_and_label_both():
    k = 5
    ds = small(num_classes=k, num_samples=40, task="multilabel")
    plain = small(num_classes=k, num_samples=40)
    assert ds.task == "multilabel" and ds.num_classes == k
    pairs = set()
    for i in range(40):
        sample = ds[i]
        assert sample.label.dtype == np.float32 and sample.label.shape == (k,)
        ids = tuple(np.flatnonzero(sample.label))
        assert len(ids) == 2, f"video {i}: two motions, got {ids}"
        video = sample.video
        assert {CLASS_TABLE.index(m) for m in (video.motion, *video.others)} == set(ids)
        # the first object moves exactly as in the single-motion video of that index
        assert np.array_equal(video.top_left_T2, plain[i].video.top_left_T2)
        pairs.add(frozenset(ids))
    assert len(pairs) == k * (k - 1) // 2, "every pair of motions occurs"


def test_the_second_object_is_drawn_into_the_frames():
    ds = small(num_classes=4, task="multilabel", style="flat")
    video = ds[0].video
    frames = video.read(range(32))
    single = small(num_classes=4, style="flat")[0].video.read(range(32))
    changed_T = (frames != single).any(axis=(1, 2, 3))
    assert changed_T.all(), "the second object is visible in every frame"


def _turns(x_T: np.ndarray) -> int:
    """Direction reversals of a coordinate along a clip (plateaus skipped)."""
    steps = np.sign(np.diff(x_T))
    steps = steps[steps != 0]
    return int((steps[1:] != steps[:-1]).sum())


@pytest.mark.parametrize("count_range", [(1, 4), (2, 3)])
def test_counting_videos_repeat_the_motion_count_times(count_range):
    # (gravity=0: the default's fall bends the vertical coordinate once more per video; the
    # path's repeats are what this test counts)
    ds = small(num_classes=2, classes=["line-right-fast", "line-down-fast"], task="counting",
               count_range=count_range, gravity=0)  # fmt: skip
    low, high = count_range
    assert ds.task == "counting"
    seen = set()
    for i in range(12):
        sample = ds[i]
        n = int(sample.label)
        assert isinstance(sample.label, float) and low <= n <= high
        axis = 0 if sample.video.motion.direction == "right" else 1
        path_T = sample.video.top_left_T2[:, axis]
        assert _turns(path_T) == 2 * n - 1, f"video {i}: out and back {n} times"
        assert abs(int(path_T[0]) - int(path_T[-1])) <= 1, "it ends where it starts"
        seen.add(n)
    assert seen == set(range(low, high + 1)), "every count occurs"


def test_variants_are_recipe_arguments(host):
    spec = {"name": "moving_shapes", "task": "counting", "count_range": [1, 4],
            "classes": SPEED_PAIRS, "num_classes": 4}  # fmt: skip
    filled, problems = validate_component(spec, "dataset", "data.dataset", host.registry)
    assert problems == [] and filled["task"] == "counting"
    _, problems = validate_component(
        {"name": "moving_shapes", "task": "ranking"}, "dataset", "data.dataset", host.registry
    )
    assert problems and "data.dataset.task" in problems[0]
