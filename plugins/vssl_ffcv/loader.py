"""Batches from a .beton in the trainer's step order, decoded by ffcv's compiled pipeline.

The order is :class:`vssl_core.data.sampler.StepBatchSampler`'s, so the ffcv path sees the same
samples per optimizer step as the torch path: each rank its contiguous share, resumable at any
step. ffcv's Loader takes that order directly (:mod:`vssl_ffcv.ordered_loader`); each ffcv
"epoch" here is a segment of the run (whole micro-batches, at most ``SEGMENT_SAMPLES``
samples), so memory stays bounded however long the run.

Shape-suffix legend: B batch, V views, C channels (3), T frames, S crop side.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import numba
import numpy as np
import torch
from ffcv.loader import OrderOption

from vssl_core.data.sampler import StepBatchSampler
from vssl_core.interfaces import Batch, ViewSpec
from vssl_core.random import sample_key
from vssl_ffcv.decode import ClipDecoder, encode_order
from vssl_ffcv.field import VideoJPEGField
from vssl_ffcv.ordered_loader import OrderedLoader
from vssl_ffcv.sampling import unsupported

log = logging.getLogger("vssl.ffcv")

SEGMENT_SAMPLES = 1 << 18  # order codes handed to one ffcv epoch (2 MiB of uint64)


def decode_threads(num_workers: int) -> int:
    """ffcv's numba threads for ``data.num_workers`` (0, the torch path's "no workers", means
    one thread; numba refuses more threads than it was started with)."""
    limit = numba.config.NUMBA_NUM_THREADS
    threads = min(max(1, num_workers), limit)
    if threads != max(1, num_workers):
        log.warning(
            "data.num_workers=%d: numba allows %d threads; using %d", num_workers, limit, threads
        )
    return threads


class FfcvClipLoader:
    """An iterable of :class:`Batch` (uint8 clips [B, 3, T, S, S] per view) for the steps of
    ``sampler``; ``labels`` maps an index array to the batch's label tensor."""

    def __init__(
        self,
        path: str,
        views: ViewSpec,
        sampler: StepBatchSampler,
        seed: int,
        num_workers: int,
        labels: Callable[[np.ndarray], torch.Tensor],
        pin_memory: bool = False,
        batches_ahead: int = 3,
    ) -> None:
        problems = unsupported(views)
        if problems:
            raise ValueError(
                f"ffcv_video: the objective asks for {'; '.join(problems)}, which the ffcv "
                "decoder does not implement; train from the source dataset of video files "
                "(the torch loading path) instead"
            )
        self.views, self.sampler, self.seed = views, sampler, seed
        self.labels, self.pin_memory = labels, pin_memory
        torch_threads = torch.get_num_threads()
        self.loader = OrderedLoader(
            path,
            batch_size=sampler.layout.per_rank,
            num_workers=decode_threads(num_workers),  # always explicit: 1.0.2's default is buggy
            os_cache=True,  # the page cache holds the file once for all ranks of a node
            order=OrderOption.SEQUENTIAL,
            seed=0,
            pipelines={"video": [ClipDecoder(views, seed)], "label": None, "source_index": None},
            custom_fields={"video": VideoJPEGField},
            drop_last=True,
            batches_ahead=batches_ahead,
        )
        torch.set_num_threads(torch_threads)  # ffcv sets torch's thread count as a side effect

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[Batch]:
        pending: list[list[tuple[int, int]]] = []
        size = 0
        for micro in self.sampler:
            pending.append(micro)
            size += len(micro)
            if size >= SEGMENT_SAMPLES:
                yield from self._segment(pending)
                pending, size = [], 0
        if pending:
            yield from self._segment(pending)

    def _segment(self, micro_batches: list[list[tuple[int, int]]]) -> Iterator[Batch]:
        pairs = np.array([p for micro in micro_batches for p in micro], np.int64).reshape(-1, 2)
        self.loader.set_order(encode_order(pairs[:, 0], pairs[:, 1]))
        torch_threads = torch.get_num_threads()
        epoch_iter = iter(self.loader)
        try:
            for i, (out_BVCTSS,) in enumerate(epoch_iter):
                if i == 0:  # the iterator thread has set torch's thread count by now
                    torch.set_num_threads(torch_threads)
                yield self._batch(micro_batches[i], out_BVCTSS)
        finally:
            epoch_iter.close()

    def _batch(self, micro: list[tuple[int, int]], out_BVCTSS: np.ndarray) -> Batch:
        v = self.views
        expected = (len(micro), v.num_clips, 3, v.frames, v.crop_size, v.crop_size)
        assert out_BVCTSS.shape == expected, f"decoded {out_BVCTSS.shape}, expected {expected}"
        out = torch.from_numpy(out_BVCTSS)
        # copies: ffcv reuses its output slots a few batches later
        clips = [self._copy(out[:, c]) for c in range(v.num_clips)]
        index = np.array([i for _, i in micro], np.int64)
        keys = [sample_key(self.seed, e, i) for e, i in micro]
        return Batch(
            clips=clips,
            label=self.labels(index),
            index=torch.from_numpy(index),
            keys=torch.tensor(keys, dtype=torch.long),
        )

    def _copy(self, clip_BCTSS: torch.Tensor) -> torch.Tensor:
        out = torch.empty(clip_BCTSS.shape, dtype=torch.uint8, pin_memory=self.pin_memory)
        return out.copy_(clip_BCTSS)
