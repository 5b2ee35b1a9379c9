"""``vssl data pack``: decode every video of a dataset once and write it to an ffcv .beton.

Two passes: worker processes decode each video (this validates it), resize its frames to the
short side and JPEG-encode them into a blob spooled to disk; then ffcv's DatasetWriter packs the
good blobs. A video that fails to decode is counted, listed in ``OUT.failed.txt`` (the
quarantine format: ``path  # reason``, usable as the source dataset's ``quarantine`` file) and
left out; it never stops the pack nor is silently skipped. OUT appears only when complete.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vssl_core.cli.commands import CliCommand
from vssl_core.interfaces import VideoDataset
from vssl_ffcv import require_ffcv

CHUNK_FRAMES = 64  # frames decoded at a time: a long video never sits in memory decoded
MIN_PAGE = 1 << 21  # ffcv's smallest page (2 MiB); each writer process fills its own pages


@dataclass
class PackReport:
    out: Path
    packed: int
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    failed_list: Path | None = None
    size_bytes: int = 0
    seconds: float = 0.0


def failed_list_path(out: str | os.PathLike) -> Path:
    return Path(f"{out}.failed.txt")


# ---------------------------------------------------------------------------------- pass 1

_JOB: dict = {}  # set before forking the workers, so the dataset is inherited, not pickled


def _video_path(dataset: VideoDataset, index: int, sample) -> str:
    """The file behind ``index`` when the dataset or video knows it, else the video's id."""
    if hasattr(dataset, "video_path"):
        return str(dataset.video_path(index))
    path = getattr(getattr(sample, "video", None), "path", None)
    if isinstance(path, str):
        return path
    return (sample.video_id if sample is not None else "") or f"index {index}"


def _encode_one(index: int) -> tuple:
    """("ok", index, blob, label) or ("failed", index, path, reason) for one video."""
    from vssl_core.data.failures import is_decode_error
    from vssl_ffcv.field import encode_blob

    dataset, short_side, quality = _JOB["dataset"], _JOB["short_side"], _JOB["quality"]
    sample = None
    try:
        sample = dataset[index]
        video = sample.video
        n = int(video.num_frames)
        if n < 1:
            return ("failed", index, _video_path(dataset, index, sample), "the video has no frames")
        chunks = (
            video.read(list(range(s, min(s + CHUNK_FRAMES, n)))) for s in range(0, n, CHUNK_FRAMES)
        )
        blob = encode_blob(chunks, float(video.fps), short_side, quality)
    except Exception as exc:
        if not is_decode_error(exc):
            raise  # a bug, not a bad video
        return (
            "failed",
            index,
            _video_path(dataset, index, sample),
            f"{type(exc).__name__}: {exc}",
        )
    label = sample.label
    if isinstance(label, np.ndarray):  # multi-hot: stored as float32 [K]
        label = label.astype(np.float32)
    return ("ok", index, blob.tobytes(), label)


def _encode_all(dataset: VideoDataset, workers: int, spool) -> tuple[list, list, int]:
    """Encode every video into ``spool``; returns the good entries, the failures, the largest
    blob."""
    from tqdm import tqdm

    entries, failed, largest = [], [], 0
    indices = range(len(dataset))
    pool = multiprocessing.get_context("fork").Pool(workers) if workers > 1 else None
    try:
        results = (
            pool.imap(_encode_one, indices, chunksize=1) if pool else map(_encode_one, indices)
        )
        for result in tqdm(results, total=len(dataset), desc="decode + encode", file=sys.stderr):
            if result[0] == "failed":
                failed.append((result[2], result[3]))
                continue
            _, index, blob, label = result
            entries.append((index, spool.tell(), len(blob), label))
            spool.write(blob)
            largest = max(largest, len(blob))
    finally:
        if pool is not None:
            pool.terminate()
    return entries, failed, largest


# ---------------------------------------------------------------------------------- pass 2


class _Spooled:
    """The good videos as ffcv's writer reads them: (blob, label, source index) per row."""

    def __init__(self, spool_path: str, entries: list) -> None:
        self.spool_path, self.entries = spool_path, entries
        self._mmap = None

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, row: int) -> tuple:
        if self._mmap is None:
            self._mmap = np.memmap(self.spool_path, np.uint8, mode="r")
        index, offset, size, label = self.entries[row]
        return np.array(self._mmap[offset : offset + size]), label, index


def _label_field(task: str, labels: list):
    from ffcv.fields import FloatField, IntField, NDArrayField

    if task == "multilabel":
        return NDArrayField(np.dtype("<f4"), (len(labels[0]),))
    return FloatField() if task == "counting" else IntField()


def _page_size(largest_blob: int) -> int:
    # at least 4 blobs a page: a blob that does not fit the rest of a page starts a new one
    page = max(MIN_PAGE, 1 << int(4 * largest_blob - 1).bit_length())
    if page >= 1 << 32:
        raise ValueError(
            f"one video packs to {largest_blob / 2**30:.1f} GiB, more than an ffcv page can hold; "
            "lower --short-side or --quality, or split long videos into clips"
        )
    return page


def pack_dataset(
    dataset: VideoDataset,
    out: str | os.PathLike,
    short_side: int = 128,
    quality: int = 90,
    workers: int = 1,
) -> PackReport:
    """Pack every decodable video of ``dataset`` into the .beton ``out``; see the module doc."""
    require_ffcv("vssl data pack")
    from ffcv.fields import IntField
    from ffcv.writer import DatasetWriter

    from vssl_ffcv.field import VideoJPEGField

    if not 16 <= short_side <= 4096:
        raise ValueError(
            f"--short-side {short_side}: use a side in [16, 4096], e.g. 128 for 112-px crops"
        )
    if not 1 <= quality <= 100:
        raise ValueError(f"--quality {quality}: use a JPEG quality in [1, 100], e.g. 90")
    if workers < 1:
        raise ValueError(f"--workers {workers}: use at least 1 process")
    if len(dataset) < 1:
        raise ValueError("the dataset has no videos to pack")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    spool_path, partial = f"{out}.spool", f"{out}.partial"
    _JOB.update(dataset=dataset, short_side=short_side, quality=quality)
    try:
        with open(spool_path, "wb") as spool:
            entries, failed, largest = _encode_all(dataset, workers, spool)
        report = PackReport(out, len(entries), failed)
        _write_failed_list(out, failed, report)
        if not entries:
            shown = "; ".join(f"{p} ({r})" for p, r in failed[:3])
            raise ValueError(
                f"none of the {len(dataset)} videos could be decoded ({shown}); nothing packed"
            )
        task = getattr(dataset, "task", "classification")
        labels = [e[3] for e in entries]
        fields = {
            "video": VideoJPEGField(short_side, quality, getattr(dataset, "num_classes", 0), task),
            "label": _label_field(task, labels),
            "source_index": IntField(),
        }
        writer = DatasetWriter(partial, fields, page_size=_page_size(largest), num_workers=workers)
        writer.from_indexed_dataset(_Spooled(spool_path, entries), chunksize=16)
        os.replace(partial, out)
    finally:
        _JOB.clear()
        for leftover in (spool_path, partial):
            if os.path.exists(leftover):
                os.remove(leftover)
    report.size_bytes, report.seconds = out.stat().st_size, time.perf_counter() - start
    return report


def _write_failed_list(out: Path, failed: list[tuple[str, str]], report: PackReport) -> None:
    path = failed_list_path(out)
    if not failed:
        if path.exists():
            path.unlink()  # a list from an earlier pack of OUT would now be wrong
        return
    lines = [f"# videos that failed to decode while packing {out.name}; not packed"]
    lines += [f"{p}  # {r.splitlines()[0] if r else 'failed'}" for p, r in failed]
    path.write_text("\n".join(lines) + "\n")
    report.failed_list = path


# ---------------------------------------------------------------------------------- CLI


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="a recipe whose data.dataset (and data.decoder) to pack")
    p.add_argument("out", help="the .beton file to write, e.g. data/ucf101_128.beton")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides")
    p.add_argument(
        "--short-side",
        type=int,
        default=128,
        help="stored frames' short side (128 for 112-px crops, 256 for 224)",
    )
    p.add_argument("--quality", type=int, default=90, help="JPEG quality, 1-100 (default 90)")
    p.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="processes decoding and encoding (default: the CPUs this process may use)",
    )


def _dataset_from_recipe(args: argparse.Namespace, host):
    from vssl_core.build import build_dataset
    from vssl_core.config import compose
    from vssl_core.recipe import display_path
    from vssl_core.schema import RecipeValidationError, validate_component

    composed = compose(args.recipe, args.overrides, host)
    data = composed.data.get("data") or {}
    problems, spec = [], {}
    for key, kind in (("dataset", "dataset"), ("decoder", "decoder")):
        if key == "decoder" and not data.get(key):
            spec[key] = {}
            continue
        spec[key], errs = validate_component(data.get(key), kind, f"data.{key}", host.registry)
        problems += errs
    if problems:
        raise RecipeValidationError(problems, display_path(composed.path))
    if spec["dataset"]["name"] == "ffcv_video":
        raise ValueError(
            "data.dataset is already an ffcv_video .beton; pack the dataset it came from"
        )
    return build_dataset(host.registry, {"data": spec})


def run_pack(args: argparse.Namespace, host) -> int:
    require_ffcv("vssl data pack")
    dataset = _dataset_from_recipe(args, host)
    report = pack_dataset(dataset, args.out, args.short_side, args.quality, args.workers)
    total = report.packed + len(report.failed)
    print(
        f"packed {report.packed} of {total} videos into {report.out} "
        f"({report.size_bytes / 2**20:.1f} MiB; short side {args.short_side}, JPEG quality "
        f"{args.quality}) in {report.seconds:.1f} s"
    )
    if report.failed:
        print(
            f"warning: {len(report.failed)} video(s) failed to decode and were not packed; "
            f"listed in {report.failed_list} (one path per line with the reason; use it as "
            "data.dataset.quarantine for the source dataset)",
            file=sys.stderr,
        )
    return 0


PACK_COMMAND = CliCommand(
    name="data pack",
    help="Decode a recipe's dataset once and write it to an ffcv .beton (the fast path).",
    run=run_pack,
    configure=_configure,
    description=(
        "Decode every video of the recipe's data.dataset once (validating it), resize frames to "
        "--short-side, JPEG-encode them and write an ffcv .beton for the ffcv_video dataset. "
        "Videos that fail to decode are listed in OUT.failed.txt and left out."
    ),
)
