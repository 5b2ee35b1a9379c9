"""FineGym (Shao et al., 2020) element-level Gym99 and the SEVERE subsets FX-S1 and UB-S1.

Layout (SEVERE's; mmaction2's ``subactions/`` folder works with ``videos=...``)::

    ROOT/videos/<clip>.avi        sub-action clips cut with mmaction2's FineGym scripts
    ROOT/annotations/gym99_train.txt    "<clip>.avi <label 0..98>"   (SEVERE's lists)
    ROOT/annotations/gym99_val.txt
    ROOT/annotations/gym99_categories.txt   optional: class names, "Clabel: 0; set: 1; Glabel: 1; (VT) ..."

A clip name looks like ``A0xAXXysHUo_E_002184_002237_A_0035_0036`` (YouTube id, event
start-end, action start-end). The official release's ``gym99_train_element_v1.0.txt`` /
``gym99_val_element.txt`` (names without a suffix) are read when SEVERE's lists are absent.
A clip is found by its name without suffix, so .avi and .mp4 clips both work.

``label_set`` picks SEVERE's fine-grained subsets (spec §6.2): ``fx_s1`` keeps Gym99 labels
6..16 as 0..10 (floor exercise, set 1), ``ub_s1`` keeps 74..88 as 0..14 (uneven bars, set 1).
"""

from __future__ import annotations

import os
import re
from typing import Literal

from vssl_core.interfaces import VideoDecoder
from vssl_core.registry import component
from vssl_datasets.files import (
    VIDEO_SUFFIXES,
    FileVideoDataset,
    Missing,
    VideoRecord,
    first_existing,
    layout_error,
    line_error,
    read_lines,
    require_dir,
    scan_videos,
)

NAME = "gym99"
NUM_CLASSES = 99
EXPECTED = (
    "A FineGym root holds videos/<clip>.avi and annotations/ with gym99_train.txt and "
    "gym99_val.txt (rows '<clip>.avi <label>'), optionally gym99_categories.txt"
)
LISTS = {
    "train": ("gym99_train.txt", "gym99_train_element_v1.0.txt"),
    "val": ("gym99_val.txt", "gym99_val_element.txt"),
}
# label_set -> (first Gym99 label, last Gym99 label), both kept, shifted to start at 0
LABEL_SETS: dict[str, tuple[int, int]] = {"gym99": (0, 98), "fx_s1": (6, 16), "ub_s1": (74, 88)}
_CATEGORY = re.compile(r"^Clabel:\s*(\d+)\s*;.*?;\s*Glabel:\s*\d+\s*;\s*(.*)$")


def read_categories(path: str) -> list[str]:
    """Gym99 class names by label from gym99_categories.txt; generic names when it is absent."""
    if not os.path.isfile(path):
        return [f"gym99_{i:02d}" for i in range(NUM_CLASSES)]
    names: dict[int, str] = {}
    for lineno, line in read_lines(path):
        m = _CATEGORY.match(line)
        if not m:
            raise line_error(NAME, path, lineno, line, '"Clabel: N; set: S; Glabel: G; name"')
        names[int(m[1])] = m[2].strip()
    if sorted(names) != list(range(NUM_CLASSES)):
        raise layout_error(
            NAME, f"{path} does not name each Clabel 0..{NUM_CLASSES - 1} once", EXPECTED
        )
    return [names[i] for i in range(NUM_CLASSES)]


@component("dataset", name="gym99")
def gym99(
    root: str,
    subset: Literal["train", "val"] = "train",
    label_set: Literal["gym99", "fx_s1", "ub_s1"] = "gym99",
    annotations: str | None = None,
    videos: str | None = None,
    per_class: int | None = None,
    subsample_seed: int = 0,
    quarantine: str | None = None,
    missing: Missing = "error",
    decoder: VideoDecoder | None = None,
) -> FileVideoDataset:
    """FineGym Gym99 (99 classes) or its FX-S1 (11) / UB-S1 (15) subsets."""
    if subset not in LISTS:
        raise ValueError(f"gym99: subset must be 'train' or 'val', got {subset!r}")
    if label_set not in LABEL_SETS:
        raise ValueError(f"gym99: label_set must be one of {list(LABEL_SETS)}, got {label_set!r}")
    root = require_dir(NAME, root, EXPECTED)
    ann = require_dir(NAME, annotations or os.path.join(root, "annotations"), EXPECTED)
    vids = require_dir(NAME, videos or os.path.join(root, "videos"), EXPECTED)
    list_path = first_existing(NAME, ann, LISTS[subset], EXPECTED)
    low, high = LABEL_SETS[label_set]
    classes = read_categories(os.path.join(ann, "gym99_categories.txt"))[low : high + 1]
    on_disk = scan_videos(vids)
    records = []
    for lineno, line in read_lines(list_path):
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) >= NUM_CLASSES:
            raise line_error(
                NAME, list_path, lineno, line, f'"<clip>.avi <label 0..{NUM_CLASSES - 1}>"'
            )
        label = int(parts[1])
        if low <= label <= high:
            stem, suffix = os.path.splitext(parts[0])
            clip = stem if suffix.lower() in VIDEO_SUFFIXES else parts[0]
            path = on_disk.get(clip, os.path.join(vids, clip + ".avi"))
            records.append(VideoRecord(path, label - low, clip))
    return FileVideoDataset(
        NAME if label_set == "gym99" else f"gym99 ({label_set})",
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
        missing_hint=f"Put the trimmed clips in {vids}, named <clip>.avi (or .mp4)",
        exists=lambda path: os.path.splitext(os.path.basename(path))[0] in on_disk,
    )
