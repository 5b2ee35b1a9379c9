"""Videos that fail to decode during training: counted, logged once by path, replaced by a
deterministic other sample, and a clear stop when too many fail.

Never an unbounded loop (at most ``max_retries`` replacements per sample), never a silent skip
(each bad video is logged, counted per batch in ``Batch.extra``, and listed in the final error).
Replacements are a pure function of the sample's key and the attempt number, so a sample looks
the same on any rank, in any worker and after a resume.

The counts live in the process that loads (each DataLoader worker, or the training process with
``num_workers=0``); the stop rule applies to each process's own counts.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field

from vssl_core.interfaces import VideoDecodeError
from vssl_core.random import numpy_rng

log = logging.getLogger("vssl.data")

STREAM_REPLACEMENT = 0x5200  # + attempt: apart from the clip's own streams (1, 2, 4)
MIN_SAMPLES = 100  # the stop rule judges fewer loads as if there had been this many
SHOWN_PATHS = 5  # failing paths named in the error


class DataLoadingError(RuntimeError):
    """Too many videos failed to decode; the message lists them and says how to fix it.

    Raised in a DataLoader worker, it reaches the training process through torch, which
    rebuilds it from one string: "Caught DataLoadingError in DataLoader worker process 0.",
    then the worker's whole traceback, the message last. The message is put back first (naming
    the worker) and the traceback kept in ``worker_traceback`` (shown with VSSL_DEBUG=1).
    """

    def __init__(self, message: str = ""):
        self.worker_traceback = ""
        found = _WORKER_WRAPPED.match(message)
        if found is not None:
            original = found.group("traceback").rstrip().splitlines()
            last = next(
                (i for i in range(len(original) - 1, -1, -1) if _OWN_LINE.match(original[i])), None
            )
            if last is not None:
                self.worker_traceback = message
                text = _OWN_LINE.sub("", "\n".join(original[last:]), count=1)
                message = f"{text} (in data-loader worker {found.group('worker')})"
        super().__init__(message)


_WORKER_WRAPPED = re.compile(
    r"Caught DataLoadingError in DataLoader worker process (?P<worker>\d+)\.\s*"
    r"\nOriginal (?P<traceback>Traceback.*)",
    re.S,
)
_OWN_LINE = re.compile(r"^(?:[\w.]+\.)?DataLoadingError: ")


def is_decode_error(exc: BaseException) -> bool:
    """Errors that mean "this video is unusable", as opposed to a bug in vssl or a plugin:
    :class:`VideoDecodeError` (what decoders raise), ``OSError`` (missing or unreadable file),
    ``EOFError`` (truncated stream) and PyAV's ``FFmpegError`` family, for decoders that let it
    escape. Anything else propagates: catching e.g. ``ValueError`` would hide real bugs."""
    if isinstance(exc, (VideoDecodeError, OSError, EOFError)):
        return True
    return any(
        c.__name__ == "FFmpegError" and c.__module__.split(".")[0] == "av"
        for c in type(exc).__mro__
    )


def replacement_index(key: int, attempt: int, num_samples: int) -> int:
    """The sample tried instead at ``attempt`` (1, 2, ...) for the sample with ``key``."""
    return int(numpy_rng(key, STREAM_REPLACEMENT + attempt).integers(num_samples))


def allowed_failures(loads: int, max_fraction: float) -> float:
    """Failures tolerated after ``loads`` loads: the allowed share plus three binomial standard
    deviations, judged on at least ``MIN_SAMPLES`` loads. A dataset failing at exactly the
    allowed rate then practically never stops, one failing clearly above it stops within a few
    hundred loads, and ``max_fraction=0`` stops at the first failure."""
    n = max(loads, MIN_SAMPLES)
    return max_fraction * n + 3.0 * math.sqrt(max_fraction * (1.0 - max_fraction) * n)


@dataclass
class FailureTracker:
    """This process's count of loads and decode failures, and the videos known to be bad."""

    max_fraction: float = 0.01
    loads: int = 0
    failures: int = 0
    bad: dict[int, str] = field(default_factory=dict)  # index -> "path: reason"

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_fraction <= 1.0:
            raise ValueError(
                f"data.max_failed_fraction={self.max_fraction}: use a fraction in [0, 1] "
                "(0.01 tolerates 1% of videos failing to decode)"
            )

    def known_bad(self, index: int) -> bool:
        return index in self.bad

    def record_ok(self) -> None:
        self.loads += 1

    def record_failure(self, index: int, path: str, exc: BaseException | None) -> None:
        """Count a failed load; log the video the first time this process sees it fail."""
        self.loads += 1
        self.failures += 1
        if index not in self.bad:
            reason = f"{type(exc).__name__}: {exc}" if exc is not None else "known bad"
            self.bad[index] = f"{path} ({reason})"
            log.warning("video %s failed to decode and is replaced: %s", path, reason)
        if self.failures > allowed_failures(self.loads, self.max_fraction):
            raise DataLoadingError(self._too_many())

    def _too_many(self) -> str:
        shown = list(self.bad.values())[:SHOWN_PATHS]
        more = len(self.bad) - len(shown)
        return (
            f"{self.failures} of {self.loads} video loads in this loader process failed to "
            f"decode ({self.failures / self.loads:.1%}; {len(self.bad)} distinct videos), more "
            f"than data.max_failed_fraction={self.max_fraction:g} allows. Failing videos: "
            + "; ".join(shown)
            + (f"; and {more} more" if more > 0 else "")
            + ". Fix: run `vssl data check RECIPE --out quarantine.txt` to find every bad "
            "video, then train with data.dataset.quarantine=quarantine.txt (or re-encode "
            "the files); to tolerate more failures, raise data.max_failed_fraction."
        )

    def exhausted(self, index: int, tried: list[int]) -> DataLoadingError:
        """The error when a sample and all its replacements failed."""
        named = "; ".join(self.bad.get(i, str(i)) for i in dict.fromkeys(tried))
        return DataLoadingError(
            f"sample {index} and its {len(tried) - 1} replacements all failed to decode: "
            f"{named}. Most of the dataset seems unreadable: check data.dataset (root, "
            "annotation files) and data.decoder, and run `vssl data check RECIPE`."
        )
