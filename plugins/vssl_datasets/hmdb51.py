"""HMDB51 (Kuehne et al., 2011) from its official archives: ``hmdb51_org.rar`` (one .rar per
action, each holding that action's .avi files) and ``test_train_splits.rar``.

Layout::

    ROOT/hmdb51_org/<action>/<video>.avi
    ROOT/testTrainMulti_7030_splits/<action>_test_split{1,2,3}.txt   "<video>.avi <0|1|2>"

In split file rows, 1 marks a training video, 2 a test video and 0 a video used by neither.
Classes are the actions in sorted order (the label order of mmaction2 and most code bases).
"""

from __future__ import annotations

import os
import re
from typing import Literal

from vssl_core.interfaces import VideoDecoder
from vssl_core.registry import component
from vssl_datasets.files import (
    FileVideoDataset,
    Missing,
    VideoRecord,
    layout_error,
    line_error,
    read_lines,
    require_dir,
)

NAME = "hmdb51"
EXPECTED = (
    "An HMDB51 root holds hmdb51_org/<action>/*.avi (hmdb51_org.rar, then each action's .rar "
    "extracted in place) and testTrainMulti_7030_splits/<action>_test_split{1,2,3}.txt (from "
    "test_train_splits.rar)"
)
MARKERS = {"train": "1", "test": "2"}
_SPLIT_FILE = re.compile(r"^(?P<action>.+)_test_split(?P<split>[123])\.txt$")


def split_files(folder: str, split: int) -> dict[str, str]:
    """action -> path of its ``<action>_test_split<split>.txt``; an error if any is missing."""
    by_split: dict[str, dict[str, str]] = {"1": {}, "2": {}, "3": {}}
    for entry in os.listdir(folder):
        m = _SPLIT_FILE.match(entry)
        if m:
            by_split[m["split"]][m["action"]] = os.path.join(folder, entry)
    found = by_split[str(split)]
    if not found:
        raise layout_error(NAME, f"found no *_test_split{split}.txt files in {folder}", EXPECTED)
    every = set().union(*(s.keys() for s in by_split.values()))
    lacking = sorted(every - found.keys())
    if lacking:
        raise layout_error(
            NAME,
            f"{folder} has no {lacking[0]}_test_split{split}.txt ({len(lacking)} actions lack "
            f"split {split}: {', '.join(lacking[:5])})",
            EXPECTED,
        )
    return found


@component("dataset", name="hmdb51")
def hmdb51(
    root: str,
    subset: Literal["train", "test"] = "train",
    split: Literal[1, 2, 3] = 1,
    annotations: str | None = None,
    videos: str | None = None,
    per_class: int | None = None,
    subsample_seed: int = 0,
    quarantine: str | None = None,
    missing: Missing = "error",
    decoder: VideoDecoder | None = None,
) -> FileVideoDataset:
    """HMDB51 action recognition (51 classes), official 70/30 splits 1-3."""
    if subset not in MARKERS:
        raise ValueError(f"hmdb51: subset must be 'train' or 'test', got {subset!r}")
    if split not in (1, 2, 3):
        raise ValueError(f"hmdb51: split must be 1, 2 or 3, got {split!r}")
    root = require_dir(NAME, root, EXPECTED)
    ann = require_dir(
        NAME, annotations or os.path.join(root, "testTrainMulti_7030_splits"), EXPECTED
    )
    vids = require_dir(NAME, videos or os.path.join(root, "hmdb51_org"), EXPECTED)
    files = split_files(ann, split)
    classes = sorted(files)
    records = []
    for label, action in enumerate(classes):
        for lineno, line in read_lines(files[action]):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise line_error(NAME, files[action], lineno, line, '"<video>.avi <0|1|2>"')
            if parts[1] == MARKERS[subset]:
                video_id = os.path.splitext(parts[0])[0]
                records.append(VideoRecord(os.path.join(vids, action, parts[0]), label, video_id))
    return FileVideoDataset(
        NAME,
        records,
        classes,
        "classification",
        decoder,
        source=f"{ann}/*_test_split{split}.txt ({subset} rows)",
        root=root,
        quarantine=quarantine,
        missing=missing,
        per_class=per_class,
        subsample_seed=subsample_seed,
        missing_hint=f"Extract every action's .rar so that {vids}/<action>/ holds its .avi files",
    )
