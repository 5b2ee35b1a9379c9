"""What every dataset of video files shares: layout checks, lazy videos, quarantine, subsets.

A dataset plugin module parses its annotation files into :class:`VideoRecord` s and hands them
to :class:`FileVideoDataset`, which then, in this order:

1. drops the videos listed in the quarantine file (``vssl data check`` writes it),
2. finds listed videos that are not on disk and either stops with an error naming them
   (``missing="error"``) or leaves them out and logs how many and which (``missing="skip"``),
3. keeps ``per_class`` videos per class, drawn with a fixed seed (SEVERE's 10^3 settings).

Nothing is opened at construction: ``__getitem__`` returns a :class:`LazyVideo` that calls the
decoder the first time its frames or frame count are needed.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from vssl_core.interfaces import Video, VideoDecoder, VideoSample

log = logging.getLogger(__name__)

Task = Literal["classification", "multilabel", "counting"]
Missing = Literal["error", "skip"]
SHOW = 5  # how many example paths a message lists
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v")


class DatasetLayoutError(ValueError):
    """The dataset folder or its annotation files are not as the dataset expects; the message
    names the file and what the folder should contain. (A ValueError, so the CLI prints it as
    one message.)"""


@dataclass(frozen=True)
class VideoRecord:
    """One annotated video: absolute ``path``, ``label`` (class index, float32 multi-hot [K] or
    float count), a ``video_id``, and optionally the ``segment`` (first, last frame; 0-based,
    inclusive) the annotation covers."""

    path: str
    label: int | float | np.ndarray
    video_id: str
    segment: tuple[int, int] | None = None


# ------------------------------------------------------------------------------ layout checks


def layout_error(dataset: str, problem: str, expected: str) -> DatasetLayoutError:
    return DatasetLayoutError(
        f"{dataset}: {problem}. {expected} (see docs/datasets.md#{dataset}; "
        f"`vssl data synth --layout {dataset} OUT` writes a small example of this layout)"
    )


def require_dir(dataset: str, path: str, expected: str) -> str:
    """``path`` as an absolute path; an error naming it and ``expected`` when it is no folder."""
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(path):
        what = "is a file, not a folder" if os.path.exists(path) else "does not exist"
        raise layout_error(dataset, f"folder {path} {what}", expected)
    return path


def require_file(dataset: str, path: str, expected: str) -> str:
    """``path`` as an absolute path; an error naming it and ``expected`` when it is no file."""
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(path):
        what = "is a folder, not a file" if os.path.isdir(path) else "does not exist"
        raise layout_error(dataset, f"annotation file {path} {what}", expected)
    return path


def first_existing(dataset: str, folder: str, names: Sequence[str], expected: str) -> str:
    """The first of ``names`` that exists in ``folder``; an error listing all of them if none."""
    for name in names:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    listed = " or ".join(names)
    raise layout_error(dataset, f"found no {listed} in {folder}", expected)


def read_lines(path: str) -> list[tuple[int, str]]:
    """Non-empty lines of a text file with their 1-based line numbers (CRLF-safe)."""
    with open(path, encoding="utf-8") as f:
        return [(n, line.strip()) for n, line in enumerate(f, start=1) if line.strip()]


def line_error(dataset: str, path: str, lineno: int, line: str, expected: str):
    return DatasetLayoutError(f"{dataset}: {path}, line {lineno}: {line!r}: expected {expected}")


def scan_videos(folder: str, recursive: bool = True) -> dict[str, str]:
    """Video files under ``folder`` by file name without suffix -> absolute path.

    Used where the annotations name a video by id and its suffix or sub-folder varies between
    copies of a dataset (Kinetics, SSv2, FineGym). When two files share a name, the suffix
    earlier in :data:`VIDEO_SUFFIXES` wins.
    """
    found: dict[str, str] = {}
    rank = {s: i for i, s in enumerate(VIDEO_SUFFIXES)}
    stack = [folder]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir():
                    if recursive:
                        stack.append(entry.path)
                    continue
                stem, suffix = os.path.splitext(entry.name)
                if suffix.lower() not in rank:
                    continue
                old = found.get(stem)
                if old is None or rank[suffix.lower()] < rank[os.path.splitext(old)[1].lower()]:
                    found[stem] = entry.path
    return found


# ------------------------------------------------------------------------------ quarantine

_TRAILING_COMMENT = re.compile(r"\s+#.*$")


def read_quarantine(path: str, root: str | None = None) -> set[str]:
    """The videos listed in a quarantine file: one path per line, ``#`` starts a comment (at the
    start of a line, or after whitespace), blank lines are ignored.

    With ``root``, relative entries are resolved against it and every entry is returned as a
    normalised absolute path (what :attr:`FileVideoDataset.video_path` returns); without it, the
    entries are returned as written.
    """
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(path):
        raise DatasetLayoutError(
            f"quarantine file {path} does not exist; `vssl data check RECIPE` writes one "
            "(one video path per line, relative to the dataset root or absolute), or remove "
            "the quarantine argument"
        )
    entries = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("#"):
                continue
            entry = _TRAILING_COMMENT.sub("", line).strip()
            if entry:
                entries.add(entry)
    if root is None:
        return entries
    return {os.path.normpath(os.path.join(root, os.path.expanduser(e))) for e in entries}


# ------------------------------------------------------------------------------ subsets


def subsample_per_class(labels: Sequence[int], per_class: int, seed: int) -> list[int]:
    """Positions of ``per_class`` entries of every class (all of a class that has fewer).

    SEVERE's ``get_subset_data`` draw: one ``np.random.RandomState(seed)``, classes in ascending
    order, ``choice(positions of the class, per_class, replace=False)``; a class with no more
    than ``per_class`` entries is taken whole without a draw. Returned in list order.
    """
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class must be an integer >= 1, got {per_class!r}")
    rng = np.random.RandomState(seed)
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(i)
    chosen: list[int] = []
    for label in sorted(by_class):
        positions = by_class[label]
        if len(positions) <= per_class:
            chosen += positions
        else:
            chosen += rng.choice(positions, per_class, replace=False).tolist()
    return sorted(chosen)


# ------------------------------------------------------------------------------ videos


class LazyVideo:
    """A :class:`Video` that opens its file with the decoder on first use, so building samples
    (and datasets) never touches the video files. With ``segment`` (first, last frame;
    inclusive) it shows only those frames, re-indexed from 0."""

    def __init__(
        self, decoder: VideoDecoder, path: str, segment: tuple[int, int] | None = None
    ) -> None:
        self.decoder, self.path, self.segment = decoder, path, segment

    @cached_property
    def _video(self) -> Video:
        from vssl_core.interfaces import VideoDecodeError

        video = self.decoder.open(self.path)
        if self.segment is not None and self.segment[1] >= video.num_frames:
            raise VideoDecodeError(
                f"{self.path}: the annotation covers frames {self.segment[0]}..{self.segment[1]} "
                f"(0-based) but the decoder found {video.num_frames} frames; the file is "
                "truncated or is not the video the annotation was made for"
            )
        return video

    @property
    def num_frames(self) -> int:
        if self.segment is None:
            return self._video.num_frames
        self._video  # noqa: B018 -- opening checks the segment against the file
        return self.segment[1] - self.segment[0] + 1

    @property
    def fps(self) -> float:
        return self._video.fps

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` (of the segment, when there is one) as uint8 [T, H, W, 3]."""
        if self.segment is None:
            return self._video.read(indices)
        idx_T = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = self.num_frames
        if idx_T.size and (idx_T.min() < 0 or idx_T.max() >= n):
            raise IndexError(f"{self.path}: frame index out of the segment's range [0, {n})")
        return self._video.read((idx_T + self.segment[0]).tolist())

    def __repr__(self) -> str:
        seg = f", segment={self.segment}" if self.segment else ""
        return f"LazyVideo({self.path!r}{seg})"


# ------------------------------------------------------------------------------ dataset


class FileVideoDataset:
    """A dataset of video files: the records of one subset, after quarantine, missing-file and
    per-class filtering (see the module docstring). Satisfies ``VideoDataset``.

    Attributes: ``num_classes``, ``classes`` (names), ``task``, ``records`` (kept),
    ``quarantined`` and ``missing`` (absolute paths left out for each reason).
    """

    def __init__(
        self,
        name: str,
        records: Sequence[VideoRecord],
        classes: Sequence[str],
        task: Task,
        decoder: VideoDecoder | None,
        *,
        source: str,
        root: str,
        quarantine: str | None = None,
        missing: Missing = "error",
        per_class: int | None = None,
        subsample_seed: int = 0,
        missing_hint: str = "",
        exists: Callable[[str], bool] = os.path.isfile,
    ) -> None:
        if missing not in ("error", "skip"):
            raise ValueError(f"{name}: missing must be 'error' or 'skip', got {missing!r}")
        if per_class is not None and task != "classification":
            raise ValueError(f"{name}: per_class subsampling needs single-label classes")
        self.name, self.task, self.decoder, self.root = name, task, decoder, root
        self.classes = list(classes)
        self.num_classes = len(self.classes)
        kept = list(records)
        if not kept:
            raise DatasetLayoutError(f"{name}: {source} lists no videos")
        self.quarantined: list[str] = []
        if quarantine is not None:
            bad = read_quarantine(quarantine, root)
            self.quarantined = [r.path for r in kept if r.path in bad]
            kept = [r for r in kept if r.path not in bad]
            if self.quarantined:
                log.info(
                    "%s: left out %d quarantined videos (%s)",
                    name,
                    len(self.quarantined),
                    quarantine,
                )
        self.missing = [r.path for r in kept if not exists(r.path)]
        if self.missing:
            kept = self._handle_missing(kept, source, missing, missing_hint)
        if per_class is not None:
            kept = [
                kept[i]
                for i in subsample_per_class([r.label for r in kept], per_class, subsample_seed)
            ]
        if not kept:
            raise DatasetLayoutError(f"{name}: no videos of {source} are left after quarantine")
        self.records: list[VideoRecord] = kept

    def _handle_missing(
        self, kept: list[VideoRecord], source: str, missing: str, hint: str
    ) -> list[VideoRecord]:
        n, total = len(self.missing), len(kept)
        shown = ", ".join(os.path.relpath(p, self.root) for p in self.missing[:SHOW])
        more = ", ..." if n > SHOW else ""
        text = (
            f"{self.name}: {n} of {total} videos listed in {source} are not on disk ({shown}{more})"
        )
        if missing == "error" or n == total:
            fix = "" if n == total else " or pass missing: skip to use the videos that are there"
            raise DatasetLayoutError(f"{text}. {hint}{fix}".rstrip())
        log.warning("%s; leaving them out (missing: skip)", text)
        gone = set(self.missing)
        return [r for r in kept if r.path not in gone]

    def __len__(self) -> int:
        return len(self.records)

    def _record(self, index: int) -> VideoRecord:
        n = len(self.records)
        if not -n <= index < n:
            raise IndexError(f"{self.name} index {index} out of range [0, {n})")
        return self.records[index]

    def video_path(self, index: int) -> str:
        """Absolute path of the video behind ``index``."""
        return self._record(index).path

    def label(self, index: int) -> int | float | np.ndarray:
        """The annotation of ``index`` without opening its video."""
        return self._record(index).label

    def __getitem__(self, index: int) -> VideoSample:
        record = self._record(index)
        if self.decoder is None:
            raise ValueError(
                f"{self.name} was built without a decoder: build it from a recipe (the core "
                "passes data.decoder, PyAV by default) or pass decoder=... yourself"
            )
        index = index % len(self.records)
        video = LazyVideo(self.decoder, record.path, record.segment)
        return VideoSample(video=video, label=record.label, index=index, video_id=record.video_id)

    def class_counts(self) -> dict[str, int]:
        """Videos per class name (classification), for summaries and tests."""
        counts = dict.fromkeys(self.classes, 0)
        for r in self.records:
            counts[self.classes[int(r.label)]] += 1
        return counts

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.name}, {len(self)} videos, "
            f"{self.num_classes} classes, task={self.task!r})"
        )


def multi_hot(class_ids: Iterable[int], num_classes: int) -> np.ndarray:
    """A read-only float32 multi-hot vector [K]."""
    vec_K = np.zeros(num_classes, np.float32)
    vec_K[list(class_ids)] = 1.0
    vec_K.setflags(write=False)
    return vec_K
