"""Value ranges of the trainer's own recipe keys, and the finiteness of every number.

Types alone let through recipes that train wrongly or die later in a traceback:
``train.grad_clip=-1`` trained by gradient ascent, ``train.epochs=0`` "completed" at step 0,
``log.every_steps=0`` died in a ZeroDivisionError, a NaN learning rate trained NaNs, an empty
``run.name`` wrote into the output root. Each key of the schema's sections with a numeric type
has a range here (a test checks that none is left out); components check their own arguments'
ranges when they are built, but a non-finite number is refused anywhere in a recipe.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Range:
    """``low <= value <= high``, with strict ends where ``open_low``/``open_high``; None:
    unbounded."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    hint: str = ""  # what to do instead, for the message

    def holds(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.open_high else value > self.high):
            return False
        return True

    def text(self) -> str:
        """The range as the reference docs state it."""
        return self.describe(self.low if self.low is not None else self.high)

    def describe(self, value: float) -> str:
        """The bound ``value`` breaks (both, for a two-sided range of real extent)."""
        if self.low is not None and self.high is not None and self.high != INT64_MAX:
            left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
            return f"in {left}{_num(self.low)}, {_num(self.high)}{right}"
        if self.low is not None and not (self.high is not None and value > self.high):
            return f"{'>' if self.open_low else '>='} {_num(self.low)}"
        return f"{'<' if self.open_high else '<='} {_num(self.high)}"


def _num(x: float) -> str:
    if x == INT64_MAX:
        return "2**63 - 1"
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


COUNT = Range(1, INT64_MAX)  # a number of things or steps: at least one
NON_NEGATIVE = Range(0.0)
FRACTION = Range(0.0, 1.0)

RANGES: dict[str, Range] = {
    "run.seed": Range(0, INT64_MAX, hint="seeds are non-negative integers"),
    "data.num_workers": Range(0, 1024, hint="0 loads in the training process"),
    "data.prefetch_factor": COUNT,
    "data.max_failed_fraction": FRACTION,
    "data.max_retries": Range(0, 1_000_000),
    "data.repeats": COUNT,
    "batch.global_size": COUNT,
    "batch.per_rank": COUNT,
    "optim.lr": NON_NEGATIVE,
    "optim.lr_base_batch": COUNT,
    "optim.weight_decay": NON_NEGATIVE,
    "optim.betas": Range(
        0.0, 1.0, open_high=True, hint="each beta is in [0, 1], e.g. [0.9, 0.999]"
    ),
    "optim.eps": Range(0.0, open_low=True),
    "optim.momentum": FRACTION,
    "schedule.warmup_epochs": NON_NEGATIVE,
    "schedule.warmup_start_lr": NON_NEGATIVE,
    "schedule.min_lr": NON_NEGATIVE,
    "schedule.milestones": NON_NEGATIVE,
    "schedule.gamma": Range(0.0, open_low=True),
    "train.epochs": COUNT,
    "train.max_steps": Range(1, INT64_MAX, hint="null trains train.epochs instead"),
    "train.grad_clip": Range(0.0, open_low=True, hint="null turns clipping off"),
    "train.collective_timeout_s": Range(1.0, 7 * 24 * 3600.0),
    "checkpoint.every_steps": Range(1, INT64_MAX, hint="null saves only at the end and on a stop"),
    "checkpoint.keep_every_steps": Range(1, INT64_MAX, hint="null keeps no numbered copies"),
    "log.every_steps": COUNT,
    "eval.test_clips": COUNT,
    "eval.test_crops": COUNT,
    "eval.test_short_side": COUNT,
    "eval.test_batch_size": COUNT,
}


def check_ranges(recipe: dict) -> list[str]:
    """One problem per trainer key out of its range (null always passes: it means "off")."""
    problems = []
    for path, bound in RANGES.items():
        section, key = path.split(".")
        value = recipe.get(section, {}).get(key) if isinstance(recipe.get(section), dict) else None
        numbers = value if isinstance(value, list | tuple) else [value]
        bad = [
            v
            for v in numbers
            if isinstance(v, int | float)
            and not isinstance(v, bool)
            and math.isfinite(v)
            and not bound.holds(v)
        ]
        if bad:
            hint = f" ({bound.hint})" if bound.hint else ""
            problems.append(f"{path}: must be {bound.describe(bad[0])}, got {value!r}{hint}")
    return problems


def check_finite(node: Any, path: str = "") -> list[str]:
    """One problem per NaN or infinite number anywhere in the recipe, components included."""
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in check_finite(v, f"{path}.{k}" if path else k)]
    if isinstance(node, list | tuple):
        return [p for i, v in enumerate(node) for p in check_finite(v, f"{path}[{i}]")]
    if isinstance(node, float) and not math.isfinite(node):
        return [f"{path}: must be a finite number, got {node!r}"]
    return []


def check_run_name(run: dict) -> list[str]:
    """The run directory is output_root/name: a name must stay inside the output root."""
    problems = []
    for key in ("name", "output_root"):
        value = run.get(key)
        if isinstance(value, str) and not value.strip():
            problems.append(f"run.{key}: must be a non-empty name, got {value!r}")
    name = run.get("name")
    if not isinstance(name, str) or not name.strip():
        return problems
    parts = name.split("/")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in name:
        problems.append(
            f"run.name: {name!r} must be a relative name inside run.output_root (no leading '/', "
            "no '.', '..' or empty parts); set run.output_root to choose the folder"
        )
    elif any(len(os.fsencode(p)) > 255 for p in parts):
        problems.append(f"run.name: a part of {name[:60]!r}... is longer than 255 bytes")
    return problems
