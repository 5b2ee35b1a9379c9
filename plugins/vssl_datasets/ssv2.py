"""Something-Something v2 (Goyal et al., 2017) from its official label files.

Layout (the download package's folder names)::

    ROOT/20bn-something-something-v2/<id>.webm      (re-encoded .mp4 / .avi copies also work)
    ROOT/labels/labels.json         {"<template without brackets>": "<class index>", ...}
    ROOT/labels/train.json          [{"id", "label", "template", "placeholders"}, ...]
    ROOT/labels/validation.json

The ``something-something-v2-{labels,train,validation}.json`` names are accepted too. A
video's class is its ``template`` with ``[`` and ``]`` removed, looked up in labels.json
(SEVERE's and VideoMAE's rule). ``test.json`` carries no templates, so the labelled subsets are
``train`` and ``val``; SEVERE's "test" set is ``val``.
"""

from __future__ import annotations

import json
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
    require_dir,
    scan_videos,
)

NAME = "ssv2"
EXPECTED = (
    "An SSv2 root holds 20bn-something-something-v2/<id>.webm and labels/ with labels.json, "
    "train.json and validation.json (or their something-something-v2-*.json names)"
)
PREFIX = "something-something-v2-"
FILES = {"labels": "labels.json", "train": "train.json", "val": "validation.json"}


def _load_json(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise layout_error(NAME, f"{path} is not valid JSON ({exc})", EXPECTED) from None


def read_labels(path: str) -> list[str]:
    """Class names in index order from labels.json (template -> index as a string)."""
    table = _load_json(path)
    if not isinstance(table, dict) or not table:
        raise layout_error(NAME, f"{path} is not a mapping of template -> index", EXPECTED)
    by_index = {int(v): k for k, v in table.items()}
    if sorted(by_index) != list(range(len(table))):
        raise layout_error(NAME, f"{path}: class indices are not 0..{len(table) - 1}", EXPECTED)
    return [by_index[i] for i in range(len(table))]


def class_of(template: str) -> str:
    """The labels.json key of a template: brackets removed ("Putting [something] on ...")."""
    return template.replace("[", "").replace("]", "")


@component("dataset", name="ssv2")
def ssv2(
    root: str,
    subset: Literal["train", "val"] = "train",
    annotations: str | None = None,
    videos: str | None = None,
    per_class: int | None = None,
    subsample_seed: int = 0,
    quarantine: str | None = None,
    missing: Missing = "error",
    decoder: VideoDecoder | None = None,
) -> FileVideoDataset:
    """Something-Something v2 (174 classes): train.json / validation.json."""
    if subset not in ("train", "val"):
        raise ValueError(
            f"ssv2: subset must be 'train' or 'val' (test.json has no labels), got {subset!r}"
        )
    root = require_dir(NAME, root, EXPECTED)
    ann = require_dir(NAME, annotations or os.path.join(root, "labels"), EXPECTED)
    vids = require_dir(NAME, videos or os.path.join(root, "20bn-something-something-v2"), EXPECTED)

    def find(key: str) -> str:
        return first_existing(NAME, ann, (FILES[key], PREFIX + FILES[key]), EXPECTED)

    classes = read_labels(find("labels"))
    lookup = {name: i for i, name in enumerate(classes)}
    list_path = find(subset)
    entries = _load_json(list_path)
    on_disk = scan_videos(vids, recursive=False)
    records = []
    for n, entry in enumerate(entries if isinstance(entries, list) else [None]):
        if not isinstance(entry, dict) or "id" not in entry or "template" not in entry:
            raise layout_error(
                NAME, f"{list_path}: entry {n} has no id and template: {entry!r}", EXPECTED
            )
        name = class_of(entry["template"])
        if name not in lookup:
            raise layout_error(
                NAME,
                f"{list_path}: entry {n} (id {entry['id']}) has template {entry['template']!r}, "
                "whose bracket-free form is not a class in labels.json",
                EXPECTED,
            )
        vid = str(entry["id"])
        path = on_disk.get(vid, os.path.join(vids, vid + ".webm"))
        records.append(VideoRecord(path, lookup[name], vid))
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
        missing_hint=f"Put the videos in {vids}, named <id>.webm (or .mp4/.avi)",
        exists=lambda path: os.path.splitext(os.path.basename(path))[0] in on_disk,
    )
