"""The default moving-shapes videos are built so that only motion pays: measured properties.

- the class is the motion (and appearance does not predict it: test_moving_shapes.py);
- no global "up" and no global arrow of time: the up is gravity (every object is thrown: its
  path bends downwards, which a clip shows and a still frame does not), and the arrow of time
  is the object slowing down; in the shaded styles (the default of 2026-12-07) the up is the
  moving object's shading;
- appearance does not identify a video: every video shows the one look (turned by a random
  quarter turn) about the frame's centre, so two clips of one video are matched by colour or
  still image no better than chance; in the pooled styles (16 looks) one video in 64 shares it;
- the classic, pooled and shaded styles (former defaults) render bit for bit as before.
"""

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from vssl_datasets.moving_shapes import MovingShapes, _fall

from tests.plugins.datasets.test_moving_shapes import motion_feature, nearest_centroid_accuracy


def _load_design_script():
    """benchmarks/moving_shapes_design.py (not a package): its measurements, which the docs
    quote, are the ones these tests bound."""
    path = Path(__file__).resolve().parents[3] / "benchmarks" / "moving_shapes_design.py"
    spec = importlib.util.spec_from_file_location("moving_shapes_design", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DESIGN = _load_design_script()

# sha256 (first 16 hex digits) of the frames of videos 0-15 (12 frames, 32 px, seed 3) rendered
# by the default, flat and noisy styles at commit 42c39a1, the last one before the
# motion-only default; the classic styles must render them unchanged
CLASSIC_DIGESTS = {
    "classic": "cf0b1fd2f130b92c",
    "classic_flat": "57a400cb9d8e577f",
    "classic_noisy": "5bd98ccc312849ba",
}


# the same digests of the default styles until 2026-12-07, as docs/benchmarks.md's 2026-12-06
# results measured them (commit 58bfa1d); the pooled styles keep those videos
POOLED_DIGESTS = {
    "pooled": "8200afcaadcfdca6",
    "pooled_flat": "38c158a36f329115",
    "pooled_noisy": "530c3b63f2bf86a9",
}

# the shaded styles: the default of 2026-12-07, the videos the pooled default rendered with
# looks=1 and centre_jitter=0 (commit 7a6fcdb), those of
# benchmarks/results/mini_severe_motion_only_4min.* and mini_severe_default_4min_s0.*
SHADED_DIGESTS = {
    "shaded": "afda5ddf1b82f863",
    "shaded_flat": "f922faa463569a7b",
    "shaded_noisy": "706d9448a61ba7d4",
}

# the default styles since 2026-12-07's gravity (the shaded styles with object_light=0 and
# gravity=0.1), those of benchmarks/results/mini_severe_gravity_4min.*
DEFAULT_DIGESTS = {
    "default": "9efc2772056ddd08",
    "flat": "f2257eb238d6fd41",
    "noisy": "507e33d1ead10faf",
}


def digest(**dataset_args) -> str:
    """sha256 (first 16 hex digits) of the frames of videos 0-15 (12 frames, 32 px, seed 3)."""
    ds = MovingShapes(num_samples=16, num_frames=12, size=32, seed=3, **dataset_args)
    frames = np.stack([ds[i].video.read(range(12)) for i in range(16)])
    return hashlib.sha256(frames.tobytes()).hexdigest()[:16]


def brightness(frames: np.ndarray) -> np.ndarray:
    return frames.astype(np.float64).mean(axis=-1)


@pytest.mark.parametrize("style", sorted(CLASSIC_DIGESTS))
def test_classic_styles_render_the_former_default_bit_for_bit(style):
    assert digest(style=style) == CLASSIC_DIGESTS[style]


@pytest.mark.parametrize(
    ("style", "expected"),
    sorted({**DEFAULT_DIGESTS, **SHADED_DIGESTS, **POOLED_DIGESTS}.items()),
)
def test_default_shaded_and_pooled_styles_render_the_published_benchmarks_videos_bit_for_bit(
    style, expected
):
    assert digest(style=style) == expected


@pytest.mark.parametrize("style", ["default", "flat"])
def test_the_former_defaults_are_the_shaded_style_with_options(style):
    """The pooled style is the shaded one with 16 looks about the centre (mini_severe.py's
    --data style=shaded --data looks=16 --data centre_jitter=0.08 reproduces the 2026-12-06
    pooled tables), and today's default is the shaded one with the gravity instead of the
    shading."""
    shaded = "shaded" if style == "default" else f"shaded_{style}"
    pooled = "pooled" if style == "default" else f"pooled_{style}"
    assert digest(style=shaded, looks=16, centre_jitter=0.08) == POOLED_DIGESTS[pooled]
    assert digest(style=shaded, object_light=0, gravity=0.1) == DEFAULT_DIGESTS[style]


def test_no_global_up_and_no_global_arrow_of_time():
    """Averaged over videos, a frame is as bright at the top as at the bottom (and left and
    right), and the last frame as bright as the first; the classic style is neither."""

    def cues(style: str) -> tuple[float, float, float]:
        ds = MovingShapes(num_samples=96, num_frames=16, size=48, style=style)
        luma = np.stack([brightness(ds[i].video.read(range(16))) for i in range(96)])
        frames = luma.reshape(-1, 48, 48)  # a still frame: any moment of any video
        return (
            frames[:, :12].mean() - frames[:, -12:].mean(),  # top - bottom
            frames[:, :, :12].mean() - frames[:, :, -12:].mean(),  # left - right
            luma[:, 0].mean() - luma[:, -1].mean(),  # first - last frame
        )

    for style in ("default", "shaded"):
        up, side, time = cues(style)
        assert abs(up) < 3 and abs(side) < 3 and abs(time) < 1, style
    up, _, time = cues("classic")
    assert up > 15 and time > 20


def test_the_shaded_styles_up_is_the_shading_of_the_object_that_moves():
    """The moving object is brighter at its top than at its bottom in every video; its three
    static copies are lit from the other sides, so over all four objects no side is lit more."""
    kw = dict(num_samples=48, num_frames=8, size=64, style="shaded_flat")  # one ground colour
    moving, still = MovingShapes(**kw), MovingShapes(**kw, motion="frozen")
    unlit = MovingShapes(**kw, object_light=0)
    mover_dy, all_dy, all_dx, top_over_bottom = [], [], [], []
    for i in range(48):
        video = moving[i].video
        (x0, y0), side = video.top_left_T2[0], video.sprite_size
        box = np.s_[y0 : y0 + side, x0 : x0 + side]
        lit_hw = brightness(video.read([0])[0])[box]
        plain_hw = brightness(unlit[i].video.read([0])[0])[box]
        mover = plain_hw != lit_hw  # the object's pixels (shading changes only objects)
        third = side // 3
        top = lit_hw[:third][mover[:third]].sum() / plain_hw[:third][mover[:third]].sum()
        bottom = lit_hw[-third:][mover[-third:]].sum() / plain_hw[-third:][mover[-third:]].sum()
        top_over_bottom.append(top / bottom)  # (a decoy under the object blurs this a little)
        mover_dy.append(lit_hw[mover].mean() * (bottom - top) / side)
        frame_hw3 = still[i].video.read([0])[0]
        colours, counts = np.unique(frame_hw3.reshape(-1, 3), axis=0, return_counts=True)
        figure = (frame_hw3 != colours[counts.argmax()]).any(axis=-1)
        luma = brightness(frame_hw3)
        all_dy.append(np.diff(luma, axis=0)[figure[1:] & figure[:-1]].mean())
        all_dx.append(np.diff(luma, axis=1)[figure[:, 1:] & figure[:, :-1]].mean())
    assert np.median(top_over_bottom) > 1.5 and min(top_over_bottom) > 1.05  # 0.6: 1.65
    # a still frame (all four objects) has no up, no down and no side
    scale = abs(np.mean(mover_dy))
    assert abs(np.mean(all_dy)) < 0.3 * scale and abs(np.mean(all_dx)) < 0.3 * scale


def test_the_arrow_of_time_is_the_object_slowing_down():
    """Along its path (gravity, the same forwards and backwards, aside: tested below)."""
    ds = MovingShapes(num_samples=20, num_classes=4, num_frames=32, size=64, gravity=0)
    first = last = 0
    for i in range(20):
        step_T = np.abs(np.diff(ds[i].video.top_left_T2, axis=0)).sum(axis=1)
        assert step_T[:8].sum() > 2 * step_T[-8:].sum()  # (whole pixels: a slow object rounds)
        first, last = first + step_T[:8].sum(), last + step_T[-8:].sum()
    assert first > 3.5 * last  # 1.8 -> 0.2 x the mean speed: 1.6 / 0.4 in the first / last 8


def test_appearance_does_not_identify_a_video_but_its_motion_does():
    """Match each video's first clip to the second clip of the video nearest in appearance:
    its mean colour, or its still image (the median frame: background and decoys). With a look
    of its own per video (classic) that finds the video; from the pooled style's 16 looks it
    finds one of the videos that share the look, and where the object heads tells those apart.
    With the default's one look it finds a video at chance (1 in 320)."""
    classic = DESIGN.match_rates("classic", 320, dusk=0)  # (the dusk alone changes colours)
    assert classic["colour"] > 0.9 and classic["still"] > 0.5
    pooled = DESIGN.match_rates("pooled", 320)
    assert pooled["colour"] < 0.15 and pooled["still"] < 0.3  # 16 looks x 4 turns
    # where the object heads tells apart the videos that share a look
    assert pooled["still+heading"] > pooled["still"] + 0.15
    default = DESIGN.match_rates("default", 320)
    assert default["colour"] < 0.03 and default["still"] < 0.03  # measured: 0 and 3 of 320


def test_the_default_shows_one_look_in_four_turns_to_every_class():
    ds = MovingShapes(num_samples=160, num_classes=10, num_frames=2, size=32)
    videos = [ds[i].video for i in range(160)]
    assert {v.look for v in videos} == {0}
    turns = np.array([[v._turns, ds[i].label] for i, v in enumerate(videos)])
    assert all(len(set(turns[turns[:, 0] == k, 1])) >= 8 for k in range(4))
    backgrounds = {v._assets.background_hw3.tobytes() for v in videos}
    assert len(backgrounds) == 4  # one look, four quarter turns


def test_the_pooled_look_does_not_depend_on_the_label_or_the_dataset_seed():
    kw = dict(num_samples=640, num_classes=10, num_frames=2, size=32, style="pooled")
    ds0, ds1 = MovingShapes(**kw, seed=0), MovingShapes(**kw, seed=1)
    looks = np.array([[ds0[i].video.look, ds0[i].label] for i in range(640)])
    # every look meets (almost) every class: a look says nothing about the label
    per_look = [len(set(looks[looks[:, 0] == k, 1])) for k in range(16)]
    assert min(per_look) >= 8 and len(set(looks[:, 0])) == 16

    # the pool is the same for every seed: equal looks render equal backgrounds
    def look(video) -> tuple[int, int]:  # the pooled look and its turn
        return video.look, video._turns

    seen = {look(ds0[i].video): i for i in range(640)}
    b = next(i for i in range(640) if look(ds1[i].video) in seen)
    a = seen[look(ds1[b].video)]
    assert np.array_equal(ds0[a].video._assets.background_hw3, ds1[b].video._assets.background_hw3)
    assert ds0[a].video.sprite_size == ds1[b].video.sprite_size


def test_motion_ablations_remove_the_motion_and_nothing_else():
    kw = dict(num_samples=8, num_frames=16, size=32)
    moving, frozen, shuffled = (MovingShapes(**kw, motion=m) for m in MOTION_MODES)
    for i in range(8):
        frames = moving[i].video.read(range(16))
        still = frozen[i].video.read(range(16))
        assert (still == still[:1]).all()  # nothing moves...
        assert any(np.array_equal(still[0], f) for f in frames)  # ...at one moment of the video
        mixed = shuffled[i].video.read(range(16))
        digests = [[hashlib.sha256(f.tobytes()).hexdigest() for f in v] for v in (frames, mixed)]
        assert sorted(digests[0]) == sorted(digests[1]) and digests[0] != digests[1]
    assert "motion='frozen'" in repr(frozen) and "motion='shuffled'" in repr(shuffled[0].video)


MOTION_MODES = ("moving", "frozen", "shuffled")


def test_frozen_centre_stands_each_object_still_at_its_paths_centre():
    """The motion ablation that leaves no place of its own: with paths exactly about the frame's
    centre (centre_jitter 0), every frozen object of a class stands on the same spot."""
    kw = dict(num_samples=12, num_frames=16, size=64, num_classes=4)  # the 4 straight lines
    exact = MovingShapes(**kw, motion="frozen_centre")  # the default: centre_jitter 0
    for i in range(12):
        video = exact[i].video
        frames = video.read(range(16))
        assert (frames == frames[:1]).all()  # nothing moves
        # the line's centre: the middle of its first and last corner (less the fall there, which
        # is the same at both ends), the frame's centre
        middle = (video.top_left_T2[0] + video.top_left_T2[-1]) / 2 + video.sprite_size / 2
        middle[1] -= _fall(16, 0.1 * 64)[0]
        assert np.abs(middle - 32).max() <= 1.0  # (rounding)
        # and the object is drawn there (where it stands exactly): the frame differs from the
        # ground inside its square and nowhere else
        x, y = video._path_centres[0]
        assert np.abs([x, y] - (middle - video.sprite_size / 2)).max() <= 1.0
        side = video.sprite_size
        square = (slice(y, y + side), slice(x, x + side))
        assert (frames[0][square] != video._assets.background_hw3[square]).any()
        outside = frames[0].copy()
        outside[square] = video._assets.background_hw3[square]
        assert np.array_equal(outside, video._assets.background_hw3)
    jittered = MovingShapes(**kw, style="pooled")  # within 8% of the frame's centre
    videos = [jittered[i].video for i in range(12)]
    middles = [(v.top_left_T2[0] + v.top_left_T2[-1]) / 2 for v in videos]
    assert np.ptp(np.stack(middles), axis=0).max() > 2  # paths lie about, not on, the centre
    assert "frozen_centre" in repr(exact[0].video)


def test_centre_jitter_moves_the_paths_and_nothing_else():
    """(The decoys stand where a path could be: they move with the paths.)"""
    kw = dict(num_samples=6, num_frames=8, size=32)
    default, exact = MovingShapes(**kw, centre_jitter=0.08), MovingShapes(**kw)
    for i in range(6):
        a, b = default[i].video, exact[i].video
        assert a.motion == b.motion and a.look == b.look and a.sprite_size == b.sprite_size
        steps_a, steps_b = np.diff(a.top_left_T2, axis=0), np.diff(b.top_left_T2, axis=0)
        assert np.abs(steps_a - steps_b).max() <= 1  # the same motion, shifted (rounding)
    with pytest.raises(ValueError, match="centre_jitter must be a number in"):
        MovingShapes(num_samples=2, centre_jitter=0.7)


def test_pool_and_decoys_can_be_turned_off():
    own = MovingShapes(num_samples=8, looks=0, decoys=False)
    assert all(own[i].video.look is None for i in range(8))
    assert "looks=0" in repr(own) and "decoys=False" in repr(own[0].video)
    with pytest.raises(ValueError, match="decoys must be true, false or null"):
        MovingShapes(num_samples=2, decoys=1)
    with pytest.raises(ValueError, match="looks must be an integer"):
        MovingShapes(num_samples=2, looks=-1)
    with pytest.raises(ValueError, match="motion must be one of"):
        MovingShapes(num_samples=2, motion="still")


def test_class_is_the_motion_with_decoys_and_friction():
    ds = MovingShapes(num_samples=200, num_classes=4, num_frames=8, size=48)
    samples = [ds[i] for i in range(len(ds))]
    videos = [s.video.read(range(8)) for s in samples]
    labels_N = np.array([s.label for s in samples])
    motion_N2 = np.stack([motion_feature(v) for v in videos])
    assert nearest_centroid_accuracy(motion_N2, labels_N) > 0.9


def test_where_the_object_moves_does_not_tell_the_video():
    """Paths run about the frame's centre: the middle of every straight path is on it (give or
    take rounding), within 8% of the frame of it in the pooled style, where the classic videos
    place their paths anywhere."""

    def path_middles(style: str) -> np.ndarray:  # the 4 straight motions (and their friction)
        ds = MovingShapes(num_samples=72, num_classes=4, num_frames=32, size=64, style=style)
        fallen = _fall(32, 0.1 * 64)[0] if style == "default" else 0.0  # (the same at both ends)
        middles = []
        for i in range(72):
            video = ds[i].video
            ends_22 = video.top_left_T2[[0, -1]] + video.sprite_size / 2
            middles.append(ends_22.mean(axis=0) - [0, fallen])
        return np.stack(middles) - 32

    assert np.abs(path_middles("default")).max() <= 1
    assert np.abs(path_middles("shaded")).max() <= 1
    assert np.abs(path_middles("pooled")).max() <= 0.08 * 64 + 1
    assert np.abs(path_middles("classic")).max() > 12


def test_decoys_that_change_place_stand_where_the_moving_object_stands():
    """decoy_hold n: each decoy stands n frames in one place, then at a random moment of a path
    of one of the dataset's classes, from a phase of its own. Decoys that stay put stand in the
    one look's places, which a model learns (the copy anywhere else is the one that moves);
    these lie as far from the frame's centre as the moving object does, so a still frame does
    not say which copy moves."""
    ds = MovingShapes(num_samples=320, num_frames=32, size=64, decoy_hold=8)
    rng = np.random.default_rng(0)
    mover, decoys, phases = [], [], set()
    for i in range(320):
        video = ds[i].video
        half, t = video.sprite_size / 2, rng.integers(32)
        mover.append(np.linalg.norm(video.top_left_T2[t] + half - 32))
        assert len(video._decoy_corners) == 3
        for corners_T2 in video._decoy_corners:
            decoys.append(np.linalg.norm(corners_T2[t] + half - 32))
            moves = np.flatnonzero((np.diff(corners_T2, axis=0) != 0).any(axis=1)) + 1
            assert len(moves) >= 2 and (np.diff(moves) % 8 == 0).all()  # every 8 frames
            phases.add(int(moves[0]) % 8)
    assert phases == set(range(8))  # each decoy on its own schedule
    assert abs(np.mean(mover) - np.mean(decoys)) < 0.1 * np.mean(mover)  # measured: 10.8, 11.0


def test_decoys_that_change_place_are_drawn_on_the_frames_not_the_background():
    kw = dict(num_samples=4, num_frames=16, size=64, style="flat")
    placed, none = MovingShapes(**kw, decoy_hold=4), MovingShapes(**kw, decoys=False)
    for i in range(4):
        video = placed[i].video
        background = video._assets.background_hw3
        assert np.array_equal(background, none[i].video._assets.background_hw3)
        frames = video.read(range(16))
        for corners_T2 in video._decoy_corners:  # a decoy's square differs from the ground
            for t in (0, 15):
                x, y = corners_T2[t]
                square = np.s_[y : y + video.sprite_size, x : x + video.sprite_size]
                assert (frames[t][square] != background[square]).any()
        still = MovingShapes(**kw, decoy_hold=4, motion="frozen")[i].video.read(range(16))
        assert (still == still[:1]).all()  # frozen: the decoys stand still too
        # frozen at the centre: no place of their own, the decoys stand in the look's places
        centre = MovingShapes(**kw, decoy_hold=4, motion="frozen_centre")[i].video
        fixed = MovingShapes(**kw, decoy_hold=0)[i].video._assets.background_hw3
        assert np.array_equal(centre._assets.background_hw3, fixed) and not centre._assets.decoys
    with pytest.raises(ValueError, match="decoy_hold must be an integer"):
        MovingShapes(num_samples=2, decoy_hold=-1)


def test_decoys_that_change_place_do_not_identify_a_video():
    rates = DESIGN.match_rates("default", 160, decoy_hold=8)
    assert rates["colour"] < 0.05 and rates["still"] < 0.05


def test_gravity_bends_every_path_down_in_the_videos_own_time():
    """gravity g: the object is thrown, highest at the video's middle and g x frame size lower at
    its first and last frames, over the same path (the same x; y shifted by the fall)."""
    kw = dict(num_samples=40, num_frames=32, size=64)
    thrown, plain = MovingShapes(**kw, gravity=0.25), MovingShapes(**kw, gravity=0)
    t_T = np.linspace(0, 1, 32)
    fall_T = 16 * (2 * t_T - 1) ** 2
    for i in range(40):
        a, b = thrown[i].video, plain[i].video
        assert a.motion == b.motion and a.sprite_size == b.sprite_size
        shift_T2 = a.top_left_T2 - b.top_left_T2
        assert np.abs(shift_T2[:, 0]).max() == 0
        # the fall, plus one shift per video where the thrown path would leave the frame about
        # its centre (it then stands a little inwards), give or take two roundings
        assert np.ptp(shift_T2[:, 1] - fall_T) <= 2.0
        side = a.sprite_size  # and the thrown object stays in the frame
        assert a.top_left_T2.min() >= 0 and a.top_left_T2.max() <= 64 - side
    assert "gravity=0.0" in repr(plain[0].video)  # (the default's gravity: 0.1)
    with pytest.raises(ValueError, match="gravity must be a number in"):
        MovingShapes(num_samples=2, gravity=0.6)


def test_gravity_is_an_up_that_every_clip_shows_and_no_still_frame_does():
    """The default's gravity (0.1): in every class, a clip of 8 frames (as the CPU recipes sample
    them) shows the object accelerating downwards more than without gravity, the same played
    backwards (gravity has no arrow of time) and not sideways; where the object stands, over
    all frames, is as often above where it would stand without gravity as below, so a still
    frame shows no up."""
    kw = dict(num_samples=120, num_classes=10, num_frames=32, size=64)
    thrown, plain = MovingShapes(**kw), MovingShapes(**kw, gravity=0)
    gained_N2 = DESIGN.clip_accelerations(thrown) - DESIGN.clip_accelerations(
        plain
    )  # the same clips
    labels_N = np.repeat([thrown[i].label for i in range(120)], len(gained_N2) // 120)
    # 8 g size / 31^2 x 4 (2 frames a step) = 0.21 px per step^2, in every class
    assert 0.15 < gained_N2[:, 1].mean() < 0.3 and abs(gained_N2[:, 0].mean()) < 0.03
    assert min(gained_N2[labels_N == c, 1].mean() for c in range(10)) > 0.15
    backwards_T2 = thrown[0].video.top_left_T2[::-1].astype(float)
    forwards_T2 = thrown[0].video.top_left_T2.astype(float)
    plain_T2 = plain[0].video.top_left_T2.astype(float)
    fall = [np.diff(v, n=2, axis=0)[:, 1].mean() for v in (forwards_T2, backwards_T2)]
    without = [np.diff(v, n=2, axis=0)[:, 1].mean() for v in (plain_T2, plain_T2[::-1])]
    assert fall[0] - without[0] > 0 and fall[1] - without[1] > 0  # backwards it still falls
    heights = np.concatenate(
        [thrown[i].video.top_left_T2[:, 1] - plain[i].video.top_left_T2[:, 1] for i in range(120)]
    )
    assert abs(heights.mean()) < 0.5  # zero mean: no skew in where a still object stands
