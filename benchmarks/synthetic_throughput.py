"""Single-core throughput of the moving-shapes generator, the data source every smoke run uses.

Goal: at least 500 clips/s of 16x112x112 on one core, so synthetic data never limits training.
Each timed clip comes from a fresh index (a new video object), so nothing cached per video helps.

    python benchmarks/synthetic_throughput.py --clips 2000 --frames 16 --size 112
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/torch start their thread pools
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

try:
    from vssl_datasets.moving_shapes import STYLES, MovingShapes
except ImportError:  # running from a checkout without `pip install -e .`
    root = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(root), str(root / "plugins")]
    from vssl_datasets.moving_shapes import STYLES, MovingShapes

GOAL_CLIPS_PER_S = 500.0
GOAL_SHAPE = (16, 112)  # (frames, size) the goal is stated for


def pin_one_core() -> str:
    """Run on one core with one intra-op thread, as a single data-loader worker would."""
    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"core {core}"
    return "one thread (affinity not supported here)"


def time_clips(dataset: MovingShapes, first: int, clips: int, frame_indices: range) -> float:
    """Seconds to build and fully read ``clips`` videos at indices first, first + 1, ..."""
    start = time.perf_counter()
    for i in range(first, first + clips):
        dataset[i].video.read(frame_indices)
    return time.perf_counter() - start


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2000, help="clips per timed round")
    parser.add_argument("--frames", type=int, default=16, help="frames read per clip")
    parser.add_argument("--stride", type=int, default=2, help="step between read frames")
    parser.add_argument("--size", type=int, default=112, help="frame height and width")
    parser.add_argument("--style", default="default", choices=STYLES)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds; the median counts")
    parser.add_argument("--warmup", type=int, default=200, help="untimed clips first")
    args = parser.parse_args(argv)
    for name in ("clips", "frames", "stride", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    where = pin_one_core()
    total = args.warmup + args.rounds * args.clips
    dataset = MovingShapes(
        num_samples=total, num_frames=args.frames * args.stride, size=args.size, style=args.style
    )
    frame_indices = range(0, args.frames * args.stride, args.stride)
    time_clips(dataset, 0, args.warmup, frame_indices)
    seconds = [
        time_clips(dataset, args.warmup + r * args.clips, args.clips, frame_indices)
        for r in range(args.rounds)
    ]
    clips_per_s = args.clips / statistics.median(seconds)
    print(
        f"moving_shapes style={args.style} clip={args.frames}x{args.size}x{args.size} "
        f"(stride {args.stride}), {args.rounds} rounds x {args.clips} clips on {where}"
    )
    print(
        f"clips/s: {clips_per_s:.0f}  (rounds: {', '.join(f'{args.clips / s:.0f}' for s in seconds)})"
    )
    print(f"frames/s: {clips_per_s * args.frames:.0f}")
    if (args.frames, args.size) != GOAL_SHAPE:
        print(f"goal ({GOAL_CLIPS_PER_S:.0f} clips/s) is stated for 16x112x112 only: not judged")
        return 0
    passed = clips_per_s >= GOAL_CLIPS_PER_S
    verdict = "PASS" if passed else "FAIL"
    print(f"{verdict}: {clips_per_s:.0f} clips/s vs goal {GOAL_CLIPS_PER_S:.0f} clips/s")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
