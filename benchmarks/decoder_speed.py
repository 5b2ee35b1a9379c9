"""Decoders alone, each set to one thread: how fast PyAV, decord and frame folders read frames, row by row as
the "Decoders alone" table of docs/performance.md states them.

Test data, written once into ``--data`` and reused: moving-shapes videos of 10 s at 25 fps,
128x128, as H.264 .mp4 (x264, crf 18) with x264's default key-frame interval (250) and again
with a key frame every 16 frames, and each as a folder of JPEG frames (``img_00001.jpg``...,
the ``frames`` decoder's default layout). Every frame carries its own index drawn into its top
rows (``stamp_frame_index``), so the untimed warm-up round checks that every timed read returned
exactly the frames it asked for.

Rows (a clip is 16 frames at stride 4 from a random start, the same starts for every decoder):

- PyAV, raw library: sequential decode + RGB conversion of a whole video (open not timed);
  ``av.open`` of a file;
- vssl's ``pyav`` decoder: open + one clip, key frame every 250 frames and every 16;
- vssl's ``decord`` decoder: read all frames (open not timed); open + one clip;
- vssl's ``frames`` decoder: open + one clip from a JPEG folder.

Every round runs every row once on every video (interleaved, so machine noise hits all rows
alike); a round's rate is its frames over its total time, a round's time the mean per read. The
report gives the median and [min, max] over rounds, wall clock (process CPU time alongside, and
their ratio: the cores a row kept busy, which shows a decoder running more threads than it was
set to), and the per-round ratios decord vs PyAV.

    python benchmarks/decoder_speed.py                      # 10 videos x 9 rounds: ~35 s
    python benchmarks/decoder_speed.py --json out.json      # also write the numbers
    python benchmarks/decoder_speed.py --small              # 2 videos of 3 s, 2 rounds (tests)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import describe  # noqa: E402  (also puts a checkout's vssl on sys.path)

from vssl_core.build import build  # noqa: E402
from vssl_core.data.video_writer import (  # noqa: E402
    read_frame_index,
    stamp_frame_index,
    write_frame_folder,
    write_video,
)
from vssl_core.plugins import load_plugins  # noqa: E402

FPS, SIZE = 25.0, 128
CLIP_FRAMES, CLIP_STRIDE = 16, 4
SHORT_GOP = 16
FRAME_PATTERN = "img_{:05d}.jpg"  # the frames decoder's default
SETS = ("keyint250", f"keyint{SHORT_GOP}", "frames")

# key -> (label as in docs/performance.md, unit); the order of the report
ROWS = {
    "pyav_sequential": ("PyAV: decode + RGB conversion, sequential (open not timed)", "frames/s"),
    "pyav_open": ("PyAV: open a file (av.open)", "ms"),
    "pyav_clip_keyint250": (
        "PyAV (vssl pyav): open + one 16-frame clip at stride 4 from a random start, key frame "
        "every 250 frames",
        "ms",
    ),
    "pyav_clip_keyint16": ("the same, key frame every 16 frames", "ms"),
    "decord_all": ("decord (vssl decord): read all frames (open not timed)", "frames/s"),
    "decord_clip": (
        "decord (vssl decord): open + one random 16-frame clip (stride 4, key frame every 250)",
        "ms",
    ),
    "frames_clip": ("`frames` decoder: JPEG folder, open + 16-frame reads (stride 4)", "frames/s"),
}
DECORD_ROWS = ("decord_all", "decord_clip")


# ---------------------------------------------------------------------------------- test data


def make_data(folder: Path, num_videos: int, seconds: float) -> dict[str, list[str]]:
    """Write the three sets (once; a manifest of the settings makes later runs reuse them)."""
    from vssl_datasets.moving_shapes import MovingShapes

    manifest = folder / "manifest.json"
    wanted = {"videos": num_videos, "seconds": seconds, "fps": FPS, "size": SIZE, "stamped": True}
    if manifest.exists() and json.loads(manifest.read_text())["settings"] == wanted:
        return json.loads(manifest.read_text())["paths"]
    num_frames = round(seconds * FPS)
    if num_frames < (CLIP_FRAMES - 1) * CLIP_STRIDE + 1:
        raise SystemExit(f"--seconds {seconds:g}: too short for a 16-frame clip at stride 4")
    for name in SETS:  # stale frame files would change a folder's frame count
        shutil.rmtree(folder / name, ignore_errors=True)
    shapes = MovingShapes(num_videos, num_classes=10, num_frames=num_frames, size=SIZE, fps=FPS)
    paths: dict[str, list[str]] = {name: [] for name in SETS}
    start = time.perf_counter()
    for i in range(num_videos):
        frames_THWC = stamp_frame_index(shapes[i].video.read(range(num_frames)))
        stem = f"video_{i:03d}"
        for name, gop in (("keyint250", None), (f"keyint{SHORT_GOP}", SHORT_GOP)):
            paths[name].append(str(folder / name / f"{stem}.mp4"))
            write_video(paths[name][-1], frames_THWC, FPS, gop=gop)  # gop None: x264's 250
        paths["frames"].append(str(folder / "frames" / stem))
        write_frame_folder(paths["frames"][-1], frames_THWC, FRAME_PATTERN)
    manifest.write_text(json.dumps({"settings": wanted, "paths": paths}))
    print(f"  wrote {num_videos} videos x 3 sets in {time.perf_counter() - start:.1f} s")
    return paths


# ---------------------------------------------------------------------------------- timed reads


@dataclass
class Sample:
    """One timed operation: what it read (None for an open) and its wall and CPU seconds."""

    frames: np.ndarray | list[np.ndarray] | None
    wall: float
    cpu: float


class _Clock:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def clip_indices(start: int) -> np.ndarray:
    return start + CLIP_STRIDE * np.arange(CLIP_FRAMES)


def pyav_sequential(path: str) -> Sample:
    """Raw PyAV: every frame in order, converted to RGB as vssl's pyav decoder converts it."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1  # PyAV's default, 0, lets FFmpeg pick
        with _Clock() as clock:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return Sample(frames, clock.wall, clock.cpu)


def pyav_open(path: str) -> Sample:
    """Raw PyAV: ``av.open`` reads the header and probes the streams; closing is not timed."""
    with _Clock() as clock:
        container = av.open(path)
    container.close()
    return Sample(None, clock.wall, clock.cpu)


def open_and_read(decoder, path: str, indices) -> Sample:
    """What a loader does per sample: open the video with a vssl decoder, read the frames. The
    video is released after the clock stops, for every decoder alike."""
    with _Clock() as clock:
        video = decoder.open(path)
        frames = video.read(indices)
    if hasattr(video, "close"):
        video.close()
    del video
    return Sample(frames, clock.wall, clock.cpu)


def read_all(decoder, path: str) -> Sample:
    """Open (not timed), then one read of every frame: the whole-video counterpart of
    :func:`pyav_sequential` for a vssl decoder."""
    video = decoder.open(path)
    with _Clock() as clock:
        frames = video.read(range(video.num_frames))
    del video
    return Sample(frames, clock.wall, clock.cpu)


def check_frames(row: str, path: str, frames, expected) -> None:
    """Every frame must carry the index that was asked for (stamped when the data was written)."""
    got = [read_frame_index(f) for f in frames]
    if got != list(expected):
        raise SystemExit(f"{row}: {path} returned frames {got}, asked for {list(expected)}")


# ---------------------------------------------------------------------------------- rounds


def build_decoders(registry, with_decord: bool) -> tuple[dict, str | None]:
    """vssl's decoders through the registry, each on one thread where it has the option. decord
    is built last: importing it loads its own FFmpeg (see tests/plugins/decoders)."""
    decoders = {
        "pyav": build(registry, "decoder", {"name": "pyav", "threads": 1}),
        "frames": build(
            registry, "decoder", {"name": "frames", "pattern": FRAME_PATTERN, "source_fps": FPS}
        ),
    }
    skipped = "--no-decord" if not with_decord else None
    if with_decord:
        try:
            decoders["decord"] = build(registry, "decoder", {"name": "decord", "threads": 1})
        except ImportError as exc:
            skipped = str(exc)
    return decoders, skipped


def run_round(paths: dict, decoders: dict, starts: np.ndarray, opens: int, check: bool) -> dict:
    """Every row once on every video; per row the round's (wall, cpu) totals and its count
    (frames for a rate row, operations for a time row)."""
    totals = {row: [0.0, 0.0, 0] for row in ROWS}

    def add(row: str, sample: Sample, count: int, path: str, expected=None) -> None:
        totals[row][0] += sample.wall
        totals[row][1] += sample.cpu
        totals[row][2] += count
        if check and expected is not None:
            check_frames(row, path, sample.frames, expected)

    for v, start in enumerate(starts.tolist()):
        mp4, short, folder = (paths[name][v] for name in SETS)
        indices = clip_indices(start)
        seq = pyav_sequential(mp4)
        add("pyav_sequential", seq, len(seq.frames), mp4, range(len(seq.frames)))
        for _ in range(opens):
            add("pyav_open", pyav_open(mp4), 1, mp4)
        add("pyav_clip_keyint250", open_and_read(decoders["pyav"], mp4, indices), 1, mp4, indices)
        clip = open_and_read(decoders["pyav"], short, indices)
        add("pyav_clip_keyint16", clip, 1, short, indices)
        if "decord" in decoders:
            whole = read_all(decoders["decord"], mp4)
            add("decord_all", whole, len(whole.frames), mp4, range(len(whole.frames)))
            clip = open_and_read(decoders["decord"], mp4, indices)
            add("decord_clip", clip, 1, mp4, indices)
        clip = open_and_read(decoders["frames"], folder, indices)
        add("frames_clip", clip, CLIP_FRAMES, folder, indices)
    out = {}
    for row, (wall, cpu, count) in totals.items():
        if count:
            rate = ROWS[row][1] == "frames/s"
            out[row] = tuple(count / s if rate else 1e3 * s / count for s in (wall, cpu))
    return out


def mjpeg_threads(folder: str) -> int:
    """The thread count FFmpeg settled on for one JPEG, opened as the frames decoder opens it
    (it has no thread option and leaves PyAV's default, 0: FFmpeg picks)."""
    with av.open(os.path.join(folder, FRAME_PATTERN.format(1))) as container:
        stream = container.streams.video[0]
        next(container.decode(stream))
        return stream.codec_context.thread_count


# ---------------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data",
        type=Path,
        default=Path("/tmp/vssl_bench_decoders"),
        help="test-data folder (written once, then reused)",
    )
    p.add_argument("--videos", type=int, default=10, help="videos per set")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=9, help="timed rounds (after 1 warm-up round)")
    p.add_argument("--opens", type=int, default=10, help="av.open calls per video and round")
    p.add_argument("--seed", type=int, default=0, help="seeds the clips' random starts")
    p.add_argument("--no-decord", action="store_true", help="skip the decord rows")
    p.add_argument("--small", action="store_true", help="2 videos of 3 s, 2 rounds: a smoke run")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    if args.small:
        args.videos, args.seconds, args.rounds, args.opens = 2, 3.0, 2, 3
        if args.data == p.get_default("data"):
            args.data = Path("/tmp/vssl_bench_decoders_small")
    for name in ("videos", "rounds", "opens"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)  # as in a loader worker; the decoders' own settings are below
    print(
        f"test data in {args.data}: {args.videos} videos of {args.seconds:g} s at {FPS:g} fps, "
        f"{SIZE}x{SIZE}, as H.264 .mp4 (x264, crf 18) with a key frame every 250 and every "
        f"{SHORT_GOP} frames, and as JPEG folders"
    )
    # written before decord is imported: its FFmpeg build breaks some of PyAV's encoders
    paths = make_data(args.data, args.videos, args.seconds)
    decoders, decord_skipped = build_decoders(load_plugins().registry, not args.no_decord)
    num_frames = round(args.seconds * FPS)
    span = (CLIP_FRAMES - 1) * CLIP_STRIDE + 1
    rng = np.random.default_rng(args.seed)
    starts = rng.integers(0, num_frames - span + 1, size=(args.rounds + 1, args.videos))
    threads = {
        "torch": torch.get_num_threads(),
        "raw PyAV codec thread_count": 1,
        "vssl pyav threads": decoders["pyav"].threads,
        "vssl decord threads": decoders["decord"].threads if "decord" in decoders else None,
        "frames decoder (no option; FFmpeg's choice for a JPEG)": mjpeg_threads(paths["frames"][0]),
    }
    versions = {"torch": torch.__version__, "av": av.__version__}
    versions["ffmpeg libavcodec (PyAV)"] = ".".join(map(str, av.library_versions["libavcodec"]))
    if "decord" in decoders:
        import decord

        versions["decord"] = decord.__version__
    print("threads: " + "; ".join(f"{k} {v}" for k, v in threads.items() if v is not None))
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    if decord_skipped:
        print(f"decord rows: skipped ({decord_skipped})")
    load_before = os.getloadavg()
    # round 0: files into the page cache, libraries initialised, every read's frames checked
    run_round(paths, decoders, starts[0], 1, check=True)
    rounds = []
    for r in range(1, args.rounds + 1):
        rounds.append(run_round(paths, decoders, starts[r], args.opens, check=False))
        print(f"  round {r}/{args.rounds} done", flush=True)
    load_after = os.getloadavg()
    print(
        f"{args.videos} videos x {args.rounds} rounds (+1 untimed warm-up round that checked "
        f"every frame's index); {len(os.sched_getaffinity(0))} CPUs, load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    # cores busy = CPU time / wall time: below 1 the process waited for a core (other jobs on a
    # shared machine); above 1 a decoder ran more threads than it was set to (decord with
    # num_threads=1 still decodes on a thread of its own, beside the caller's)
    print("median [min, max] over rounds, wall clock; process CPU time and cores busy: medians")
    print("| operation | time or rate | CPU time | cores busy (CPU/wall) |")
    print("|---|---|---|---|")
    results = {}
    for row, (label, unit) in ROWS.items():
        if row not in rounds[0]:
            results[row] = {"label": label, "unit": unit, "skipped": decord_skipped}
            continue
        wall, cpu = ([r[row][i] for r in rounds] for i in (0, 1))
        rate = unit == "frames/s"
        fmt = ",.0f" if rate else ".2f"
        busy = [w / c if rate else c / w for w, c in zip(wall, cpu, strict=True)]
        print(
            f"| {label} | {describe(wall, fmt)} {unit} | {np.median(cpu):{fmt}} {unit} "
            f"| {np.median(busy):.2f} |"
        )
        results[row] = {"label": label, "unit": unit, "wall": wall, "cpu": cpu, "busy": busy}
    ratios = {}
    if "decord" in decoders:
        # per round, so both sides of a ratio saw the same load
        pairs = {
            "whole video: decord frames/s / PyAV sequential frames/s": (
                "decord_all",
                "pyav_sequential",
            ),
            "one random clip: decord ms / PyAV ms (key frame every 250)": (
                "decord_clip",
                "pyav_clip_keyint250",
            ),
        }
        print("decord vs PyAV, per round: wall clock median [min, max]; CPU time median")
        for name, (a, b) in pairs.items():
            wall, cpu = ([r[a][i] / r[b][i] for r in rounds] for i in (0, 1))
            ratios[name] = {"wall": wall, "cpu": cpu}
            print(f"  {name}: {describe(wall, '.2f')}; CPU {np.median(cpu):.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "args": vars(args) | {"data": str(args.data), "json": str(args.json)},
            "threads": threads,
            "versions": versions,
            "load_average": {"before": load_before, "after": load_after},
            "rows": results,
            "ratios": ratios,
        }
        args.json.write_text(json.dumps(payload, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
