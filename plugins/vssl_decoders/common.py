"""What every decoder backend shares: index checks, frame-rate resampling, errors, optional imports.

Shape-suffix legend: T requested frames, H height, W width.
"""

from __future__ import annotations

import gc
import importlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from types import ModuleType

import numpy as np

from vssl_core.interfaces import VideoDecodeError

# A file's header may count a few frames more than its stream decodes to (timestamps rounded to
# the frame rate, a dropped last frame). Reads that far past the end return the last decodable
# frame; a longer shortfall means a damaged file and raises VideoDecodeError.
END_SLACK_FRAMES = 2

_FIX = "re-encode it (e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`) or drop it from the dataset"


_INHERITED: list[object] = []


def keep_inherited(handle: object | None) -> None:
    """Keep a reader that a forked process inherited alive, never freeing it there: freeing joins
    decoder threads that exist only in the parent (decord aborts, FFmpeg with threads hangs).
    Forked DataLoader workers end with os._exit, so the list is never torn down."""
    if handle is not None:
        _INHERITED.append(handle)


# The same for readers nobody holds: a reader in a reference cycle that the parent had not yet
# collected when it forked would be freed by the child's collector. Freezing in the child puts
# everything it inherited out of the collector's reach (and spares the parent's pages from
# copy-on-write); what the child creates itself is collected as usual.
os.register_at_fork(after_in_child=gc.freeze)


def decode_error(path: str, cause: object) -> VideoDecodeError:
    """The one error type of every decoder: names the file, the cause and what to do."""
    return VideoDecodeError(f"cannot decode video {path}: {cause}; {_FIX}")


def as_fraction(rate: float | Fraction) -> Fraction:
    """A frame rate as an exact fraction (29.97 -> 2997/100, 30000/1001 stays as it is)."""
    return rate if isinstance(rate, Fraction) else Fraction(rate).limit_denominator(1001)


@dataclass(frozen=True)
class Timeline:
    """Frame indices as a Video reports them, mapped onto the frames of the file.

    Without resampling the two coincide. With a target ``fps``, index j is the time j / fps and
    maps to the source frame on screen at that time, floor(j * source_fps / fps): 25 -> 12.5 fps
    takes every other frame, 25 -> 50 fps shows each frame twice.
    """

    source_frames: int
    source_fps: Fraction
    fps: Fraction

    @classmethod
    def make(cls, source_frames: int, source_fps: float | Fraction, fps: float | None) -> Timeline:
        source = as_fraction(source_fps)
        return cls(source_frames, source, source if fps is None else as_fraction(fps))

    @property
    def num_frames(self) -> int:
        # ceil keeps every source frame reachable; j < n * ratio makes floor(j / ratio) < n
        return math.ceil(self.source_frames * self.fps / self.source_fps)

    def source_indices(self, indices_T: np.ndarray) -> np.ndarray:
        if self.fps == self.source_fps:
            return indices_T
        num = self.source_fps.numerator * self.fps.denominator
        den = self.source_fps.denominator * self.fps.numerator
        return indices_T * num // den


def check_fps(fps: float | None) -> None:
    """A decoder's target frame rate must be positive (None: keep the file's own)."""
    if fps is not None and not fps > 0:
        raise ValueError(
            f"fps must be > 0 frames per second (or null to keep the video's), got {fps}"
        )


def check_indices(indices: Sequence[int] | np.ndarray, num_frames: int, path: str) -> np.ndarray:
    """Requested indices as int64 [T]; an IndexError naming the video when one is out of range."""
    indices_T = np.asarray(indices)
    if indices_T.ndim != 1 or (indices_T.size and not np.issubdtype(indices_T.dtype, np.integer)):
        raise TypeError(f"frame indices must be a 1-D sequence of ints, got {indices!r}")
    indices_T = indices_T.astype(np.int64)
    if indices_T.size and (indices_T.min() < 0 or indices_T.max() >= num_frames):
        bad = int(indices_T[(indices_T < 0) | (indices_T >= num_frames)][0])
        raise IndexError(f"frame index {bad} is outside [0, {num_frames}) of video {path}")
    return indices_T


def import_backend(module: str, component: str, extra: str) -> ModuleType:
    """Import an optional decoding library, or say which extra installs it."""
    package = module.split(".")[0]
    try:
        importlib.import_module(package)
        return importlib.import_module(module)
    except Exception as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name == package:
            raise ImportError(
                f"decoder {component!r} needs the {extra} package, which is not installed: "
                f"`pip install 'vssl[{extra}]'`, or use decoder pyav (the default)"
            ) from exc
        raise ImportError(  # installed, but it (or its native libraries) failed to load
            f"decoder {component!r}: {extra} is installed but failed to load "
            f"({type(exc).__name__}: {exc}); reinstall a build that matches this torch and "
            "FFmpeg, or use decoder pyav (the default)"
        ) from exc
