"""Checkpoints that survive crashes: atomic writes, a verified content checksum, everything
needed to continue, safe loading, and a fallback to the newest intact checkpoint."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vssl_core.engine import integrity
from vssl_core.engine.writes import WriteError, write_failure

FORMAT_VERSION = 1
LAST, PREVIOUS = "last.pt", "previous.pt"  # the run's newest checkpoint and the one before it
CORRUPT_SUFFIX = ".corrupt"  # a checkpoint found corrupt is renamed aside, never deleted

log = logging.getLogger("vssl.checkpoint")


class CheckpointError(RuntimeError):
    pass


class CheckpointWriteError(CheckpointError, WriteError):
    """A checkpoint could not be written; the previous one is intact."""


class CorruptCheckpointError(CheckpointError):
    """The file exists but cannot be read, or its content fails its checksum."""


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "python": list(random.getstate()[1]) + [random.getstate()[0]],
        "python_gauss": random.getstate()[2],
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[-1], tuple(py[:-1]), state["python_gauss"]))
    np.random.set_state(
        ("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_host_rngs(seed: int) -> None:
    """Seed Python's and numpy's global generators: nothing in vssl draws from them, but their
    states are saved with every checkpoint (for plugins that do), and unseeded they made two
    identical runs write different checkpoints."""
    random.seed(seed)
    np.random.seed(seed % 2**32)


class _WriteRecorder:
    """A file wrapper that remembers the OSError of a failed write: torch.save turns it into a
    RuntimeError ("unexpected pos 704 vs 598") that no longer says the disk is full."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.f.flush()


def save_atomic(obj: dict, path: Path, keep_previous: bool = False) -> None:
    """Seal ``obj`` with its checksum, write it to a temporary file beside ``path``, fsync, then
    rename it over ``path`` (moving the file there to ``previous.pt`` first when
    ``keep_previous``).

    A crash or a full disk mid-write leaves the previous file at ``path`` intact, and a write
    that fails for any reason raises :class:`CheckpointError` naming the path and the errno.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    recorder = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sealed = integrity.seal(obj)
        with open(tmp, "wb") as f:
            recorder = _WriteRecorder(f)
            torch.save(sealed, recorder)
            f.flush()
            os.fsync(f.fileno())
        if keep_previous and path.exists():
            os.replace(path, path.with_name(PREVIOUS))
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except (OSError, RuntimeError) as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        cause = recorder.error if recorder is not None and recorder.error else exc
        if not isinstance(cause, OSError) and isinstance(exc.__context__, BaseException):
            # not the disk: an exception raised inside torch.save's writes (a signal handler's:
            # torch's for a dead loader worker, a second Ctrl-C) comes out as "unexpected pos"
            raise exc.__context__ from exc
        raise CheckpointWriteError(write_failure(path, cause, _kept(path))) from exc


def _fsync_dir(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _kept(path: Path) -> str:
    previous = path.with_name(PREVIOUS)
    if path.exists():
        return f"the previous checkpoint at {path} is intact"
    if previous.exists():
        return f"the previous checkpoint at {previous} is intact"
    return "no checkpoint was kept"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load with ``weights_only=True`` (a checkpoint is data, never code) and verify its
    checksum; a checkpoint from before checksums loads unverified."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        unsafe = unsafe_global(exc)
        why = (
            f"it stores a Python object ({unsafe}) besides tensors, and loading it could run code"
            if unsafe
            else f"{type(exc).__name__}: {_first_line(exc)}"
        )
        raise CorruptCheckpointError(f"cannot read checkpoint {path}: {why}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != "vssl" or "model" not in ckpt:
        raise CheckpointError(
            f"{path} is not a vssl training checkpoint (no 'format: vssl' marker)"
        )
    verify_checkpoint(ckpt, path)
    return ckpt


def verify_checkpoint(ckpt: dict, path: str | Path) -> None:
    """Raise :class:`CorruptCheckpointError` when a sealed checkpoint fails its checksum."""
    try:
        integrity.verify(ckpt)
    except integrity.IntegrityError as exc:
        raise CorruptCheckpointError(f"checkpoint {path} is corrupt: {exc}") from None


def load_states(state: dict, path: Path, changed: list[str], **targets: Any) -> None:
    """``target.load_state_dict(state[name])`` for each target; a checkpoint of another model
    (a recipe changed between the run and its resume) is one message, not a traceback."""
    for name, target in targets.items():
        try:
            target.load_state_dict(state[name])
        except (RuntimeError, ValueError, KeyError) as exc:
            lines = [li.strip() for li in str(exc).splitlines()[1:] if li.strip()]
            detail = "; ".join(li[:200] for li in lines[:3]) or _first_line(exc)
            diff = (
                f" The recipe differs from the checkpoint's in: {'; '.join(changed)}."
                if changed
                else ""
            )
            raise CheckpointError(
                f"{path} does not fit the {name} this recipe builds ({detail}).{diff} Resume "
                "with the recipe the run was started with (its recipe.yaml), or start a new run "
                "(another run.name)"
            ) from exc


_UNSAFE = re.compile(r"unsupported (?:global: )?GLOBAL (\S+)", re.I)


def unsafe_global(exc: BaseException) -> str | None:
    """The Python object a ``weights_only`` load refused (``posix.system``), if that is why it
    failed: the file pickles code, not only tensors."""
    found = _UNSAFE.search(str(exc))
    return found.group(1) if found else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""


# ------------------------------------------------------------------------- a run's checkpoints
def candidates(folder: Path) -> list[Path]:
    """The checkpoints of a run folder, newest first (by modification time): last.pt,
    previous.pt and the numbered copies; temporary and corrupt files are not candidates."""
    if not folder.is_dir():
        return []
    found = [
        p
        for p in folder.glob("*.pt")
        if p.is_file() and (p.name in (LAST, PREVIOUS) or p.name.startswith("step_"))
    ]
    return sorted(found, key=lambda p: p.stat().st_mtime_ns, reverse=True)


def load_resumable(
    path: Path, fallback: bool, set_aside: bool = True
) -> tuple[dict[str, Any], Path]:
    """Load the checkpoint to resume from. When it is corrupt or gone and ``fallback`` is set,
    load the newest intact checkpoint of its folder instead, saying so; else refuse, naming the
    newest intact one. ``set_aside`` (one process of a job): rename the corrupt file to
    ``<name>.corrupt``, so that the next save does not keep it as previous.pt."""
    try:
        return load_checkpoint(path), path
    except CheckpointError as exc:
        if not isinstance(exc, CorruptCheckpointError) and path.exists():
            raise  # not a vssl checkpoint: nothing to fall back from
        problem = exc
    for other in candidates(path.parent):
        if other == path:
            continue
        try:
            state = load_checkpoint(other)
        except CheckpointError:
            continue
        if not fallback:
            raise CheckpointError(
                f"{problem}. The newest intact checkpoint is {other} (step "
                f"{state.get('step', '?')}): resume from it with resume={other}"
            ) from None
        aside = _set_aside(path) if set_aside else None
        log.warning(
            "%s; resuming from %s (step %s), the newest intact checkpoint instead%s",
            problem,
            other,
            state.get("step", "?"),
            f" ({path.name} kept as {aside.name})" if aside else "",
        )
        return state, other
    raise CheckpointError(
        f"{problem}. No intact checkpoint is left in {path.parent}: start the run again "
        "(a new run.name, or remove the folder)"
    ) from None


def _set_aside(path: Path) -> Path | None:
    """Rename a corrupt checkpoint to ``<name>.corrupt``; other ranks that find it gone fall
    back the same way."""
    if not path.exists():
        return None
    aside = path.with_name(path.name + CORRUPT_SUFFIX)
    try:
        os.replace(path, aside)
    except OSError:
        return None
    return aside


def remove_orphans(folder: Path) -> list[Path]:
    """Delete the temporary files of saves that a kill interrupted (``.NAME.tmp-PID``). Only
    called by the holder of the run directory's lock, so no save of another process is in
    flight."""
    removed = []
    for tmp in folder.glob(".*.tmp-*") if folder.is_dir() else ():
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            continue
    return removed
