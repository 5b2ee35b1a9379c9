"""A torch DataLoader over the step sampler: workers, pinned memory, persistent workers."""

from __future__ import annotations

import signal

import torch
from torch.utils.data import DataLoader

from vssl_core.data.clips import ClipDataset, collate
from vssl_core.data.sampler import StepBatchSampler


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # each worker decodes one sample at a time; no thread oversubscription
    # A scheduler pre-empting the job signals every process; the training process saves a
    # checkpoint and shuts the workers down itself, so a worker must not die first and turn a
    # clean pre-emption into a "worker killed" crash.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def build_loader(
    clips: ClipDataset,
    sampler: StepBatchSampler,
    num_workers: int,
    pin_memory: bool,
    persistent_workers: bool,
    prefetch_factor: int,
) -> DataLoader:
    extra = {}
    if num_workers > 0:
        extra = {
            "persistent_workers": persistent_workers,
            "prefetch_factor": prefetch_factor,
            "worker_init_fn": _worker_init,
        }
    return DataLoader(
        clips,
        batch_sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        **extra,
    )
