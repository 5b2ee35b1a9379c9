"""``vssl data synth``: write the moving-shapes videos to disk as encoded files, with annotation
files, in the exact layout of a real dataset, so that every parser and decoder runs on real files.

Each layout writes the folders, video containers/codecs and annotation files the matching
dataset component reads (see docs/datasets.md); class names are the synthetic motion names
spelled by that dataset's rules (UCF101 CamelCase, Kinetics lower case with spaces, SSv2
templates, ...). Every video is a pure function of (seed, class, its number within the class),
and no video appears in two subsets. :func:`write_layout` returns what it wrote, for tests.

Per subset every class gets ``videos_per_class`` videos, except:
- ucf101 / hmdb51: each class gets 3 groups of N videos; split s tests on group s (N per class)
  and trains on the other two (2N; hmdb51 marks the last of those 0, "unused": 2N - 1).
- charades: video j of a subset shows class j mod K, then another class; both are labelled.
- ucfrep: a video repeats one motion (forwards then backwards) 2-5 times after a short still
  lead-in; the .mat files give the cycle boundaries.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import string
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vssl_core.cli.commands import CliCommand
from vssl_core.data.video_writer import stamp_frame_index, write_video
from vssl_datasets.matfile import savemat
from vssl_datasets.moving_shapes import CLASS_TABLE, STYLES, MovingShapes

LAYOUTS = ("ucf101", "hmdb51", "kinetics400", "ssv2", "gym99", "charades", "ucfrep", "video_list")
_ID_CHARS = string.ascii_letters + string.digits + "-_"


@dataclass(frozen=True)
class SynthSpec:
    """What to render: classes, videos per class and subset, and the look of every video."""

    num_classes: int = 10
    videos_per_class: int = 2
    frames: int = 32
    size: int = 64
    fps: float = 25.0
    style: str = "default"
    seed: int = 0
    stamp: bool = False  # draw each frame's index into it (video_writer.stamp_frame_index)

    def __post_init__(self) -> None:
        if not 1 <= self.num_classes <= len(CLASS_TABLE):
            raise ValueError(
                f"num_classes must be in [1, {len(CLASS_TABLE)}], got {self.num_classes}"
            )
        if self.videos_per_class < 1:
            raise ValueError(f"videos_per_class must be >= 1, got {self.videos_per_class}")
        if self.frames < 8:
            raise ValueError(f"frames must be >= 8, got {self.frames}")
        if self.size < 16 or self.size % 2:
            raise ValueError(f"size must be an even number >= 16 (4:2:0 video), got {self.size}")
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {self.style!r}")
        if not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")


@dataclass(frozen=True)
class SynthVideo:
    """One written video: its synthetic classes (indices into the motion table) and, for
    ucfrep, its cycle count."""

    classes: tuple[int, ...]
    count: int | None = None


@dataclass(frozen=True)
class _Render:
    """One video of the moving shapes, rendered only when asked (in a writer process when the
    writer has several): uint8 [T, H, W, 3] from :meth:`render`."""

    spec: SynthSpec
    index: int
    num_frames: int

    def render(self) -> np.ndarray:
        s = self.spec
        ds = MovingShapes(self.index + 1, s.num_classes, self.num_frames, s.size, s.style, s.seed, s.fps)  # fmt: skip
        return ds[self.index].video.read(range(self.num_frames))


def _encode(path: Path, frames: np.ndarray | _Render, spec: SynthSpec, codec: str) -> None:
    frames_THWC = frames.render() if isinstance(frames, _Render) else frames
    if spec.stamp:
        frames_THWC = stamp_frame_index(frames_THWC)
    write_video(path, frames_THWC, spec.fps, codec=codec)


@dataclass
class _Writer:
    out: Path
    spec: SynthSpec
    subsets: frozenset[str] | None = None  # None: every subset of the layout
    pool: ProcessPoolExecutor | None = None  # None: render and encode in this process
    in_flight: int = 1  # videos queued to the pool at most (each may hold its frames)
    written: dict[str, SynthVideo] = field(default_factory=dict)
    _next: dict[int, int] = field(default_factory=dict)  # class -> next video number
    _pending: deque = field(default_factory=deque)

    def frames(self, cls: int, num_frames: int | None = None) -> _Render:
        """The next, never reused, video of class ``cls`` (rendered when written, or by
        ``.render()``)."""
        n = self._next.get(cls, 0)
        self._next[cls] = n + 1
        return _Render(self.spec, n * self.spec.num_classes + cls, num_frames or self.spec.frames)

    def wants(self, subset: str) -> bool:
        return self.subsets is None or subset in self.subsets

    def video(
        self,
        rel: str,
        frames: np.ndarray | _Render,
        info: SynthVideo,
        codec: str,
        subset: str | None = None,
    ) -> None:
        """Write one video (``subset``: only if the writer writes that subset; its number and
        random draws are used either way, so every written video is the same)."""
        if subset is not None and not self.wants(subset):
            return
        if self.pool is None:
            _encode(self.out / rel, frames, self.spec, codec)
        else:
            while len(self._pending) >= self.in_flight:  # bounded memory
                self._pending.popleft().result()
            self._pending.append(
                self.pool.submit(_encode, self.out / rel, frames, self.spec, codec)
            )
        self.written[rel] = info

    def finish(self) -> None:
        """Wait for every video queued to the writer processes (an error in one is raised)."""
        while self._pending:
            self._pending.popleft().result()

    def text(self, rel: str, lines: list[str]) -> None:
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")

    def rng(self, salt: int) -> np.random.Generator:
        return np.random.default_rng([self.spec.seed, salt])


# ------------------------------------------------------------------------------ class names


def _words(cls: int) -> list[str]:
    return CLASS_TABLE[cls].name.split("-")


def class_names(layout: str, num_classes: int) -> list[str]:
    """The class names a layout writes, spelled by that dataset's naming rules."""
    spell: dict[str, Callable[[list[str]], str]] = {
        "ucf101": lambda w: "".join(x.capitalize() for x in w),
        "ucfrep": lambda w: "".join(x.capitalize() for x in w),
        "hmdb51": lambda w: "_".join(w),
        "kinetics400": lambda w: " ".join(w),
        "ssv2": lambda w: f"Moving something along a {w[0]} {w[1]} {w[2]}",
        "gym99": lambda w: f"(FX) {' '.join(w)}",
        "charades": lambda w: " ".join(w).capitalize(),
        "video_list": lambda w: "-".join(w),
    }[layout]
    return [spell(_words(c)) for c in range(num_classes)]


# ------------------------------------------------------------------------------ layouts


def _ucf101(w: _Writer) -> None:
    s, names = w.spec, class_names("ucf101", w.spec.num_classes)
    ann = "ucfTrainTestlist"
    w.text(f"{ann}/classInd.txt", [f"{c + 1} {name}" for c, name in enumerate(names)])
    groups: dict[int, list[str]] = {1: [], 2: [], 3: []}
    for c, name in enumerate(names):
        for g in (1, 2, 3):
            for k in range(1, s.videos_per_class + 1):
                rel = f"{name}/v_{name}_g{g:02d}_c{k:02d}.avi"
                w.video(f"UCF-101/{rel}", w.frames(c), SynthVideo((c,)), "mpeg4")
                groups[g].append(rel)
    label = {name: c + 1 for c, name in enumerate(names)}
    for split in (1, 2, 3):
        train = [r for g in (1, 2, 3) if g != split for r in groups[g]]
        w.text(
            f"{ann}/trainlist0{split}.txt", [f"{r} {label[r.split('/')[0]]}" for r in sorted(train)]
        )
        w.text(f"{ann}/testlist0{split}.txt", sorted(groups[split]))


def _hmdb51(w: _Writer) -> None:
    s, names = w.spec, class_names("hmdb51", w.spec.num_classes)
    for c, action in enumerate(names):
        files: dict[int, list[str]] = {1: [], 2: [], 3: []}
        for g in (1, 2, 3):
            for k in range(s.videos_per_class):
                file = f"synth_{action}_f_cm_np1_fr_med_g{g}_{k}.avi"
                w.video(f"hmdb51_org/{action}/{file}", w.frames(c), SynthVideo((c,)), "mpeg4")
                files[g].append(file)
        for split in (1, 2, 3):
            unused = files[split % 3 + 1][-1]  # the last video of the next group
            rows = []
            for g in (1, 2, 3):
                for file in files[g]:
                    marker = 2 if g == split else 0 if file == unused else 1
                    rows.append(f"{file} {marker} ")  # the official files end rows with a space
            w.text(f"testTrainMulti_7030_splits/{action}_test_split{split}.txt", rows)


def _kinetics400(w: _Writer) -> None:
    s, names = w.spec, class_names("kinetics400", w.spec.num_classes)
    rng = w.rng(400)
    for subset, csv_name in (("train", "train.csv"), ("val", "validate.csv"), ("test", "test.csv")):
        rows = []
        for c, name in enumerate(names):
            for _ in range(s.videos_per_class):
                yid = "".join(rng.choice(list(_ID_CHARS), 11))
                start = int(rng.integers(0, 300))
                stem = f"{yid}_{start:06d}_{start + 10:06d}"
                w.video(f"{subset}/{stem}.mp4", w.frames(c), SynthVideo((c,)), "libx264", subset)
                rows.append([name, yid, start, start + 10, subset])
        if not w.wants(subset):
            continue
        path = w.out / "annotations" / csv_name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
            writer.writerows(rows)


def _ssv2(w: _Writer) -> None:
    s, names = w.spec, class_names("ssv2", w.spec.num_classes)
    templates = [n.replace("something", "[something]", 1) for n in names]
    folder = "20bn-something-something-v2"
    (w.out / "labels").mkdir(parents=True, exist_ok=True)
    (w.out / "labels/labels.json").write_text(
        json.dumps({n: str(i) for i, n in enumerate(names)}, indent=1)
    )
    next_id = 1
    for subset in ("train", "validation", "test"):
        entries = []
        for c, template in enumerate(templates):
            for _ in range(s.videos_per_class):
                vid = str(next_id)
                next_id += 1
                w.video(f"{folder}/{vid}.webm", w.frames(c), SynthVideo((c,)), "libvpx-vp9")
                if subset == "test":  # the official test list has ids only
                    entries.append({"id": vid})
                    continue
                label = template.replace("[something]", "a shape").lower()
                entries.append(
                    {"id": vid, "label": label, "template": template, "placeholders": ["a shape"]}
                )
        (w.out / f"labels/{subset}.json").write_text(json.dumps(entries, indent=1))


# Gym99 labels given to the synthetic classes: FX-S1 (6..16) and UB-S1 (74..88) interleaved
# first, so a few classes already populate both SEVERE subsets, then the other labels.
GYM_LABELS: tuple[int, ...] = tuple(
    [x for pair in zip(range(6, 17), range(74, 85), strict=True) for x in pair]
    + list(range(85, 89))
    + [x for x in range(99) if not (6 <= x <= 16 or 74 <= x <= 88)]
)


def _gym99(w: _Writer) -> None:
    s, names = w.spec, class_names("gym99", w.spec.num_classes)
    rng = w.rng(99)
    by_label = {GYM_LABELS[c]: names[c] for c in range(s.num_classes)}
    rows = []
    for label in range(99):
        name = by_label.get(label, f"(FX) unused synthetic element {label}")
        rows.append(
            f"Clabel: {label:3d}; set: {label // 10 + 1:2d}; Glabel: {label + 1:3d}; {name}"
        )
    w.text("annotations/gym99_categories.txt", rows)
    for subset in ("train", "val"):
        lines = []
        for c in range(s.num_classes):
            for _ in range(s.videos_per_class):
                yid = "".join(rng.choice(list(_ID_CHARS[:62]), 11))
                e0, a0 = int(rng.integers(0, 5000)), int(rng.integers(0, 50))
                clip = f"{yid}_E_{e0:06d}_{e0 + 60:06d}_A_{a0:04d}_{a0 + 2:04d}"
                w.video(f"videos/{clip}.avi", w.frames(c), SynthVideo((c,)), "mpeg4")
                lines.append(f"{clip}.avi {GYM_LABELS[c]}")
        w.text(f"annotations/gym99_{subset}.txt", lines)


def _charades(w: _Writer) -> None:
    s, names = w.spec, class_names("charades", w.spec.num_classes)
    w.text("Charades/Charades_v1_classes.txt", [f"c{c:03d} {n}" for c, n in enumerate(names)])
    rng = w.rng(157)
    half = s.frames // 2
    header = ["id", "subject", "scene", "quality", "relevance", "verified", "script",
              "objects", "descriptions", "actions", "length"]  # fmt: skip
    for subset in ("train", "test"):
        rows = []
        for j in range(s.num_classes * s.videos_per_class):
            first = j % s.num_classes
            second = (first + 1 + j // s.num_classes) % s.num_classes
            vid = "".join(rng.choice(list(string.ascii_uppercase + string.digits), 5))
            frames = np.concatenate([w.frames(first, half).render(), w.frames(second, s.frames - half).render()])  # fmt: skip
            w.video(
                f"Charades_v1_480/{vid}.mp4",
                frames,
                SynthVideo(tuple(sorted({first, second}))),
                "libx264",
            )
            cut, end = half / s.fps, s.frames / s.fps
            actions = f"c{first:03d} 0.00 {cut:.2f};c{second:03d} {cut:.2f} {end:.2f}"
            rows.append([vid, "SYN", "Studio", 7, 7, "Yes", "A shape moves.", "shape",
                         "A shape moves, then another.", actions, f"{end:.2f}"])  # fmt: skip
        path = w.out / f"Charades/Charades_v1_{subset}.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)


def _ucfrep(w: _Writer) -> None:
    s, names = w.spec, class_names("ucfrep", w.spec.num_classes)
    rng = w.rng(526)
    for subset in ("train", "val"):
        (w.out / f"annotations/{subset}").mkdir(parents=True, exist_ok=True)
        for c, name in enumerate(names):
            for k in range(s.videos_per_class):
                half = int(rng.integers(3, max(4, s.frames // 4 + 1)))  # frames out, then back
                count, lead, tail = (
                    int(rng.integers(2, 6)),
                    int(rng.integers(0, 5)),
                    int(rng.integers(1, 5)),
                )
                source = w.frames(c, half + 1).render()
                phase = np.arange(count * 2 * half) % (2 * half)
                idx = np.concatenate(
                    [np.zeros(lead, int), np.minimum(phase, 2 * half - phase), np.zeros(tail, int)]
                )
                video_id = f"v_{name}_g{26 + (subset == 'val'):02d}_c{k + 1:02d}"
                w.video(
                    f"UCF-101/{name}/{video_id}.avi", source[idx], SynthVideo((c,), count), "mpeg4"
                )
                savemat(
                    str(w.out / f"annotations/{subset}/{video_id}.mat"),
                    {"label": _cycle_annotation(len(idx), lead, 2 * half, count)},
                )


def _cycle_annotation(duration: int, lead: int, cycle: int, count: int) -> dict:
    """The UCFRep ``label`` struct for ``count`` cycles of ``cycle`` frames after ``lead`` still
    frames, in 1-based frame numbers; offsets are frames to the next / previous boundary."""
    bounds = lead + 1 + cycle * np.arange(count + 1)
    frames = np.arange(bounds[0], bounds[-1] + 1)
    after = np.searchsorted(bounds, frames, side="right")  # first boundary after each frame
    nxt = np.where(after < len(bounds), bounds[np.minimum(after, len(bounds) - 1)] - frames, -1)
    before = np.searchsorted(bounds, frames, side="left") - 1  # last boundary before each frame
    pre = np.where(before >= 0, frames - bounds[np.maximum(before, 0)], -1)
    return {
        "duration": float(duration),
        "start_frame": float(bounds[0]),
        "end_frame": float(bounds[-1]),
        "temporal_bound_num": float(len(bounds)),
        "temporal_bound": bounds[:, None].astype(float),
        "offset_next_estimate": nxt[None].astype(float),
        "offset_pre_estimate": pre[None].astype(float),
    }


def _video_list(w: _Writer) -> None:
    s, names = w.spec, class_names("video_list", w.spec.num_classes)
    w.text("classes.txt", names)
    for subset in ("train", "val", "test"):
        lines = []
        for c, name in enumerate(names):
            for k in range(s.videos_per_class):
                rel = f"videos/{subset}/{name}_{k:03d}.mp4"
                w.video(rel, w.frames(c), SynthVideo((c,)), "libx264", subset)
                lines.append(f"{rel} {c}")
        if w.wants(subset):
            w.text(f"{subset}.csv", lines)


_WRITERS: dict[str, Callable[[_Writer], None]] = {
    "ucf101": _ucf101,
    "hmdb51": _hmdb51,
    "kinetics400": _kinetics400,
    "ssv2": _ssv2,
    "gym99": _gym99,
    "charades": _charades,
    "ucfrep": _ucfrep,
    "video_list": _video_list,
}


# layouts whose subsets are separate sets of videos, each with its own annotation file (the
# others' subsets are splits over one set of videos, or one file lists them all)
SUBSETS = {"kinetics400": ("train", "val", "test"), "video_list": ("train", "val", "test")}


def write_layout(
    layout: str,
    out: str | os.PathLike,
    spec: SynthSpec | None = None,
    subsets: Sequence[str] | None = None,
    workers: int = 1,
) -> dict[str, SynthVideo]:
    """Write a synthetic dataset in ``layout`` to the folder ``out`` (empty or new); returns
    each video's path relative to ``out`` with its synthetic classes.

    ``subsets`` (kinetics400, video_list) writes only those subsets, each exactly as in the
    full layout. ``workers`` > 1 renders and encodes the videos in that many processes (the
    same files; a dataset of thousands of long videos is minutes of encoding per core)."""
    if layout not in _WRITERS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if subsets is not None:
        known = SUBSETS.get(layout)
        if known is None:
            raise ValueError(
                f"subsets apply to the {' and '.join(SUBSETS)} layouts, whose subsets are "
                f"separate videos; the {layout} layout is written whole: drop subsets"
            )
        unknown = sorted(set(subsets) - set(known))
        if unknown or not subsets:
            raise ValueError(f"subsets {list(subsets)}: the {layout} layout has {', '.join(known)}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not an empty folder; choose a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    pool = None
    if workers > 1:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    try:
        wanted = None if subsets is None else frozenset(subsets)
        writer = _Writer(out, spec or SynthSpec(), wanted, pool, in_flight=2 * workers)
        _WRITERS[layout](writer)
        writer.finish()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return writer.written


# ------------------------------------------------------------------------------ CLI


def _configure(p: argparse.ArgumentParser) -> None:
    d = SynthSpec()
    p.add_argument("out", metavar="OUT", help="folder to write (new or empty)")
    p.add_argument(
        "--layout",
        required=True,
        choices=LAYOUTS,
        help="whose folder layout and annotation files to write",
    )
    p.add_argument(
        "--videos-per-class",
        type=int,
        default=d.videos_per_class,
        metavar="N",
        help=f"videos per class and subset (default {d.videos_per_class})",
    )
    p.add_argument(
        "--num-classes",
        type=int,
        default=d.num_classes,
        metavar="K",
        help=f"motion classes, at most {len(CLASS_TABLE)} (default {d.num_classes})",
    )
    p.add_argument(
        "--frames",
        type=int,
        default=d.frames,
        metavar="F",
        help=f"frames per video (default {d.frames})",
    )
    p.add_argument(
        "--size",
        type=int,
        default=d.size,
        metavar="S",
        help=f"frame height and width, even (default {d.size})",
    )
    p.add_argument(
        "--fps", type=float, default=d.fps, metavar="R", help=f"frame rate (default {d.fps:g})"
    )
    p.add_argument(
        "--style", choices=STYLES, default=d.style, help=f"look of the videos (default {d.style})"
    )
    p.add_argument(
        "--seed", type=int, default=d.seed, help=f"seed of every video (default {d.seed})"
    )
    p.add_argument("--stamp", action="store_true", help="draw each frame's index into its top-left corner (for decoder tests)")  # fmt: skip
    p.add_argument(
        "--subsets",
        nargs="+",
        metavar="SUBSET",
        help="write only these subsets, e.g. train (layouts kinetics400, video_list)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes rendering and encoding videos (default 1; the files are the same)",
    )


def _run(args: argparse.Namespace, host) -> int:
    spec = SynthSpec(
        num_classes=args.num_classes,
        videos_per_class=args.videos_per_class,
        frames=args.frames,
        size=args.size,
        fps=args.fps,
        style=args.style,
        seed=args.seed,
        stamp=args.stamp,
    )
    written = write_layout(args.layout, args.out, spec, args.subsets, args.workers)
    print(
        f"wrote {len(written)} videos of {spec.num_classes} classes in the {args.layout} layout "
        f"to {args.out}; read them with the dataset {{name: {args.layout}, root: {args.out}}}"
    )
    return 0


COMMAND = CliCommand(
    name="data synth",
    help="Write synthetic moving-shapes videos in the layout of a real dataset.",
    description=(
        "Render moving-shapes videos, encode them, and write them with annotation files in the "
        "exact folder layout of a real dataset, so the matching dataset component reads them."
    ),
    run=_run,
    configure=_configure,
)
