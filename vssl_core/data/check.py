"""Decode every video of a dataset once, classify what is wrong, write a quarantine list.

Why: real datasets hold corrupt files (Kinetics: "moov atom not found", 0-byte files, truncated
downloads; spec performance-and-data-path.md §2.4). Finding them all up front, in parallel, turns
them into a list that datasets skip (``data.dataset.quarantine=FILE``) instead of failures met
one by one during training.

Problems, in the order they are tested:
- ``missing``: no file or folder at the path;
- ``empty``: a 0-byte file, or a video that reports no frames;
- ``unreadable``: the decoder cannot open it, or opens it but decodes no frame (or crashes);
- ``truncated``: decoding stops before the frame count the video reports;
- ``too_short``: decodes fine but has fewer frames than asked (``min_frames``).

Quarantine list format: one path per line, relative to the dataset root when the video lies
under it (else absolute); ``#`` starts a comment; each path is preceded by a comment giving
its problem.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vssl_core.interfaces import VideoDecoder

PROBLEMS = ("missing", "empty", "unreadable", "truncated", "too_short")
CHUNK = 32  # frames per read: bounded memory (32 frames of 1080p are 200 MB)


@dataclass(frozen=True)
class VideoReport:
    """What decoding one video found: ``problem`` is None for a good video."""

    path: str
    problem: str | None
    detail: str = ""
    frames: int = 0  # frames decoded

    def line(self) -> str:
        return f"{self.problem or 'ok'}: {self.path}" + (f" ({self.detail})" if self.detail else "")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def check_video(decoder: VideoDecoder, path: str, min_frames: int = 1) -> VideoReport:
    """Open ``path`` with ``decoder`` and decode all its frames, ``CHUNK`` at a time.

    Any exception counts against the video: finding what breaks decoding is the point here.
    """
    if not os.path.exists(path):
        return VideoReport(path, "missing", "no such file or folder")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        return VideoReport(path, "empty", "0-byte file")
    try:
        video = decoder.open(path)
        total = int(video.num_frames)
    except Exception as exc:
        return VideoReport(path, "unreadable", _one_line(exc))
    if total < 1:
        return VideoReport(path, "empty", "the video reports no frames")
    decoded, error = _decode_all(video, total)
    if error is not None:
        problem = "unreadable" if decoded == 0 else "truncated"
        return VideoReport(path, problem, f"{decoded} of {total} frames decode; {error}", decoded)
    if decoded < min_frames:
        return VideoReport(path, "too_short", f"{decoded} frames, fewer than {min_frames}", decoded)
    return VideoReport(path, None, "", decoded)


def _decode_all(video, total: int) -> tuple[int, str | None]:
    """(frames decoded before the first failure, that failure or None)."""
    for start in range(0, total, CHUNK):
        want = list(range(start, min(start + CHUNK, total)))
        error = _read(video, want)
        if error is None:
            continue
        for i in want:  # find the exact frame where decoding stops
            single = _read(video, [i])
            if single is not None:
                return i, single
        return want[-1] + 1, error  # frames decode one by one but not together: flag the chunk
    return total, None


def _read(video, indices: list[int]) -> str | None:
    try:
        frames = video.read(indices)
    except Exception as exc:
        return f"reading frames {indices[0]}-{indices[-1]}: {_one_line(exc)}"
    shape = getattr(frames, "shape", None)
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[0] != len(indices):
        return f"asked for frames {indices[0]}-{indices[-1]}, the decoder returned {shape}"
    return None


# ---------------------------------------------------------------------------------- in parallel
_WORKER_DECODER: VideoDecoder | None = None


def _init_worker(decoder: VideoDecoder) -> None:
    import torch

    global _WORKER_DECODER
    _WORKER_DECODER = decoder
    torch.set_num_threads(1)  # one video per process; no thread oversubscription


def _check_in_worker(path: str, min_frames: int) -> VideoReport:
    assert _WORKER_DECODER is not None, "worker not initialised"
    return check_video(_WORKER_DECODER, path, min_frames)


def _context() -> mp.context.BaseContext:
    """fork where available: the decoder (and any test-defined class) is inherited, not pickled."""
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


def check_videos(
    paths: Sequence[str],
    decoder: VideoDecoder,
    workers: int = 1,
    min_frames: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> list[VideoReport]:
    """One report per path, in order. ``workers`` > 1 decodes in that many processes; a process
    the decoder crashes (e.g. a segfault in FFmpeg) costs a retry of the videos in flight, each
    alone in its own process, and the one that crashes is reported ``unreadable``."""
    reports: dict[int, VideoReport] = {}

    def done(i: int, report: VideoReport) -> None:
        reports[i] = report
        if progress is not None:
            progress(len(reports), len(paths))

    if workers <= 1:
        for i, path in enumerate(paths):
            done(i, check_video(decoder, path, min_frames))
        return [reports[i] for i in range(len(paths))]
    pending = list(range(len(paths)))
    while pending:
        if not _run_pool(paths, pending, decoder, workers, min_frames, done):
            break
        unfinished = [i for i in pending if i not in reports]
        # dispatch is in submission order: only the first ones can have been in flight
        in_flight = 2 * workers + 1
        for i in unfinished[:in_flight]:
            done(i, _check_isolated(paths[i], decoder, min_frames))
        pending = unfinished[in_flight:]
    return [reports[i] for i in range(len(paths))]


def _run_pool(paths, pending, decoder, workers, min_frames, done) -> bool:
    """Check ``pending`` in a process pool; True when a worker died and the pool broke."""
    with ProcessPoolExecutor(
        workers, mp_context=_context(), initializer=_init_worker, initargs=(decoder,)
    ) as pool:
        futures = {pool.submit(_check_in_worker, paths[i], min_frames): i for i in pending}
        broken = False
        for future, i in futures.items():
            try:
                done(i, future.result())
            except BrokenProcessPool:
                broken = True
        return broken


def _isolated_target(conn, decoder, path, min_frames) -> None:
    conn.send(check_video(decoder, path, min_frames))


def _check_isolated(path: str, decoder: VideoDecoder, min_frames: int) -> VideoReport:
    ctx = _context()
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_isolated_target, args=(send, decoder, path, min_frames))
    proc.start()
    send.close()
    try:
        report = receive.recv()
    except EOFError:  # the process died before sending its report
        report = None
    proc.join()
    if isinstance(report, VideoReport):
        return report
    return VideoReport(
        path, "unreadable", f"the decoder crashed its process (exit code {proc.exitcode})"
    )


def missing_reports(paths: Sequence[str]) -> list[VideoReport]:
    """Reports for videos a dataset lists but that are not on disk (its ``missing``)."""
    return [VideoReport(path, "missing", "no such file or folder") for path in paths]


# ---------------------------------------------------------------------------------- reporting
def summary_table(reports: Sequence[VideoReport]) -> str:
    """Counts per problem (and of good videos), one row each, as a fixed-width table."""
    counts = {p: 0 for p in ("ok", *PROBLEMS)}
    for r in reports:
        counts[r.problem or "ok"] += 1
    rows = [f"{'result':<12}{'videos':>8}"] + [f"{k:<12}{v:>8}" for k, v in counts.items()]
    return "\n".join(rows + [f"{'total':<12}{len(reports):>8}"])


def quarantine_entry(path: str, root: str | os.PathLike | None) -> str:
    """``path`` relative to ``root`` when it lies under it, else absolute."""
    p = os.path.normpath(os.path.abspath(path))  # not resolve(): a symlinked video keeps its path
    if root is not None:
        rel = os.path.relpath(p, os.path.normpath(os.path.abspath(root)))
        if rel != ".." and not rel.startswith(".." + os.sep):
            return Path(rel).as_posix()
    return p


def write_quarantine(
    out: str | os.PathLike,
    reports: Sequence[VideoReport],
    root: str | os.PathLike | None = None,
    header: str = "",
) -> int:
    """Write the videos with problems as a quarantine list; returns how many."""
    bad = [r for r in reports if r.problem]
    lines = [f"# {line}" for line in header.splitlines()] + [
        "# vssl quarantine list: one path per line (relative to the dataset root, else "
        "absolute); '#' starts a comment",
        f"# {len(bad)} of {len(reports)} videos have problems",
    ]
    for r in bad:
        lines += [f"# {r.problem}: {r.detail}", quarantine_entry(r.path, root)]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(lines) + "\n")
    return len(bad)
