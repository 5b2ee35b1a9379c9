"""Opening a run directory: lock it, clear what killed saves left, decide where to resume from."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from vssl_core.config import Config
from vssl_core.engine import checkpoint as ckpt
from vssl_core.engine.distributed import DistInfo, all_reduce_sum
from vssl_core.engine.errors import TrainingError
from vssl_core.engine.runlock import RunLock

log = logging.getLogger("vssl.train")

AUTO = "auto"  # resume=auto: continue when the run has a checkpoint, else start fresh


def resolve_run_dir(config: Config) -> tuple[Path, Path | None]:
    """The run directory and the checkpoint to resume from (None: a fresh run).

    ``resume=true`` and ``resume=auto`` point at ``last.pt``; loading it falls back to the
    newest intact checkpoint when it is corrupt or gone (``checkpoint.load_resumable``).
    """
    run = config.run
    run_dir = Path(run.output_root) / run.name
    resume = config.data["resume"]
    folder = run_dir / "checkpoints"
    last = folder / ckpt.LAST
    existing = ckpt.candidates(folder)
    if resume is True:
        if not existing:
            raise TrainingError(
                f"resume=true but {folder} holds no checkpoint; start without resume, or use "
                "resume=auto (continues when there is a checkpoint, else starts fresh)"
            )
        return run_dir, last
    if resume == AUTO:
        if existing:
            return run_dir, last
        log.info("resume=auto: %s holds no checkpoint; starting fresh", folder)
        return run_dir, None
    if isinstance(resume, str) and resume:
        return run_dir, Path(resume)
    if existing:
        raise TrainingError(
            f"{run_dir} already holds a checkpoint ({existing[0]}). Continue it with resume=true "
            "(or resume=auto), or start a new run with run.name=<another name> (nothing was "
            "overwritten)."
        )
    return run_dir, None


def lock_run_dir(config: Config, dist: DistInfo) -> RunLock | None:
    """Rank 0 locks the run directory and removes orphaned temporary files; every rank raises
    if it could not (they agree with one all-reduce, so no rank waits for a rank that left)."""
    run_dir = Path(config.run.output_root) / config.run.name
    lock, failure = None, None
    if dist.is_main:
        lock = RunLock(run_dir)
        try:
            lock.acquire()
        except (TrainingError, OSError) as exc:
            failure = exc
        else:
            _remove_orphans(run_dir / "checkpoints")
    if dist.distributed:
        flag = torch.tensor([float(failure is not None)], device=dist.device)
        if all_reduce_sum(flag, dist).item() > 0 and failure is None:
            if lock is not None:
                lock.release()
            raise TrainingError(f"rank 0 could not lock {run_dir}; see its message")
    if isinstance(failure, OSError):
        raise TrainingError(f"cannot create or lock {run_dir}: {failure}") from failure
    if failure is not None:
        raise failure
    return lock


def _remove_orphans(folder: Path) -> None:
    removed = ckpt.remove_orphans(folder)
    if removed:
        log.warning(
            "removed %d temporary checkpoint file(s) left by a save that was interrupted: %s",
            len(removed),
            ", ".join(p.name for p in removed[:5]),
        )
