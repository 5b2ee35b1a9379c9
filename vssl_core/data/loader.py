"""A torch DataLoader over the step sampler: workers, pinned memory, persistent workers."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from vssl_core.data.clips import ClipDataset, collate
from vssl_core.data.failures import DataLoadingError
from vssl_core.data.sampler import StepBatchSampler


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # each worker decodes one sample at a time; no thread oversubscription
    # A scheduler pre-empting the job (or Ctrl-C) signals every process; the training process
    # saves a checkpoint and shuts the workers down itself, so a worker must not die first and
    # turn a clean pre-emption into a "worker killed" crash.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group too


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


_WORKER_DIED = re.compile(
    r"DataLoader worker \(pid\(?s?\)? ?([\d, ]+)\)? (is killed by signal: .*|exited unexpectedly.*)"
)


def worker_death(exc: BaseException, checkpoint_dir: Path) -> DataLoadingError | None:
    """The error for a loader worker that died (torch raises a bare RuntimeError), or None
    when ``exc`` is something else."""
    found, node = None, exc
    while found is None and node is not None:  # torch's SIGCHLD handler raises anywhere
        found, node = _WORKER_DIED.search(str(node)), node.__context__
    if found is None:
        return None
    return DataLoadingError(
        f"a data-loader worker (pid {found.group(1).strip()}) died: {found.group(2).strip()} "
        "Most often the kernel's out-of-memory killer ended it (see `dmesg`): lower "
        "data.num_workers or data.prefetch_factor, or give the job more memory. The last "
        f"checkpoint in {checkpoint_dir} is intact: continue with resume=true"
    )
