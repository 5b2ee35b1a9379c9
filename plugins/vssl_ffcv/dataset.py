"""The ``ffcv_video`` dataset: a .beton written by ``vssl data pack``.

Training uses :meth:`FfcvVideoDataset.make_loader` (ffcv's compiled, multi-threaded decoder); the
``VideoDataset`` interface (``dataset[i].video.read(indices)``) also works, decoding in Python,
for evaluation code and tools that take any dataset.

This module imports without ffcv; building the dataset then fails with the install command.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from vssl_core.data.sampler import StepBatchSampler
from vssl_core.interfaces import VideoSample, ViewSpec
from vssl_core.registry import component
from vssl_ffcv import require_ffcv


class PackedVideo:
    """One packed video (satisfies ``Video``): frames decoded from its blob on ``read``."""

    def __init__(self, dataset: FfcvVideoDataset, index: int) -> None:
        row = dataset.video_rows[index]
        self.num_frames, self.fps = int(row["num_frames"]), float(row["fps"])
        self._dataset, self._index = dataset, index

    def read(self, indices: Sequence[int]) -> np.ndarray:
        from vssl_ffcv.field import decode_frames

        return decode_frames(self._dataset.blob(self._index), list(indices))


@component("dataset", name="ffcv_video")
class FfcvVideoDataset:
    """Videos packed by `vssl data pack` into an ffcv .beton (JPEG frames; the fast path)."""

    def __init__(self, path: str, num_classes: int | None = None, batches_ahead: int = 3) -> None:
        require_ffcv("dataset ffcv_video")
        from ffcv.reader import Reader

        from vssl_ffcv.field import VideoJPEGField

        self.path = os.path.abspath(os.path.expanduser(path))
        if not os.path.isfile(self.path):
            raise ValueError(
                f"ffcv_video: {self.path} does not exist; write it with "
                "`vssl data pack DATASET_RECIPE OUT.beton` and set data.dataset.path to OUT.beton"
            )
        if batches_ahead < 1:
            raise ValueError(f"ffcv_video: batches_ahead must be >= 1, got {batches_ahead}")
        try:
            reader = Reader(self.path, custom_handlers={"video": VideoJPEGField})
        except Exception as exc:  # ffcv raises assorted errors on foreign files
            raise ValueError(
                f"ffcv_video: {self.path} is not a readable .beton ({type(exc).__name__}: {exc}); "
                "repack it with `vssl data pack`"
            ) from exc
        missing = {"video", "label"} - set(reader.handlers)
        if missing or not isinstance(reader.handlers["video"], VideoJPEGField):
            raise ValueError(
                f"ffcv_video: {self.path} has fields {sorted(reader.handlers)}, not vssl's "
                "video + label: it was not written by `vssl data pack`; repack it"
            )
        field = reader.handlers["video"]
        self.task, self.short_side = field.task, field.short_side
        self.num_classes = int(num_classes) if num_classes is not None else field.num_classes
        if self.num_classes < 1 and self.task != "counting":
            raise ValueError(
                f"ffcv_video: {self.path} does not record its number of classes; set "
                "data.dataset.num_classes"
            )
        columns = {name: reader.metadata[f"f{i}"] for i, name in enumerate(reader.field_names)}
        self.video_rows, self.label_column = columns["video"], columns["label"]
        self.source_index = columns.get("source_index")
        self.alloc_ptr, self.alloc_size = reader.alloc_table["ptr"], reader.alloc_table["size"]
        self.batches_ahead = batches_ahead
        self._mmap: np.memmap | None = None

    def __len__(self) -> int:
        return len(self.video_rows)

    def __getitem__(self, index: int) -> VideoSample:
        if not -len(self) <= index < len(self):
            raise IndexError(f"ffcv_video index {index} out of range [0, {len(self)})")
        index = index % len(self)
        source = int(self.source_index[index]) if self.source_index is not None else index
        return VideoSample(
            video=PackedVideo(self, index),
            label=self._label(index),
            index=index,
            video_id=f"{os.path.basename(self.path)}#{source}",
        )

    # ------------------------------------------------------------------------------- storage
    def _bytes(self, ptr: int) -> np.ndarray:
        if self._mmap is None:
            self._mmap = np.memmap(self.path, np.uint8, mode="r")
        size = int(self.alloc_size[np.searchsorted(self.alloc_ptr, ptr)])
        return self._mmap[ptr : ptr + size]

    def blob(self, index: int) -> np.ndarray:
        return self._bytes(int(self.video_rows[index]["ptr"]))

    def _label(self, index: int) -> int | float | np.ndarray:
        if self.task == "multilabel":  # an NDArrayField: the metadata holds a pointer
            return self._bytes(int(self.label_column[index])).view("<f4").copy()
        if self.task == "counting":
            return float(self.label_column[index])
        return int(self.label_column[index])

    def labels(self, index: np.ndarray) -> torch.Tensor:
        """Labels of a batch, collated as the torch path does (long [B], float [B, K] or [B])."""
        if self.task == "multilabel":
            return torch.from_numpy(np.stack([self._label(int(i)) for i in index]))
        values = torch.from_numpy(np.asarray(self.label_column[index]))
        return values.float() if self.task == "counting" else values.long()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_mmap": None}  # a memmap would pickle its whole file

    # ------------------------------------------------------------------------------- loading
    def make_loader(
        self,
        views: ViewSpec,
        sampler: StepBatchSampler,
        seed: int,
        num_workers: int,
        pin_memory: bool = False,
    ):
        """The trainer's loader for this dataset: ffcv's decoder with ``num_workers`` threads."""
        from vssl_ffcv.loader import FfcvClipLoader

        return FfcvClipLoader(
            self.path,
            views,
            sampler,
            seed,
            num_workers,
            self.labels,
            pin_memory=pin_memory,
            batches_ahead=self.batches_ahead,
        )

    def __repr__(self) -> str:
        return f"FfcvVideoDataset({self.path!r}, {len(self)} videos, {self.task})"
