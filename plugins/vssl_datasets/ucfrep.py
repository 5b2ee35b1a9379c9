"""UCFRep repetition counting (Zhang et al., CVPR 2020), SEVERE's "UCF-RC" setting.

Layout: the annotations of SEVERE's ``ucf526_annotations.zip`` beside the UCF101 videos::

    ROOT/annotations/train/v_<Class>_gXX_cYY.mat    421 files
    ROOT/annotations/val/v_<Class>_gXX_cYY.mat      105 files
    ROOT/UCF-101/<Class>/v_<Class>_gXX_cYY.avi      (UCF101.rar; ``videos=`` if elsewhere)

or, with ``video_format="frames"``, SEVERE's frame dumps (read with the ``frames`` decoder,
``pattern: "image_{:05d}.jpg"``, ``start_index: 1``)::

    ROOT/imgs/{train,val}/<Class>/v_<Class>_gXX_cYY/image_00001.jpg ...

Each .mat holds a struct ``label`` with ``duration`` (frames in the video), ``start_frame``,
``end_frame``, ``temporal_bound`` (the frames where cycles begin and end; count = length - 1)
and the per-frame ``offset_next_estimate`` / ``offset_pre_estimate`` (-1 where undefined).
Frame numbers are 1-based, as the frame dumps they were made on start at ``image_00001.jpg``
(inferred, spec §6.6); the sample's video is the annotated segment start_frame..end_frame,
re-indexed from 0. An annotation with fewer than 2 cycles is left out and counted, as SEVERE's
loader skips it.

The sample label is the float cycle count of the whole segment; the task plugin draws SEVERE's
random sub-segments itself from :meth:`UcfRepDataset.annotation`.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from vssl_core.interfaces import VideoDecoder
from vssl_core.registry import component
from vssl_datasets.files import FileVideoDataset, VideoRecord, layout_error, require_dir
from vssl_datasets.matfile import MatFileError, loadmat

log = logging.getLogger(__name__)

NAME = "ucfrep"
EXPECTED = (
    "A UCFRep root holds annotations/{train,val}/v_<Class>_gXX_cYY.mat (from SEVERE's "
    "ucf526_annotations.zip) and UCF-101/<Class>/v_<Class>_gXX_cYY.avi (from UCF101.rar)"
)
_VIDEO_NAME = re.compile(r"^v_(?P<cls>.+)_g\d+_c\d+$")
FIELDS = ("duration", "start_frame", "end_frame", "temporal_bound")


@dataclass(frozen=True)
class RepetitionAnnotation:
    """One video's cycles, in frames of its segment (0 = start_frame).

    ``bounds_N``: cycle boundaries (N = count + 1); ``offset_next_F`` / ``offset_pre_F``: per
    frame of the segment, frames to the next / previous boundary (-1 where undefined).
    """

    count: int
    bounds_N: np.ndarray
    offset_next_F: np.ndarray
    offset_pre_F: np.ndarray
    action: str


def read_annotation(path: str) -> tuple[tuple[int, int], RepetitionAnnotation] | None:
    """(segment, annotation) of one .mat file; None when it has fewer than 2 cycles."""
    try:
        label = loadmat(path).get("label")
    except MatFileError as exc:
        raise layout_error(NAME, str(exc), EXPECTED) from None
    if not isinstance(label, dict) or any(f not in label for f in FIELDS):
        raise layout_error(
            NAME, f"{path} has no struct 'label' with fields {', '.join(FIELDS)}", EXPECTED
        )
    duration, start, end = (int(np.asarray(label[f]).ravel()[0]) for f in FIELDS[:3])
    if not 1 <= start <= end <= duration:
        raise layout_error(
            NAME,
            f"{path}: start_frame {start}, end_frame {end}, duration {duration} do not satisfy "
            "1 <= start_frame <= end_frame <= duration (1-based frame numbers)",
            EXPECTED,
        )
    bounds_N = np.asarray(label["temporal_bound"]).ravel().astype(np.int64)
    if bounds_N.size < 3:
        return None
    name = os.path.splitext(os.path.basename(path))[0]
    m = _VIDEO_NAME.match(name)
    if not m:
        raise layout_error(NAME, f"{path}: file name is not v_<Class>_gXX_cYY.mat", EXPECTED)

    def offsets(key: str) -> np.ndarray:
        return np.asarray(label.get(key, np.zeros((1, 0)))).ravel().astype(np.int64)

    ann = RepetitionAnnotation(
        count=int(bounds_N.size - 1),
        bounds_N=bounds_N - start,
        offset_next_F=offsets("offset_next_estimate"),
        offset_pre_F=offsets("offset_pre_estimate"),
        action=m["cls"],
    )
    return (start - 1, end - 1), ann


class UcfRepDataset(FileVideoDataset):
    """UCFRep videos with their cycle annotations; ``actions`` lists the action classes."""

    annotations: dict[str, RepetitionAnnotation]
    actions: list[str]

    def annotation(self, index: int) -> RepetitionAnnotation:
        return self.annotations[self._record(index).video_id]


@component("dataset", name="ucfrep")
def ucfrep(
    root: str,
    subset: Literal["train", "val"] = "train",
    annotations: str | None = None,
    videos: str | None = None,
    video_format: Literal["avi", "frames"] = "avi",
    quarantine: str | None = None,
    missing: Literal["error", "skip"] = "error",
    decoder: VideoDecoder | None = None,
) -> UcfRepDataset:
    """UCFRep repetition counting (label: float cycle count of the annotated segment)."""
    if subset not in ("train", "val"):
        raise ValueError(f"ucfrep: subset must be 'train' or 'val', got {subset!r}")
    root = require_dir(NAME, root, EXPECTED)
    ann_root = require_dir(NAME, annotations or os.path.join(root, "annotations"), EXPECTED)
    folder = require_dir(NAME, os.path.join(ann_root, subset), EXPECTED)
    if video_format not in ("avi", "frames"):
        raise ValueError(f"ucfrep: video_format must be 'avi' or 'frames', got {video_format!r}")
    frames = video_format == "frames"
    default = os.path.join(root, "imgs" if frames else "UCF-101")
    vids = require_dir(NAME, videos or default, EXPECTED)
    files = sorted(f for f in os.listdir(folder) if f.endswith(".mat"))
    records, by_id, too_few = [], {}, []
    for file in files:
        parsed = read_annotation(os.path.join(folder, file))
        video_id = file[: -len(".mat")]
        if parsed is None:
            too_few.append(video_id)
            continue
        segment, ann = parsed
        by_id[video_id] = ann
        if frames:  # SEVERE's imgs/<subset>/<Class>/<video>/
            path = os.path.join(vids, subset, ann.action, video_id)
        else:
            path = os.path.join(vids, ann.action, video_id + ".avi")
        records.append(VideoRecord(path, float(ann.count), video_id, segment))
    if too_few:
        log.warning(
            "ucfrep: left out %d annotations with fewer than 2 cycles (%s)",
            len(too_few),
            ", ".join(too_few[:5]),
        )
    dataset = UcfRepDataset(
        NAME,
        records,
        ["count"],
        "counting",
        decoder,
        source=f"{folder}/*.mat",
        root=root,
        quarantine=quarantine,
        missing=missing,
        missing_hint=f"{vids}/{subset}/<Class>/ should hold the frame folders v_<Class>_gXX_cYY/"
        if frames
        else f"Extract UCF101.rar so that {vids}/<Class>/ holds the .avi files",
        exists=os.path.isdir if frames else os.path.isfile,
    )
    dataset.annotations = by_id
    dataset.actions = sorted({a.action for a in by_id.values()})
    return dataset
