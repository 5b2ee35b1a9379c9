"""End-to-end training throughput from video files on one node: does the node's CPU loader keep
the GPU fed? VideoMAE ViT-B pre-training through the real trainer (`vssl train`'s code), fed by
each data path, against the same trainer fed from a batch already on the device.

On the node itself, once (reused by later runs with the same settings, in ``--data``):
1. ``vssl data synth --layout kinetics400 --subsets train``: a Kinetics-like training set,
   ``--videos`` moving-shapes videos of ``--seconds`` s at 25 fps, ``--size`` pixels square
   (H.264 .mp4, x264's default key frame every 250 frames, as downloaded Kinetics files);
2. ``vssl data pack`` of it into an ffcv .beton (JPEG frames, short side ``--size``), if ffcv is
   installed.

Rows, each a training run of ``recipes/zoo/videomae_vitb_k400.yaml`` (16x224x224 clips, tube
mask 0.9, bf16, ``train.compile`` as the zoo recipe on a GPU) at batch ``--batch`` with
``--workers`` loader workers:
- ``device``: a batch made once on the device, handed to the trainer every step (the trainer's
  own work only: the data-on-device row of this run);
- ``pyav``: the Kinetics files through vssl's default PyAV decoder and torch DataLoader, with
  ``data.repeats`` = ``--repeats`` (VideoMAE v2's repeated sampling: k clips per decoded video);
- ``ffcv``: the .beton through the ``ffcv_video`` loader (``--workers`` decoding threads).

A row's clips/s is over its last ``--steps`` steps, after the compile and after the loader's
prefetched batches are used up (those were made while the model compiled): the rate the loader
sustains. The trainer's ``data_wait`` (the share of each step spent waiting for data) comes with
it. On a GPU, ``--profile-steps`` more steps run under torch.profiler: the GPU busy fraction
(union of kernel and copy time over wall time) and the idle time by cause
(benchmarks/timeline.py); on a CPU the busy fraction is reported as unavailable.

Loader rows: each file path's loader alone (the trainer's own loader, no model step), with the
same workers, in batches of ``--loader-batch`` clips (the cost of a clip does not depend on the
batch; smaller batches reach the steady state sooner), for ``--loader-batches`` batches after its
prefetch is drained: clips/s, and its
cost in CPU time (the training process and its worker processes) as clips per core-second, and
the cores that would feed the device row's rate.

Goal on a GPU: ffcv within 10% of the data-on-device row; PyAV's gap stated with its per-core
cost.

    python benchmarks/e2e_throughput.py --json out.json      # on a GPU node (gpu_suite.sh runs it)
    python benchmarks/e2e_throughput.py --prepare-only       # write (or check) the data only
    python benchmarks/e2e_throughput.py --tiny --json x.json # a CPU smoke run (the test's)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timeline  # noqa: E402
from common import ROOT, describe_device  # noqa: E402

from vssl_core.cli.main import main as vssl  # noqa: E402
from vssl_core.config import load_config  # noqa: E402
from vssl_core.engine.trainer import Trainer, _close_loader  # noqa: E402
from vssl_core.engine.trainer import log as train_log  # noqa: E402
from vssl_core.hookspecs import hookimpl  # noqa: E402
from vssl_core.interfaces import Batch  # noqa: E402
from vssl_core.plugins import load_plugins  # noqa: E402
from vssl_core.registry import component  # noqa: E402

RECIPE = ROOT / "recipes" / "zoo" / "videomae_vitb_k400.yaml"
PATHS = ("device", "ffcv", "pyav")
FPS = 25.0
MAX_CLASSES = 36  # the moving-shapes motion table
GOAL_FFCV_VS_DEVICE = 0.9
MARK = "vssl.bench.step_end"
TINY_MODEL = [
    "backbone={name: vit_tiny, img_size: 32, num_frames: 4, patch_size: 16, tubelet_size: 2,"
    " depth: 2}",
    "objective.decoder_depth=1",
]


# ---------------------------------------------------------------------------------- data


def _settings_match(stamp: Path, settings: dict) -> bool:
    return stamp.is_file() and json.loads(stamp.read_text()) == settings


def prepare(args) -> dict[str, Any]:
    """The Kinetics-like set and its .beton, written once per settings."""
    data = args.data
    data.mkdir(parents=True, exist_ok=True)
    classes = min(MAX_CLASSES, args.videos)
    per_class = math.ceil(args.videos / classes)
    frames = round(args.seconds * FPS)
    settings = {"classes": classes, "per_class": per_class, "frames": frames, "size": args.size}
    videos, stamp = data / "k400", data / "k400.settings.json"
    out: dict[str, Any] = {"root": str(videos), "videos": classes * per_class, **settings}
    if not _settings_match(stamp, settings):
        shutil.rmtree(videos, ignore_errors=True)  # written by this script with other settings
        stamp.unlink(missing_ok=True)
        start = time.perf_counter()
        argv = ["data", "synth", str(videos), "--layout", "kinetics400", "--subsets", "train"]
        argv += ["--num-classes", str(classes), "--videos-per-class", str(per_class)]
        argv += ["--frames", str(frames), "--size", str(args.size), "--fps", str(FPS)]
        if vssl([*argv, "--workers", str(args.prep_workers)]) != 0:
            raise SystemExit(f"vssl data synth failed writing {videos}")
        out["synth_s"] = time.perf_counter() - start
        stamp.write_text(json.dumps(settings))
    out["mp4_mib"] = sum(f.stat().st_size for f in (videos / "train").iterdir()) / 2**20
    if "ffcv" in args.paths and ffcv_missing() is None:
        beton, beton_stamp = data / "k400_train.beton", data / "k400_train.beton.settings.json"
        recipe = data / "k400_dataset.yaml"
        recipe.write_text(json.dumps({"data": {"dataset": kinetics(videos)}}))
        if not _settings_match(beton_stamp, settings):
            beton.unlink(missing_ok=True)
            start = time.perf_counter()
            argv = ["data", "pack", str(recipe), str(beton), "--short-side", str(args.size)]
            if vssl([*argv, "--workers", str(args.prep_workers)]) != 0:
                raise SystemExit(f"vssl data pack failed writing {beton}")
            out["pack_s"] = time.perf_counter() - start
            beton_stamp.write_text(json.dumps(settings))
        out["beton"] = str(beton)
        out["beton_mib"] = beton.stat().st_size / 2**20
    return out


def kinetics(root: Path) -> dict:
    return {"name": "kinetics400", "root": str(root), "subset": "train"}


def ffcv_missing() -> str | None:
    try:
        from vssl_ffcv import require_ffcv

        require_ffcv("the ffcv rows")
    except ImportError as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------------------------- the trainer


@component("dataset", name="bench_device_clips")
class DeviceClips:
    """A benchmark dataset whose loader hands the trainer uint8 clips already on ``device``
    (made once; each step gets its own keys, so its own masks): the trainer's work without any
    loading or copying."""

    def __init__(self, num_samples: int, device: str = "cuda") -> None:
        self.num_samples, self.device = num_samples, torch.device(device)
        self.num_classes = 1

    def __len__(self) -> int:
        return self.num_samples

    def make_loader(self, views, sampler, seed: int, num_workers: int, pin_memory: bool = False):
        return self._batches(views, sampler)

    def _batches(self, views, sampler):
        clips, start = None, 0
        for micro in sampler:
            B = len(micro)
            if clips is None or clips[0].shape[0] != B:
                shape = (B, 3, views.frames, views.crop_size, views.crop_size)
                gen = torch.Generator().manual_seed(0)
                clip = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)
                clips = [clip.to(self.device) for _ in range(views.num_clips)]
                ids_B = torch.arange(B, device=self.device)
            keys_B = ids_B + start  # a device op: no host copy
            start += B
            yield Batch(clips=list(clips), label=torch.zeros_like(ids_B), index=ids_B, keys=keys_B)


class BenchHooks:
    """Step-end times of a training run, and a profile of the steps after the timed ones (on a
    GPU with the device timeline), marked at every step end: the window benchmarks/timeline.py
    reads."""

    def __init__(self, profile_after: int, profile_steps: int, cuda: bool) -> None:
        self.times: dict[int, float] = {}
        self.profile_after, self.profile_steps, self.cuda = profile_after, profile_steps, cuda
        self.prof = None
        self.timeline: dict[str, Any] | None = None

    @hookimpl
    def vssl_register_components(self, registry, plugin):
        registry.add(DeviceClips, plugin)

    @hookimpl
    def vssl_step_end(self, run, step, metrics):
        self.times[step] = time.perf_counter()
        if not self.profile_steps:
            return
        first, last = self.profile_after + 1, self.profile_after + 1 + self.profile_steps
        if step == self.profile_after:  # the profiler's start-up cost lands in an unread step
            from torch.profiler import ProfilerActivity, profile

            cuda = [ProfilerActivity.CUDA] if self.cuda else []
            self.prof = profile(activities=[ProfilerActivity.CPU, *cuda])
            self.prof.__enter__()
        elif self.prof is not None and first <= step <= last:
            with torch.profiler.record_function(MARK):
                pass
            if step == last:
                self._finish()

    @hookimpl
    def vssl_train_end(self, run, step, status):
        if self.prof is not None:  # stopped early
            self.prof.__exit__(None, None, None)
            self.prof = None

    def _finish(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        self.prof.__exit__(None, None, None)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "trace.json"
            self.prof.export_chrome_trace(str(path))
            trace = timeline.read_trace(path)
        self.prof = None
        window = timeline.window_between(trace, MARK)
        if window is not None:
            self.timeline = timeline.analyze(trace, window, self.profile_steps)


def path_overrides(path: str, args, data: dict, repeats: int | None = None) -> list[str]:
    """The data section of one row (``repeats``: the PyAV row's data.repeats, else --repeats)."""
    workers, repeats = args.workers, args.repeats if repeats is None else repeats
    if path == "device":
        dataset = {"name": "bench_device_clips", "num_samples": data["videos"]}
        dataset["device"] = args.device.type
        workers, repeats = 0, 1
    elif path == "ffcv":
        dataset, repeats = {"name": "ffcv_video", "path": data["beton"]}, 1
    else:
        dataset = kinetics(Path(data["root"]))
    dataset_override = f"data.dataset={json.dumps(dataset)}"
    return [dataset_override, f"data.num_workers={workers}", f"data.repeats={repeats}"]


def warm_steps(path: str, args) -> int:
    """Steps before the timed ones: the compile, then the batches the loader prefetched meanwhile
    (a DataLoader keeps prefetch_factor (2) per worker; ffcv batches_ahead (3) + 1; the device
    feed 2 more)."""
    buffered = {"device": 0, "ffcv": 4, "pyav": 2 * args.workers}[path]
    return args.warmup + buffered + 2


def config_for(path, args, data, host, name, steps, compile_, repeats=None, batch=None):
    batch = batch or args.batch
    overrides = [
        f"run.output_root={args.data / 'runs'}",
        f"run.name={name}",
        f"batch.global_size={batch}",
        f"batch.per_rank={batch}",
        f"train.max_steps={steps}",
        f"train.compile={'true' if compile_ else 'false'}",
        f"train.device={args.device.type}",
        "checkpoint.every_steps=100000000",
        "log.every_steps=1",
        "log.progress_bar=false",
        "log.tensorboard=false",
        *path_overrides(path, args, data, repeats),
        *(TINY_MODEL if args.tiny else []),
    ]
    return load_config(args.recipe, overrides, host)


def train_row(path: str, args, data: dict) -> dict[str, Any]:
    warm = warm_steps(path, args)
    profile_steps = args.profile_steps
    total = warm + args.steps + (1 + profile_steps if profile_steps else 0)
    hooks = BenchHooks(warm + args.steps, profile_steps, args.device.type == "cuda")
    host = load_plugins(extra=[("vssl_bench_e2e", hooks)])
    name = f"e2e_{path}_{time.strftime('%Y%m%d_%H%M%S')}"
    config = config_for(path, args, data, host, name, total, args.compile)
    if args.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = Trainer(config, host).fit()
    row: dict[str, Any] = {"kind": "train", "path": path, "status": "ok"}
    row.update(workers=config.loader.num_workers, repeats=config.loader.repeats)
    row.update(batch=args.batch, compile=args.compile, warm_steps=warm, timed_steps=args.steps)
    row["run_s"] = time.perf_counter() - start
    t0, t1 = hooks.times.get(warm), hooks.times.get(warm + args.steps)
    if result.status != "completed" or t0 is None or t1 is None:
        reason = f"the run ended {result.status} at step {result.step}"
        return {**row, "status": "failed", "reason": reason}
    row["step_ms"] = (t1 - t0) * 1e3 / args.steps
    row["clips_per_s"] = args.batch * args.steps / (t1 - t0)
    metrics = (result.run_dir / "metrics.jsonl").read_text().splitlines()
    logged = [json.loads(line) for line in metrics]
    timed = [m for m in logged if warm < m["step"] <= warm + args.steps]
    row["data_wait"] = statistics.mean(m["data_wait"] for m in timed) if timed else None
    row["last_loss"] = result.last_loss
    if args.device.type == "cuda":
        row["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
    row["timeline"] = hooks.timeline or {}
    row["gpu_busy_fraction"] = row["timeline"].get("busy_fraction")
    if row["gpu_busy_fraction"] is None:  # a CPU run: its trace has no device timeline
        row["gpu_busy_reason"] = row["timeline"].get("device_timeline", "not profiled")
    shutil.rmtree(result.run_dir, ignore_errors=True)  # the checkpoint of a ViT-B is 1 GB
    return row


# ---------------------------------------------------------------------------------- loader alone


def _children_cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of live processes (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def loader_row(path: str, args, data: dict, repeats: int, device_rate: float | None) -> dict:
    """The trainer's own loader for this path (built by its set-up), alone: clips/s and CPU
    seconds per clip over ``--loader-batches`` batches after the prefetched ones."""
    host = load_plugins()
    name = f"e2e_loader_{path}x{repeats}_{time.strftime('%Y%m%d_%H%M%S')}"
    config = config_for(path, args, data, host, name, 10**6, False, repeats, args.loader_batch)
    trainer = Trainer(config, host)
    trainer._setup()  # the model, the dataset and the views, exactly as a run builds them
    batches = iter(trainer._loader())
    try:
        drain = {"ffcv": 4, "pyav": 2 * args.workers}[path]
        for _ in range(drain + 1):  # start-up and prefetched batches: not the sustained rate
            next(batches)
        pids = [w.pid for w in getattr(batches, "_workers", [])]
        wall, cpu, kids = time.perf_counter(), time.process_time(), _children_cpu_s(pids)
        clips = 0
        for _ in range(args.loader_batches):
            clips += next(batches).size
        wall = time.perf_counter() - wall
        cpu_s = time.process_time() - cpu + _children_cpu_s(pids) - kids
    finally:
        _close_loader(batches)
        if trainer._log_file is not None:  # as Trainer.fit ends
            train_log.removeHandler(trainer._log_file)
            trainer._log_file.close()
        shutil.rmtree(trainer.run_dir, ignore_errors=True)
    row = {
        "kind": "loader",
        "path": path,
        "status": "ok",
        "workers": config.loader.num_workers,
        "repeats": repeats,
        "batches": args.loader_batches,
        "batch": args.loader_batch,
        "clips_per_s": clips / wall,
        "cores_busy": cpu_s / wall,
        "cpu_ms_per_clip": cpu_s * 1e3 / clips,
        "clips_per_core_s": clips / cpu_s if cpu_s > 0 else None,
    }
    if device_rate and row["clips_per_core_s"]:
        row["cores_to_feed_device_row"] = device_rate / row["clips_per_core_s"]
    return row


# ---------------------------------------------------------------------------------- report


def summarize(rows: list[dict]) -> dict[str, Any]:
    """Each file path against the device row, and the goal."""
    trained = {r["path"]: r for r in rows if r["kind"] == "train" and r.get("clips_per_s")}
    out: dict[str, Any] = {}
    device = trained.get("device", {}).get("clips_per_s")
    if not device:
        return out
    for path in ("ffcv", "pyav"):
        if path in trained:
            out[f"{path}_vs_device"] = trained[path]["clips_per_s"] / device
    if "ffcv_vs_device" in out:
        out["goal_ffcv_within_10pct"] = out["ffcv_vs_device"] >= GOAL_FFCV_VS_DEVICE
    return out


def markdown(report: dict) -> str:
    meta, rows = report["meta"], report["rows"]
    lines = [
        f"Device: {meta['device']}; {meta['cpus']} CPUs; torch {meta['torch']}; batch "
        f"{meta['batch']}, compile {meta['compile']}; data {meta['data'].get('videos')} videos of "
        f"{meta['seconds']:g} s at {meta['size']}x{meta['size']}"
        + ("; TINY sizes (smoke run, not a measurement)" if meta["tiny"] else ""),
        "",
        "| row | path | workers | repeats | clips/s | x device | data_wait | GPU busy | clips per core-s | cores for the device rate |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    device = next(
        (
            r["clips_per_s"]
            for r in rows
            if r["kind"] == "train" and r["path"] == "device" and "clips_per_s" in r
        ),
        None,
    )

    def f(v, spec):
        return "-" if v is None else format(v, spec)

    for r in rows:
        if r.get("status") != "ok":
            lines.append(
                f"| {r['kind']} | {r['path']} | | | {r.get('status')}: {r.get('reason')} | | | | | |"
            )
            continue
        ratio = r["clips_per_s"] / device if device and r["kind"] == "train" else None
        busy = r.get("gpu_busy_fraction")
        lines.append(
            f"| {r['kind']} | {r['path']} | {r['workers']} | {r['repeats']} | {r['clips_per_s']:.1f} "
            f"| {f(ratio, '.2f')} | {f(r.get('data_wait'), '.2f')} "
            f"| {'-' if busy is None else f'{busy:.1%}'} | {f(r.get('clips_per_core_s'), '.1f')} "
            f"| {f(r.get('cores_to_feed_device_row'), '.1f')} |"
        )
    s = report["summary"]
    if "ffcv_vs_device" in s:
        ok = "met" if s["goal_ffcv_within_10pct"] else "NOT met"
        lines.append(
            f"\nffcv / device: {s['ffcv_vs_device']:.2f} (goal >= {GOAL_FFCV_VS_DEVICE}: {ok})"
        )
    if "pyav_vs_device" in s:
        lines.append(f"PyAV / device: {s['pyav_vs_device']:.2f}")
    for r in rows:
        if r["kind"] == "train" and r.get("timeline", {}).get("busy_fraction") is not None:
            lines.append(f"\n{r['path']}: " + "; ".join(timeline.summary_lines(r["timeline"])[:3]))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    cpus = len(os.sched_getaffinity(0))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data", type=Path, default=Path("/tmp/vssl_e2e_data"), help="data folder (reused)"
    )
    p.add_argument("--videos", type=int, default=2016, help="videos (36 classes x 56)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--size", type=int, default=256, help="frame side (square), also the .beton's")
    p.add_argument(
        "--paths", default=",".join(PATHS), help="comma-separated rows: device,ffcv,pyav"
    )
    p.add_argument("--repeats", type=int, default=4, help="data.repeats of the PyAV row")
    p.add_argument("--batch", type=int, default=256, help="clips per step (one GPU)")
    p.add_argument("--workers", type=int, default=max(1, cpus - 2), help="loader workers / threads")
    p.add_argument("--prep-workers", type=int, default=cpus, help="processes writing the data")
    p.add_argument(
        "--warmup", type=int, default=5, help="steps for the compile, before the prefetch drain"
    )
    p.add_argument("--steps", type=int, default=10, help="timed steps per row")
    p.add_argument("--profile-steps", type=int, default=3, help="profiled steps after (GPU)")
    p.add_argument(
        "--loader-batches",
        type=int,
        default=None,
        help="timed loader batches (default: as many as workers)",
    )
    p.add_argument(
        "--loader-batch",
        type=int,
        default=64,
        help="clips per batch of the loaders alone (the cost of a clip does not depend on it)",
    )
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train.compile (default: on a GPU)",
    )
    p.add_argument("--recipe", type=Path, default=RECIPE)
    p.add_argument("--cpu", action="store_true", help="train on the CPU even with a GPU")
    p.add_argument("--budget-s", type=float, default=480.0, help="skip rows after this")
    p.add_argument("--prepare-only", action="store_true", help="write the data, then stop")
    p.add_argument("--tiny", action="store_true", help="8 videos of 2 s at 32 px, a tiny ViT")
    p.add_argument("--json", type=Path, default=Path("e2e_throughput.json"))
    args = p.parse_args(argv)
    if args.tiny:
        args.videos, args.seconds, args.size = min(args.videos, 8), 2.0, 32
        args.batch, args.repeats, args.workers = 4, 2, 1
        args.warmup, args.steps, args.profile_steps = 1, 2, min(args.profile_steps, 1)
        args.loader_batches = args.loader_batches or 2
        if args.data == p.get_default("data"):
            args.data = Path("/tmp/vssl_e2e_data_tiny")
    args.paths = [x for x in args.paths.split(",") if x]
    unknown = sorted(set(args.paths) - set(PATHS))
    if unknown:
        p.error(f"--paths: unknown {unknown}; choose from {', '.join(PATHS)}")
    args.device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    if args.compile is None:
        args.compile = args.device.type == "cuda"
    args.loader_batches = args.loader_batches or args.workers
    args.loader_batch = min(args.loader_batch, args.batch)
    for name in ("batch", "loader_batch"):
        if getattr(args, name) % args.repeats:
            p.error(f"--{name.replace('_', '-')} must be a multiple of --repeats {args.repeats}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    data = prepare(args)
    print(f"data: {json.dumps(data)}", flush=True)
    if args.prepare_only:
        return 0
    meta = {
        "device": describe_device(args.device),
        "cpus": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "recipe": str(args.recipe),
        "batch": args.batch,
        "compile": args.compile,
        "seconds": args.seconds,
        "size": args.size,
        "tiny": args.tiny,
        "data": data,
        "goal_ffcv_vs_device": GOAL_FFCV_VS_DEVICE,
    }
    report: dict[str, Any] = {"meta": meta, "rows": [], "summary": {}}
    ordered = [p for p in PATHS if p in args.paths]
    jobs = [("train", p) for p in ordered] + [("loader", p) for p in ordered if p != "device"]
    if "pyav" in ordered and args.repeats > 1:
        jobs.append(("loader", "pyav_x1"))  # the cost of a clip without repeated sampling
    for kind, path in jobs:
        base = path.split("_")[0]
        head = {"kind": kind, "path": path}
        if time.perf_counter() - started > args.budget_s:
            report["rows"].append(
                {**head, "status": "skipped", "reason": f"time budget of {args.budget_s} s spent"}
            )
        elif base == "ffcv" and ffcv_missing():
            report["rows"].append({**head, "status": "skipped", "reason": ffcv_missing()})
        else:
            try:
                if kind == "train":
                    row = train_row(base, args, data)
                else:
                    device_rate = next(
                        (
                            r.get("clips_per_s")
                            for r in report["rows"]
                            if r["kind"] == "train" and r["path"] == "device"
                        ),
                        None,
                    )
                    repeats = 1 if path == "pyav_x1" else (args.repeats if base == "pyav" else 1)
                    row = loader_row(base, args, data, repeats, device_rate)
                    row["path"] = path
            except Exception as exc:  # one broken path must not lose the other rows
                row = {**head, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"[:500]}
            report["rows"].append(row)
        print(
            f"[{time.perf_counter() - started:6.1f} s] {one_line(report['rows'][-1])}", flush=True
        )
        write(report, args.json)
    report["summary"] = summarize(report["rows"])
    write(report, args.json)
    print(markdown(report))
    return 0


def one_line(row: dict) -> str:
    head = f"{row['kind']} {row['path']}"
    if "clips_per_s" not in row:
        return f"{head}: {row.get('status')} ({row.get('reason')})"
    extra = f", data_wait {row['data_wait']:.2f}" if row.get("data_wait") is not None else ""
    if row.get("gpu_busy_fraction") is not None:
        extra += f", GPU busy {row['gpu_busy_fraction']:.1%}"
    if row.get("clips_per_core_s"):
        extra += f", {row['clips_per_core_s']:.1f} clips per core-second"
    return f"{head}: {row['clips_per_s']:.1f} clips/s{extra}"


def write(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=str) + "\n")


if __name__ == "__main__":
    sys.exit(main())
