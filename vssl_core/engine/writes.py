"""Writing a run's files: a failed write (a full disk, a quota, a read-only mount) is one
message naming the file and the errno, never a traceback or an ``[Errno 28]`` naming nothing."""

from __future__ import annotations

import contextlib
import errno
import logging
from collections.abc import Iterator
from pathlib import Path

from vssl_core.engine.errors import TrainingError

UNTOUCHED = "checkpoints already written are untouched"


class WriteError(TrainingError):
    """A file of the run could not be written."""


def write_failure(path: Path, exc: BaseException, kept: str = "") -> str:
    """``could not write PATH: [Errno 28] No space left on device (ENOSPC); KEPT; FIX``."""
    text = str(exc)
    if isinstance(exc, OSError) and exc.errno is not None:
        name = errno.errorcode.get(exc.errno, "")
        text = f"[Errno {exc.errno}] {exc.strerror or exc}" + (f" ({name})" if name else "")
    fix = ""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "; free space on that disk (or set run.output_root elsewhere), then resume=true"
    return f"could not write {path}: {text}" + (f"; {kept}" if kept else "") + fix


@contextlib.contextmanager
def writing(path: Path, kept: str = UNTOUCHED) -> Iterator[None]:
    """Turn an OSError inside the block into a :class:`WriteError` naming ``path``."""
    try:
        yield
    except OSError as exc:
        raise WriteError(write_failure(path, exc, kept)) from exc


class RunLogFile(logging.FileHandler):
    """``train.log``: a write that fails detaches the handler and raises :class:`WriteError`
    from the logging call (logging would print a "--- Logging error ---" traceback and go on)."""

    def __init__(self, path: Path, logger: logging.Logger):
        with writing(path):
            super().__init__(path)
        self.logger = logger
        logger.addHandler(self)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        import sys

        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handleError(record)
            return
        self.detach()
        raise WriteError(write_failure(Path(self.baseFilename), exc, UNTOUCHED)) from exc

    def detach(self) -> None:
        self.logger.removeHandler(self)
        with contextlib.suppress(OSError):
            self.close()


def first_fault(exc: BaseException) -> BaseException:
    """The earliest :class:`WriteError` among ``exc`` and the errors it was raised while
    handling: a full disk fails the metrics file first, then the clean-up's own writes; the
    first is the one to report."""
    found, seen = exc, set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if isinstance(node, WriteError):
            found = node
        node = node.__context__
    return found
