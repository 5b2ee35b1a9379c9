"""An exclusive lock on a run directory: one writer at a time.

Why: two runs started with the same run name (or two ``resume=true``) both wrote the same
directory, interleaving metrics rows and checkpoints, and both exited 0. The lock is a POSIX
record lock (``fcntl``) on ``<run dir>/.lock``: the kernel releases it when its process ends, however
it ends (kill -9 included), forked data-loader workers do not inherit it (a worker left behind
by a killed trainer cannot keep a directory locked), and it works on NFS through lockd.

The file records who holds it (pid, host, start time, command) so that a refused writer can
be told, and is emptied on a clean release: a record found when the lock is free means the
last holder was killed, which is reported. A lock held by a process that no longer runs on
this host (a stale lock of a network filesystem) is named as such, with the fix.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

from vssl_core.engine.errors import TrainingError

LOCK_NAME = ".lock"
_UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)
_HELD: set[str] = set()  # run directories locked by this process (POSIX locks are per process)

log = logging.getLogger("vssl.train")


class RunDirectoryLocked(TrainingError):
    pass


class RunLock:
    """``with RunLock(run_dir):`` or :meth:`acquire` / :meth:`release`."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None
        self._key = str(self.run_dir.resolve())
        self._made: list[Path] = []  # folders acquire() created, deepest last

    def acquire(self) -> None:
        """Lock or raise :class:`RunDirectoryLocked` naming the holder; never waits."""
        if self._key in _HELD:
            raise RunDirectoryLocked(
                f"{self.run_dir} is already being written by this process (another run with "
                "the same run.output_root and run.name); use another run.name"
            )
        self._made = [p for p in (*reversed(self.run_dir.parents), self.run_dir) if not p.exists()]
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read(fd)
            os.close(fd)
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                raise RunDirectoryLocked(self._refusal(holder)) from None
            if exc.errno in _UNSUPPORTED:
                log.warning(
                    "cannot lock %s (%s): this filesystem has no file locks, so a second run "
                    "writing into %s would not be detected",
                    self.path,
                    os.strerror(exc.errno),
                    self.run_dir,
                )
                return
            raise
        previous = _read(fd)
        if previous:
            log.warning(
                "%s was last written by pid %s on %s (started %s), which ended without releasing "
                "it (killed?); taking it over",
                self.run_dir,
                previous.get("pid", "?"),
                previous.get("host", "?"),
                previous.get("started", "?"),
            )
        _write(fd, _record())
        self._fd = fd
        _HELD.add(self._key)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):  # a full disk must not turn a release into a crash
            os.ftruncate(self._fd, 0)  # a clean end: nothing for the next holder to report
            self._remove_if_unused()
        os.close(self._fd)  # closing the descriptor drops the lock
        self._fd = None
        _HELD.discard(self._key)

    def _remove_if_unused(self) -> None:
        """A run that could not start leaves no folder: if acquire() made the run directory and
        nothing but the lock was written there, remove them (still holding the lock)."""
        if not self._made or [p.name for p in self.run_dir.iterdir()] != [LOCK_NAME]:
            return
        self.path.unlink()
        for folder in reversed(self._made):
            folder.rmdir()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _refusal(self, holder: dict) -> str:
        who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
        since = f" since {holder['started']}" if "started" in holder else ""
        command = f" ({holder['command']})" if holder.get("command") else ""
        text = (
            f"{self.run_dir} is in use by another run: {who}{since}{command}. Two runs writing "
            "one directory would mix their checkpoints and metrics; wait for it to end, stop "
            "it, or use another run.name"
        )
        if holder.get("host") == socket.gethostname() and not _alive(holder.get("pid")):
            text += (
                f". That process no longer runs on this host, so the lock is stale (a network "
                f"filesystem's lock server can keep one): if no run uses {self.run_dir}, "
                f"delete {self.path}"
            )
        return text


def _record() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": " ".join(sys.argv)[:500],
    }


def _read(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 4096)
        record = json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _write(fd: int, record: dict) -> None:
    with contextlib.suppress(OSError):  # the record is informative; the lock is what counts
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode() + b"\n", 0)
        os.fsync(fd)


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return True  # unknown: do not call it stale
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
