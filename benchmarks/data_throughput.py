"""Clips/s that each data path delivers to a training loop: decord, PyAV and ffcv, side by side.

One synthetic dataset on disk (moving shapes written as H.264 .mp4, by default 1,000 videos of
10 s at 25 fps, 170x128) is read three ways, each with 2 workers, as 16x112x112 clips (stride
4, multi-scale crop + flip, batches of 16):

- decord: VideoMAE's loader (a fresh VideoReader per video, ``get_batch`` of the sampled
  indices) as vssl's ``decord`` decoder, in vssl's torch path (ClipDataset + DataLoader);
- pyav: vssl's default ``pyav`` decoder in the same torch path;
- ffcv: the same videos packed by ``vssl data pack`` (JPEG frames, short side 128), read by the
  ``ffcv_video`` loader (2 numba threads).

The paths are measured in interleaved rounds (each round: drain what a loader prefetched while
the others ran, then time ``--batches`` batches), so machine noise hits all of them alike; the
report gives each rate's median and range and the per-round ffcv/decord ratio. Goal: ffcv at
least 5x decord.

    python benchmarks/data_throughput.py --small          # 48 videos of 4 s: about 2 minutes
    python benchmarks/data_throughput.py --data /tmp/vssl_bench_data   # the full comparison

The dataset and the .beton are written once into ``--data`` and reused by later runs.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per loader worker, as in training

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
try:
    import vssl_core  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import describe  # noqa: E402

from vssl_core.data.clips import ClipDataset  # noqa: E402
from vssl_core.data.loader import build_loader  # noqa: E402
from vssl_core.data.sampler import BatchLayout, StepBatchSampler  # noqa: E402
from vssl_core.data.video_writer import write_video  # noqa: E402
from vssl_core.interfaces import VideoSample, ViewSpec  # noqa: E402

FPS = 25.0
HEIGHT, WIDTH = 128, 170  # short side 128, as the R(2+1)D / 112-crop recipes store frames
VIEWS = ViewSpec(frames=16, crop_size=112, stride=4, augmentation="multiscale_crop", flip=True)
GOAL_RATIO = 5.0
SEED = 0


# ---------------------------------------------------------------------------------- dataset


class VideoFiles:
    """A VideoDataset over .mp4 files: a fresh decoder video per sample, as VideoMAE's loader
    opens a fresh VideoReader per ``__getitem__``."""

    def __init__(self, paths: list[str], labels: list[int], decoder, num_classes: int) -> None:
        self.paths, self.labels, self.decoder = paths, labels, decoder
        self.num_classes = num_classes

    def __len__(self) -> int:
        return len(self.paths)

    def video_path(self, index: int) -> str:
        return self.paths[index]

    def __getitem__(self, index: int) -> VideoSample:
        video = self.decoder.open(self.paths[index])
        return VideoSample(video, self.labels[index], index, Path(self.paths[index]).stem)


def _write_one(job: tuple) -> None:
    from vssl_datasets.moving_shapes import MovingShapes

    path, index, num_videos, num_frames, gop = job
    shapes = MovingShapes(num_videos, num_classes=10, num_frames=num_frames, size=WIDTH, fps=FPS)
    frames = shapes[index].video.read(range(num_frames))
    top = (WIDTH - HEIGHT) // 2
    write_video(path, np.ascontiguousarray(frames[:, top : top + HEIGHT]), FPS, gop=gop)


def make_dataset(
    folder: Path, num_videos: int, seconds: float, gop: int | None, workers: int
) -> dict:
    """Write the .mp4 files (once; a manifest makes later runs reuse them)."""
    manifest = folder / "manifest.json"
    wanted = {"num_videos": num_videos, "seconds": seconds, "gop": gop, "size": [HEIGHT, WIDTH]}
    if manifest.exists() and json.loads(manifest.read_text())["settings"] == wanted:
        return json.loads(manifest.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    num_frames = round(seconds * FPS)
    paths = [str(folder / f"video_{i:05d}.mp4") for i in range(num_videos)]
    jobs = [(p, i, num_videos, num_frames, gop) for i, p in enumerate(paths)]
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for done, _ in enumerate(pool.imap_unordered(_write_one, jobs), 1):
            if done % 50 == 0 or done == num_videos:
                print(f"  wrote {done}/{num_videos} videos", file=sys.stderr)
    info = {
        "settings": wanted,
        "paths": paths,
        "labels": [i % 10 for i in range(num_videos)],
        "mp4_bytes": sum(os.path.getsize(p) for p in paths),
        "write_s": time.perf_counter() - start,
    }
    manifest.write_text(json.dumps(info))
    return info


def make_beton(folder: Path, info: dict, workers: int) -> Path:
    """Pack the videos with `vssl data pack`'s code (once)."""
    from vssl_decoders.pyav import PyAVDecoder
    from vssl_ffcv.pack import pack_dataset

    out = folder / "videos_128.beton"
    stamp = folder / "videos_128.beton.settings"
    if out.exists() and stamp.exists() and stamp.read_text() == json.dumps(info["settings"]):
        return out
    files = VideoFiles(info["paths"], info["labels"], PyAVDecoder(), 10)
    report = pack_dataset(files, out, short_side=HEIGHT, quality=90, workers=workers)
    if report.failed:
        raise RuntimeError(
            f"{len(report.failed)} synthetic videos failed to decode: {report.failed[:3]}"
        )
    stamp.write_text(json.dumps(info["settings"]))
    print(f"  packed in {report.seconds:.1f} s", file=sys.stderr)
    return out


# ---------------------------------------------------------------------------------- loaders


def endless_sampler(num_samples: int, batch: int, repeats: int = 1) -> StepBatchSampler:
    layout = BatchLayout.from_recipe(batch, batch, 1)
    return StepBatchSampler(num_samples, layout, 0, SEED, 0, 10**7, repeats=repeats)


def torch_loader(info: dict, decoder, batch: int, workers: int, repeats: int = 1):
    """vssl's torch loading path; with ``repeats`` k each decoded video gives k clips of the
    batch (data.repeats), so a batch decodes batch / k videos."""
    files = VideoFiles(info["paths"], info["labels"], decoder, 10)
    clips = ClipDataset(files, VIEWS, SEED, repeats=repeats)
    sampler = endless_sampler(len(files), batch, repeats)
    return build_loader(clips, sampler, workers, False, True, 2)


def ffcv_loader(beton: Path, num_videos: int, batch: int, workers: int):
    from vssl_ffcv.dataset import FfcvVideoDataset

    dataset = FfcvVideoDataset(str(beton))
    return dataset.make_loader(VIEWS, endless_sampler(num_videos, batch), SEED, workers)


class Timed:
    """A running loader: each round drains what it prefetched, then times ``batches`` batches."""

    def __init__(self, name: str, loader, drain: int) -> None:
        self.name, self.iterator, self.drain = name, iter(loader), drain
        self.rates: list[float] = []

    def round(self, batches: int) -> float:
        for _ in range(self.drain):  # made while the other loaders were timed: not this round's
            next(self.iterator)
        start, clips = time.perf_counter(), 0
        for _ in range(batches):
            batch = next(self.iterator)
            clips += batch.size
            assert batch.clips[0].shape[1:] == (3, 16, 112, 112), batch.clips[0].shape
        rate = clips / (time.perf_counter() - start)
        self.rates.append(rate)
        return rate


# ---------------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data",
        type=Path,
        default=Path("/tmp/vssl_bench_data"),
        help="dataset folder (written once, then reused)",
    )
    p.add_argument("--videos", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument(
        "--gop",
        type=int,
        default=None,
        help="key-frame interval of the .mp4 files (default: x264's, 250)",
    )
    p.add_argument(
        "--workers", type=int, default=2, help="loader workers (torch processes / ffcv threads)"
    )
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batches", type=int, default=8, help="timed batches per loader per round")
    p.add_argument("--paths", default="decord,pyav,ffcv", help="comma-separated subset to measure")
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="also time decord and pyav with data.repeats=K (K clips per decoded video)",
    )
    p.add_argument("--small", action="store_true", help="48 videos of 4 s, 3 rounds of 4 batches")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    if args.small:
        args.videos, args.seconds, args.rounds, args.batches = 48, 4.0, 3, 4
        if args.data == p.get_default("data"):
            args.data = Path("/tmp/vssl_bench_data_small")
    return args


def build_paths(args, info: dict, beton: Path | None) -> list[Timed]:
    paths = args.paths.split(",")
    decoders = {}
    if "decord" in paths:
        try:
            from vssl_decoders.decord_backend import DecordDecoder

            decoders["decord"] = DecordDecoder
            DecordDecoder()  # fails here when decord is missing
        except (ImportError, ValueError) as exc:
            print(f"decord: not measured ({exc})", file=sys.stderr)
            decoders.pop("decord")
    if "pyav" in paths:
        from vssl_decoders.pyav import PyAVDecoder

        decoders["pyav"] = PyAVDecoder
    timed = []
    drain = args.workers * 2  # a torch DataLoader keeps prefetch_factor (2) batches per worker
    for name, make in decoders.items():
        timed.append(Timed(name, torch_loader(info, make(), args.batch, args.workers), drain))
    if "ffcv" in paths and beton is not None:
        loader = ffcv_loader(beton, args.videos, args.batch, args.workers)
        timed.append(Timed("ffcv", loader, loader.loader.batches_ahead + 1))
    if args.repeats > 1:  # the same torch paths cutting k clips from each decode
        for name, make in decoders.items():
            loader = torch_loader(info, make(), args.batch, args.workers, args.repeats)
            timed.append(Timed(f"{name}x{args.repeats}", loader, drain))
    return timed


def main(argv=None) -> int:
    args = parse_args(argv)
    cpus = len(os.sched_getaffinity(0))
    print(
        f"dataset in {args.data}: {args.videos} videos of {args.seconds:g} s at {FPS:g} fps, "
        f"{WIDTH}x{HEIGHT}"
    )
    info = make_dataset(args.data, args.videos, args.seconds, args.gop, cpus)
    beton = make_beton(args.data, info, cpus) if "ffcv" in args.paths else None
    mp4_mib = info["mp4_bytes"] / 2**20
    beton_mib = beton.stat().st_size / 2**20 if beton else float("nan")
    print(
        f"  .mp4 (H.264, crf 18, gop {args.gop or 'x264 default'}): {mp4_mib:.1f} MiB; "
        f".beton (JPEG q90): {beton_mib:.1f} MiB"
    )
    timed = build_paths(args, info, beton)
    for t in timed:  # start workers, open files, compile ffcv's pipeline: not timed
        next(t.iterator)
    print(
        f"clips 16x112x112 (stride 4, multi-scale crop + flip), batch {args.batch}, {args.workers} "
        f"workers each, {args.rounds} interleaved rounds x {args.batches} batches; {cpus} CPUs "
        f"(torch {torch.__version__})"
    )
    for r in range(args.rounds):
        rates = {t.name: t.round(args.batches) for t in timed}
        print(
            f"  round {r + 1}: " + ", ".join(f"{k} {v:.1f}" for k, v in rates.items()) + " clips/s"
        )
    results = {t.name: t.rates for t in timed}
    print("clips/s, median [min, max] over rounds:")
    for name, rates in results.items():
        print(f"  {name:<7} {describe(rates)}")
    ratios = {}
    for top, base in [("ffcv", "decord"), ("ffcv", "pyav")] + [
        (f"{b}x{args.repeats}", b) for b in ("decord", "pyav")
    ]:
        if top in results and base in results:
            per_round = [f / b for f, b in zip(results[top], results[base], strict=True)]
            ratios[f"{top}/{base}"] = per_round
            print(f"  {top}/{base}: {describe(per_round, '.2f')} x per round")
    key = "ffcv/decord" if "ffcv/decord" in ratios else "ffcv/pyav"
    if key in ratios:
        ok = statistics.median(ratios[key]) >= GOAL_RATIO
        print(f"goal ffcv >= {GOAL_RATIO:g}x {key.split('/')[1]}: {'met' if ok else 'NOT met'}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": vars(args) | {"data": str(args.data), "json": str(args.json)},
                    "rates": results,
                    "ratios": ratios,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
