"""Every video file under a folder, without annotation files: for extracting features of your
own videos (``vssl extract --videos DIR``) or a quick labelled set.

Layout: ``ROOT/<class name>/<video>`` gives each video its folder's class (sorted class names ->
indices 0..K-1, as image-folder datasets do); videos directly in ROOT belong to one class, 0.
Sub-folders deeper than one level count for the class of their top folder. The ``video_id`` is
the path relative to ROOT.
"""

from __future__ import annotations

import os

from vssl_core.interfaces import VideoDecoder
from vssl_core.registry import component
from vssl_datasets.files import (
    VIDEO_SUFFIXES,
    FileVideoDataset,
    Missing,
    VideoRecord,
    layout_error,
    require_dir,
)

NAME = "video_folder"
EXPECTED = (
    "A video folder holds video files (" + ", ".join(VIDEO_SUFFIXES) + "), directly or in one "
    "sub-folder per class"
)


def find_videos(root: str) -> list[str]:
    """Video files under ``root`` (recursively), relative to it, sorted."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        found += [
            os.path.relpath(os.path.join(folder, f), root)
            for f in files
            if os.path.splitext(f)[1].lower() in VIDEO_SUFFIXES
        ]
    return sorted(found)


@component("dataset", name="video_folder")
def video_folder(
    root: str,
    quarantine: str | None = None,
    missing: Missing = "error",
    decoder: VideoDecoder | None = None,
) -> FileVideoDataset:
    """Every video under a folder; the class is the top sub-folder's (sorted), or 0."""
    root = require_dir(NAME, root, EXPECTED)
    paths = find_videos(root)
    if not paths:
        raise layout_error(NAME, f"{root} holds no video files", EXPECTED)
    tops = [p.split(os.sep)[0] if os.sep in p else "" for p in paths]
    classes = sorted(set(tops))
    index = {c: i for i, c in enumerate(classes)}
    records = [
        VideoRecord(os.path.join(root, p), index[t], p) for p, t in zip(paths, tops, strict=True)
    ]
    return FileVideoDataset(
        NAME,
        records,
        [c or "(root)" for c in classes],
        "classification",
        decoder,
        source=root,
        root=root,
        quarantine=quarantine,
        missing=missing,
    )
