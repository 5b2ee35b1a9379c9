"""Charades (Sigurdsson et al., 2016) multi-label action classification from the official CSVs.

Layout (the official archives' folder names: ``Charades.zip`` and ``Charades_v1_480.zip``)::

    ROOT/Charades/Charades_v1_classes.txt   "c000 Holding some clothes" (157 rows)
    ROOT/Charades/Charades_v1_train.csv     id,subject,scene,quality,relevance,verified,script,
    ROOT/Charades/Charades_v1_test.csv      objects,descriptions,actions,length
    ROOT/Charades_v1_480/<id>.mp4

``actions`` is a ``;``-separated list of "<class> <start s> <end s>". A video's label is the
float32 multi-hot vector [K] of every action annotated in it (the union over the whole video,
SEVERE's test label). SEVERE trains on the union of the actions inside the sampled clip's time
span; :meth:`CharadesDataset.actions` gives the timed annotations for that, but the label a
sample carries is the whole-video union (see docs/datasets.md). The official ``test`` subset is
SlowFast's and SEVERE's ``val``.
"""

from __future__ import annotations

import csv
import os
from typing import Literal

from vssl_core.interfaces import VideoDecoder
from vssl_core.registry import component
from vssl_datasets.files import (
    FileVideoDataset,
    VideoRecord,
    layout_error,
    line_error,
    multi_hot,
    read_lines,
    require_dir,
    require_file,
    scan_videos,
)

NAME = "charades"
EXPECTED = (
    "A Charades root holds Charades/ with Charades_v1_classes.txt, Charades_v1_train.csv and "
    "Charades_v1_test.csv (from Charades.zip) and Charades_v1_480/<id>.mp4 (from "
    "Charades_v1_480.zip)"
)
Action = tuple[int, float, float]  # class index, start and end in seconds


def read_classes(path: str) -> tuple[list[str], dict[str, int]]:
    """Class names and code -> index from Charades_v1_classes.txt ("c000 Holding ...")."""
    names, codes = [], {}
    for lineno, line in read_lines(path):
        code, _, name = line.partition(" ")
        if not (code.startswith("c") and code[1:].isdigit()) or not name:
            raise line_error(NAME, path, lineno, line, '"c<NNN> <class name>"')
        codes[code] = len(names)
        names.append(name.strip())
    return names, codes


def parse_actions(text: str, codes: dict[str, int], where: str) -> list[Action]:
    """The timed actions of one ``actions`` cell: "c092 11.90 21.20;c147 0.00 12.60"."""
    actions = []
    for item in filter(None, (s.strip() for s in text.split(";"))):
        parts = item.split()
        if len(parts) != 3 or parts[0] not in codes:
            raise _bad_action(where, item)
        try:
            actions.append((codes[parts[0]], float(parts[1]), float(parts[2])))
        except ValueError:
            raise _bad_action(where, item) from None
    return actions


def _bad_action(where: str, item: str):
    return layout_error(
        NAME,
        f"{where}: action {item!r} is not '<class code> <start s> <end s>' with a code from "
        "Charades_v1_classes.txt",
        EXPECTED,
    )


class CharadesDataset(FileVideoDataset):
    """The Charades subset; besides the file-dataset attributes, the timed actions per video."""

    timed: dict[str, list[Action]]

    def actions(self, index: int) -> list[Action]:
        """(class, start s, end s) of every action annotated in the video behind ``index``."""
        return self.timed[self._record(index).video_id]


@component("dataset", name="charades")
def charades(
    root: str,
    subset: Literal["train", "test"] = "train",
    annotations: str | None = None,
    videos: str | None = None,
    quarantine: str | None = None,
    missing: Literal["error", "skip"] = "error",
    decoder: VideoDecoder | None = None,
) -> CharadesDataset:
    """Charades multi-label action classification (157 classes; label: float32 multi-hot)."""
    if subset not in ("train", "test"):
        raise ValueError(f"charades: subset must be 'train' or 'test', got {subset!r}")
    root = require_dir(NAME, root, EXPECTED)
    ann = require_dir(NAME, annotations or os.path.join(root, "Charades"), EXPECTED)
    vids = require_dir(NAME, videos or os.path.join(root, "Charades_v1_480"), EXPECTED)
    classes, codes = read_classes(
        require_file(NAME, os.path.join(ann, "Charades_v1_classes.txt"), EXPECTED)
    )
    csv_path = require_file(NAME, os.path.join(ann, f"Charades_v1_{subset}.csv"), EXPECTED)
    on_disk = scan_videos(vids, recursive=False)
    records, timed = [], {}
    with open(csv_path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not {"id", "actions"} <= set(reader.fieldnames or []):
            raise layout_error(
                NAME, f"{csv_path} has no id and actions columns ({reader.fieldnames})", EXPECTED
            )
        for lineno, row in enumerate(reader, start=2):
            vid = row["id"]
            timed[vid] = parse_actions(row["actions"] or "", codes, f"{csv_path}, line {lineno}")
            label = multi_hot({a[0] for a in timed[vid]}, len(classes))
            path = on_disk.get(vid, os.path.join(vids, vid + ".mp4"))
            records.append(VideoRecord(path, label, vid))
    dataset = CharadesDataset(
        NAME,
        records,
        classes,
        "multilabel",
        decoder,
        source=csv_path,
        root=root,
        quarantine=quarantine,
        missing=missing,
        missing_hint=f"Extract Charades_v1_480.zip so that {vids} holds <id>.mp4",
        exists=lambda path: os.path.splitext(os.path.basename(path))[0] in on_disk,
    )
    dataset.timed = timed
    return dataset
