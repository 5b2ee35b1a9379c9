"""Kinetics-400 (Kay et al., 2017) from the CSV files as distributed and the usual downloaded
layout.

Layout (the CVDF mirror's; the ActivityNet crawler's per-class folders also work)::

    ROOT/annotations/train.csv                      label,youtube_id,time_start,time_end,split[,is_cc]
    ROOT/annotations/val.csv    (or validate.csv, DeepMind's name)
    ROOT/annotations/test.csv
    ROOT/train/<youtube_id>_<time_start:06d>_<time_end:06d>.mp4
    ROOT/val/...    (or ROOT/validate/...)           ROOT/test/...

A video is found by its file name without suffix anywhere under the subset's folder, so flat
folders, per-class folders (with spaces or underscores) and .mp4/.webm/.mkv files all work.
Classes are the sorted label names found in all the CSV files present (400 for Kinetics-400).

Missing videos are the normal state of a Kinetics copy (YouTube takedowns), so by default they
are left out and counted (``missing="skip"``) rather than stopping the run.
"""

from __future__ import annotations

import csv
import os
from typing import Literal

from vssl_core.interfaces import VideoDecoder
from vssl_core.registry import component
from vssl_datasets.files import (
    FileVideoDataset,
    Missing,
    VideoRecord,
    layout_error,
    line_error,
    require_dir,
    scan_videos,
)

NAME = "kinetics400"
EXPECTED = (
    "A Kinetics root holds annotations/{train,val,test}.csv (columns label,youtube_id,"
    "time_start,time_end,split) and one folder of videos per subset, train/, val/ and test/, "
    "named <youtube_id>_<time_start:06d>_<time_end:06d>.mp4"
)
CSV_NAMES = {"train": ("train.csv",), "val": ("val.csv", "validate.csv"), "test": ("test.csv",)}
VIDEO_DIRS = {"train": ("train",), "val": ("val", "validate"), "test": ("test",)}
COLUMNS = ("label", "youtube_id", "time_start", "time_end")


def video_stem(youtube_id: str, time_start: int, time_end: int) -> str:
    """The downloaded file's name without suffix, e.g. ``--07WQ2iBlw_000001_000011``."""
    return f"{youtube_id}_{time_start:06d}_{time_end:06d}"


def read_csv(path: str) -> list[tuple[str, str]]:
    """(label name, video stem) per row of a Kinetics CSV; an error naming the file and line
    when a column or a label is missing."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        absent = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if absent:
            raise layout_error(
                NAME,
                f"{path} has no column {', '.join(absent)} (header: {reader.fieldnames})",
                "Each CSV needs the header label,youtube_id,time_start,time_end,split; "
                "a test.csv without labels cannot be used as a subset",
            )
        rows = []
        for lineno, row in enumerate(reader, start=2):
            try:
                start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            except (TypeError, ValueError):
                start = end = None
            if start is None or not row["label"] or not row["youtube_id"]:
                line = ",".join(str(v) for v in row.values())
                raise line_error(NAME, path, lineno, line, "label,youtube_id,start,end,split")
            rows.append((row["label"], video_stem(row["youtube_id"], start, end)))
    return rows


def label_names(path: str) -> set[str]:
    """The labels used in a CSV; none for a test.csv distributed without labels."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if "label" not in (reader.fieldnames or []):
            return set()
        return {row["label"] for row in reader if row["label"]}


def _first(folder: str, names: tuple[str, ...], isdir: bool = False) -> str | None:
    for name in names:
        path = os.path.join(folder, name)
        if os.path.isdir(path) if isdir else os.path.isfile(path):
            return path
    return None


@component("dataset", name="kinetics400")
def kinetics400(
    root: str,
    subset: Literal["train", "val", "test"] = "train",
    annotations: str | None = None,
    videos: str | None = None,
    per_class: int | None = None,
    subsample_seed: int = 0,
    quarantine: str | None = None,
    missing: Missing = "skip",
    decoder: VideoDecoder | None = None,
) -> FileVideoDataset:
    """Kinetics-400 action recognition (400 classes) from the official CSVs."""
    if subset not in CSV_NAMES:
        raise ValueError(f"kinetics400: subset must be one of {list(CSV_NAMES)}, got {subset!r}")
    root = require_dir(NAME, root, EXPECTED)
    ann = require_dir(NAME, annotations or os.path.join(root, "annotations"), EXPECTED)
    csv_path = _first(ann, CSV_NAMES[subset])
    if csv_path is None:
        raise layout_error(NAME, f"found no {' or '.join(CSV_NAMES[subset])} in {ann}", EXPECTED)
    vids = videos or _first(root, VIDEO_DIRS[subset], isdir=True)
    if vids is None:
        names = " or ".join(os.path.join(root, d) for d in VIDEO_DIRS[subset])
        raise layout_error(NAME, f"found no video folder {names}", EXPECTED)
    vids = require_dir(NAME, vids, EXPECTED)
    rows = read_csv(csv_path)
    labels = {label for label, _ in rows}
    for names in CSV_NAMES.values():  # the other subsets' files, for the full class list
        other = _first(ann, names)
        if other is not None and other != csv_path:
            labels |= label_names(other)
    classes = sorted(labels)
    lookup = {name: i for i, name in enumerate(classes)}
    on_disk = scan_videos(vids)
    # a video not on disk gets a placeholder path that names the file it should be
    records = [
        VideoRecord(on_disk.get(stem, os.path.join(vids, stem + ".mp4")), lookup[label], stem)
        for label, stem in rows
    ]
    return FileVideoDataset(
        NAME,
        records,
        classes,
        "classification",
        decoder,
        source=csv_path,
        root=root,
        quarantine=quarantine,
        missing=missing,
        per_class=per_class,
        subsample_seed=subsample_seed,
        missing_hint=f"Put the videos in {vids}, named <youtube_id>_<start:06d>_<end:06d>.mp4",
        exists=lambda path: os.path.splitext(os.path.basename(path))[0] in on_disk,
    )
