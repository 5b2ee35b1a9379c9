"""The numbers docs/synthetic-data.md quotes for the default moving-shapes design.

The tests (tests/plugins/datasets/test_moving_shapes_design.py) assert bounds on these
properties; this script prints the measured values, so the doc's numbers can be rerun:

    python benchmarks/moving_shapes_design.py

- gravity: the object's downward acceleration that a clip of 8 frames 2 apart shows (as the CPU
  recipes sample them), in pixels per step squared, with and without the default's gravity,
  the same played backwards; and how far the object stands from where it would without
  gravity, averaged over every frame (a still frame's up: none if 0);
- shading (the shaded styles' up): inside the moving object, the top third's brightness over
  the bottom third's (median over videos, solid colours so the ground is one colour);
- slowing: the distance the object covers in its first 8 frames over its last 8 (along its path:
  without gravity);
- matching: each video's first clip (frames 0-7) matched to the second clip (frames 16-23)
  nearest by mean colour, by still image (the median frame), and by still image plus the
  direction the object heads; the fraction that finds its own video.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

try:
    from vssl_datasets.moving_shapes import MovingShapes
except ImportError:  # running from a checkout without `pip install -e .`
    root = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(root), str(root / "plugins")]
    from vssl_datasets.moving_shapes import MovingShapes


def luma(frames: np.ndarray) -> np.ndarray:
    return frames.astype(np.float64).mean(axis=-1)


def _gain(lit_hw: np.ndarray, plain_hw: np.ndarray) -> float:
    """Brightness with the object's shading over without, on the object's pixels (the shading
    changes only objects)."""
    on_object = plain_hw != lit_hw
    return lit_hw[on_object].sum() / plain_hw[on_object].sum()


def clip_accelerations(ds: MovingShapes, frames: int = 8, stride: int = 2) -> np.ndarray:
    """The object's mean acceleration (x, y; y down) in pixels per step squared over every clip
    of ``frames`` frames ``stride`` apart: one row per (video, clip start)."""
    rows = []
    for i in range(len(ds)):
        corner_T2 = ds[i].video.top_left_T2.astype(np.float64)
        for start in range(0, ds.num_frames - (frames - 1) * stride, 2):
            clip_T2 = corner_T2[start : start + frames * stride : stride]
            rows.append(np.diff(clip_T2, n=2, axis=0).mean(axis=0))
    return np.stack(rows)


def gravity_numbers(num_videos: int) -> dict[str, float]:
    """What a clip and a still frame show of the default's gravity (10 classes, 64 px)."""
    kw = dict(num_samples=num_videos, num_classes=10, num_frames=32, size=64)
    thrown, plain = MovingShapes(**kw), MovingShapes(**kw, gravity=0)
    down = clip_accelerations(thrown)
    backwards = [np.diff(thrown[i].video.top_left_T2[::-1], n=2, axis=0)[:, 1].mean()
                 for i in range(num_videos)]  # fmt: skip
    heights = [thrown[i].video.top_left_T2[:, 1] - plain[i].video.top_left_T2[:, 1]
               for i in range(num_videos)]  # fmt: skip
    return {
        "down": float(down[:, 1].mean()),
        "sideways": float(down[:, 0].mean()),
        "down_without": float(clip_accelerations(plain)[:, 1].mean()),
        "backwards": float(np.mean(backwards)) * 4,  # per step of 2 frames, as the clips
        "height": float(np.concatenate(heights).mean()),
    }


def shading_ratio(num_videos: int) -> float:
    kw = dict(num_samples=num_videos, num_frames=8, size=64, style="shaded_flat")
    lit, unlit = MovingShapes(**kw), MovingShapes(**kw, object_light=0)
    ratios = []
    for i in range(num_videos):
        video = lit[i].video
        (x0, y0), side = video.top_left_T2[0], video.sprite_size
        box = np.s_[y0 : y0 + side, x0 : x0 + side]
        lit_hw, plain_hw = luma(video.read([0])[0])[box], luma(unlit[i].video.read([0])[0])[box]
        third = side // 3
        top = _gain(lit_hw[:third], plain_hw[:third])
        ratios.append(top / _gain(lit_hw[-third:], plain_hw[-third:]))
    return float(np.median(ratios))


def slowing_ratio(num_videos: int) -> float:
    ds = MovingShapes(num_samples=num_videos, num_classes=4, num_frames=32, size=64, gravity=0)
    steps = [
        np.abs(np.diff(ds[i].video.top_left_T2, axis=0)).sum(axis=1) for i in range(num_videos)
    ]
    return float(sum(s[:8].sum() for s in steps) / sum(s[-8:].sum() for s in steps))


def heading(frames_THW3: np.ndarray) -> np.ndarray:
    """The unit direction from the first to the last position of the changing pixels."""
    diff_THW = np.abs(np.diff(frames_THW3.astype(np.int16), axis=0)).max(axis=-1)
    points = [np.argwhere(d > 24)[:, ::-1].mean(0) for d in diff_THW if (d > 24).any()]
    if len(points) < 2:
        return np.zeros(2)
    step = points[-1] - points[0]
    return step / (np.linalg.norm(step) + 1e-6)


def match_rates(style: str, num_videos: int, **dataset_args) -> dict[str, float]:
    ds = MovingShapes(
        num_samples=num_videos, num_classes=10, num_frames=32, size=32, style=style, **dataset_args
    )
    videos = [ds[i].video for i in range(num_videos)]
    first = [v.read(range(0, 8)) for v in videos]
    second = [v.read(range(16, 24)) for v in videos]

    def matched(a_N: np.ndarray, b_N: np.ndarray) -> float:
        d_NN = ((a_N[:, None] - b_N[None]) ** 2).sum(-1)
        return float((d_NN.argmin(1) == np.arange(len(a_N))).mean())

    def colour(clips):
        return np.stack([c.reshape(-1, 3).mean(0) for c in clips])

    def still(clips):
        return np.stack([np.median(c, axis=0).reshape(-1) for c in clips]).astype(np.float64)

    def still_and_heading(clips):
        return np.concatenate([still(clips), 1000 * np.stack([heading(c) for c in clips])], 1)

    return {
        "colour": matched(colour(first), colour(second)),
        "still": matched(still(first), still(second)),
        "still+heading": matched(still_and_heading(first), still_and_heading(second)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=320, help="videos matched per style")
    args = parser.parse_args(argv)
    g = gravity_numbers(120)
    print(
        f"gravity, a clip's acceleration (px/step^2): down {g['down']:.2f} (without gravity "
        f"{g['down_without']:.2f}, played backwards {g['backwards']:.2f}), sideways "
        f"{g['sideways']:.2f}; a still frame's object, below where it would be: "
        f"{g['height']:.2f} px"
    )
    print(
        "shading (shaded style), top third / bottom third of the moving object: "
        f"{shading_ratio(48):.2f}"
    )
    print(f"slowing, distance in the first 8 frames / last 8: {slowing_ratio(20):.2f}")
    print(f"clips matched to their own video, of {args.videos}:")
    print("| style | mean colour | still image | still image + heading |")
    print("|---|---|---|---|")
    for style, extra in (
        ("default", {}),
        ("shaded", {}),
        ("pooled", {}),
        ("classic", {"dusk": 0}),
    ):
        rates = match_rates(style, args.videos, **extra)
        cells = " | ".join(f"{100 * rates[k]:.0f}%" for k in ("colour", "still", "still+heading"))
        print(f"| {style}{' (no dusk)' if extra else ''} | {cells} |")


if __name__ == "__main__":
    main()
