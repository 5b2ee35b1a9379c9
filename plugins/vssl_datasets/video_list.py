"""Any labelled set of videos from a list file of "<path> <label>" lines (VideoMAE's format).

Layout::

    ROOT/train.csv   "<video path> <class index>" per line (space-separated, despite .csv)
    ROOT/val.csv
    ROOT/test.csv
    ROOT/classes.txt optional: one class name per line, in label order

``.txt`` lists (``ROOT/train.txt``) work the same; ``annotations=`` names a list file directly.
Paths are relative to ROOT or absolute, and may contain spaces (the label is the last field).
Without classes.txt, ``num_classes`` is the largest label in the list plus one, unless
``num_classes`` says otherwise (set it for a list that lacks the last classes).
"""

from __future__ import annotations

import os
from typing import Literal

from vssl_core.interfaces import VideoDecoder
from vssl_core.registry import component
from vssl_datasets.files import (
    FileVideoDataset,
    Missing,
    VideoRecord,
    first_existing,
    layout_error,
    line_error,
    read_lines,
    require_dir,
    require_file,
)

NAME = "video_list"
EXPECTED = (
    "A video-list root holds <subset>.csv or <subset>.txt with '<video path> <class index>' "
    "lines (paths relative to the root or absolute), and optionally classes.txt"
)


def read_video_list(path: str, root: str) -> list[VideoRecord]:
    records = []
    for lineno, line in read_lines(path):
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].isdigit():
            raise line_error(NAME, path, lineno, line, '"<video path> <class index>"')
        video = os.path.normpath(os.path.join(root, os.path.expanduser(parts[0])))
        video_id = os.path.splitext(os.path.basename(video))[0]
        records.append(VideoRecord(video, int(parts[1]), video_id))
    return records


@component("dataset", name="video_list")
def video_list(
    root: str,
    subset: Literal["train", "val", "test"] = "train",
    annotations: str | None = None,
    num_classes: int | None = None,
    per_class: int | None = None,
    subsample_seed: int = 0,
    quarantine: str | None = None,
    missing: Missing = "error",
    decoder: VideoDecoder | None = None,
) -> FileVideoDataset:
    """Videos listed as "<path> <class index>" lines (e.g. VideoMAE's train.csv / val.csv)."""
    root = require_dir(NAME, root, EXPECTED)
    if annotations is not None:
        list_path = require_file(NAME, os.path.join(root, annotations), EXPECTED)
    else:
        list_path = first_existing(NAME, root, (f"{subset}.csv", f"{subset}.txt"), EXPECTED)
    records = read_video_list(list_path, root)
    classes_path = os.path.join(root, "classes.txt")
    if os.path.isfile(classes_path):
        classes = [line for _, line in read_lines(classes_path)]
    else:
        top = max((int(r.label) for r in records), default=-1) + 1
        classes = [str(i) for i in range(num_classes if num_classes is not None else top)]
    if num_classes is not None and num_classes != len(classes):
        raise layout_error(
            NAME,
            f"num_classes is {num_classes} but {classes_path} names {len(classes)} classes",
            "Remove num_classes or make it agree with classes.txt",
        )
    bad = [r for r in records if r.label >= len(classes)]
    if bad:
        raise layout_error(
            NAME,
            f"{list_path}: label {bad[0].label} ({bad[0].path}) is not below the number of "
            f"classes, {len(classes)}",
            "Labels are 0-based class indices; set num_classes or fix classes.txt",
        )
    return FileVideoDataset(
        NAME,
        records,
        classes,
        "classification",
        decoder,
        source=list_path,
        root=root,
        quarantine=quarantine,
        missing=missing,
        per_class=per_class,
        subsample_seed=subsample_seed,
        missing_hint="Paths in the list are relative to the root folder, or absolute",
    )
