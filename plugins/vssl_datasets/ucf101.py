"""UCF101 (Soomro et al., 2012) from its official archives: ``UCF101.rar`` and the
"RecognitionTask" train/test lists.

Layout (the archives' own folder names, as SEVERE reads them)::

    ROOT/UCF-101/<ClassName>/v_<ClassName>_gXX_cYY.avi
    ROOT/ucfTrainTestlist/classInd.txt          "<1-based idx> <ClassName>"
    ROOT/ucfTrainTestlist/trainlist0{1,2,3}.txt "<ClassName>/v_....avi <1-based idx>"
    ROOT/ucfTrainTestlist/testlist0{1,2,3}.txt  "<ClassName>/v_....avi"

The label is the 0-based position of the video's folder name in ``classInd.txt`` (SEVERE's
rule); a train-list index that disagrees with it is an error.
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
    line_error,
    read_lines,
    require_dir,
    require_file,
)

NAME = "ucf101"
EXPECTED = (
    "A UCF101 root holds UCF-101/<ClassName>/v_*.avi (from UCF101.rar) and ucfTrainTestlist/ "
    "with classInd.txt, trainlist0N.txt and testlist0N.txt (from "
    "UCF101TrainTestSplits-RecognitionTask.zip)"
)


def read_class_index(path: str, dataset: str = NAME) -> list[str]:
    """Class names from ``classInd.txt``, in label order (rows "<1-based idx> <ClassName>")."""
    names: list[str] = []
    for lineno, line in read_lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise line_error(dataset, path, lineno, line, '"<1-based index> <ClassName>"')
        if int(parts[0]) != len(names) + 1:
            raise line_error(
                dataset, path, lineno, line, f"index {len(names) + 1} (indices count up from 1)"
            )
        names.append(parts[1])
    return names


def read_split_list(
    path: str, classes: list[str], videos: str, dataset: str = NAME
) -> list[VideoRecord]:
    """Records of a train or test list: "<ClassName>/<file>.avi" with an optional 1-based index."""
    lookup = {name: i for i, name in enumerate(classes)}
    records = []
    for lineno, line in read_lines(path):
        parts = line.split()
        if len(parts) not in (1, 2) or "/" not in parts[0]:
            raise line_error(dataset, path, lineno, line, '"<ClassName>/<video>.avi [<index>]"')
        folder = parts[0].split("/")[0]
        if folder not in lookup:
            raise line_error(dataset, path, lineno, line, "a class folder named in classInd.txt")
        label = lookup[folder]
        if len(parts) == 2 and parts[1] != str(label + 1):
            raise line_error(
                dataset, path, lineno, line, f"index {label + 1}, the classInd.txt row of {folder}"
            )
        video_id = os.path.splitext(os.path.basename(parts[0]))[0]
        records.append(VideoRecord(os.path.join(videos, parts[0]), label, video_id))
    return records


@component("dataset", name="ucf101")
def ucf101(
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
    """UCF101 action recognition (101 classes), official split lists 1-3."""
    if subset not in ("train", "test"):
        raise ValueError(f"ucf101: subset must be 'train' or 'test', got {subset!r}")
    if split not in (1, 2, 3):
        raise ValueError(f"ucf101: split must be 1, 2 or 3, got {split!r}")
    root = require_dir(NAME, root, EXPECTED)
    ann = require_dir(NAME, annotations or os.path.join(root, "ucfTrainTestlist"), EXPECTED)
    vids = require_dir(NAME, videos or os.path.join(root, "UCF-101"), EXPECTED)
    classes = read_class_index(require_file(NAME, os.path.join(ann, "classInd.txt"), EXPECTED))
    list_path = require_file(NAME, os.path.join(ann, f"{subset}list0{split}.txt"), EXPECTED)
    return FileVideoDataset(
        NAME,
        read_split_list(list_path, classes, vids),
        classes,
        "classification",
        decoder,
        source=list_path,
        root=root,
        quarantine=quarantine,
        missing=missing,
        per_class=per_class,
        subsample_seed=subsample_seed,
        missing_hint=f"Extract UCF101.rar so that {vids}/<ClassName>/ holds the .avi files",
    )
