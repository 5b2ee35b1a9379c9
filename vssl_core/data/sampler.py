"""The order of samples: global batches, split over ranks and accumulation micro-batches.

Step ``s`` of epoch ``e`` uses the global batch ``perm_e[s*G:(s+1)*G]``; rank ``r`` takes its
contiguous share and splits it into ``accum`` micro-batches. A run with the same global batch
therefore sees the same samples per optimizer step whatever its world size or accumulation, and
the position in the data is a pure function of the step count: resuming mid-epoch is exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchLayout:
    global_size: int
    per_rank: int
    world_size: int
    accum_steps: int

    @classmethod
    def from_recipe(cls, global_size: int, per_rank: int | None, world_size: int) -> BatchLayout:
        per_rank = per_rank or global_size // world_size
        if per_rank < 1 or global_size % (per_rank * world_size):
            if global_size % world_size:
                fix = (
                    f"{global_size} clips cannot be split evenly over {world_size} ranks; use a "
                    f"global size that is a multiple of {world_size} (e.g. "
                    f"{max(world_size, global_size - global_size % world_size)})"
                )
            else:
                fix = (
                    f"set batch.per_rank to a divisor of {global_size // world_size} "
                    "(accumulation makes up the rest)"
                )
            raise ValueError(
                f"batch.global_size={global_size} must be a multiple of batch.per_rank="
                f"{per_rank} x world size {world_size}; {fix}"
            )
        return cls(global_size, per_rank, world_size, global_size // (per_rank * world_size))

    def describe(self) -> str:
        return (
            f"global batch {self.global_size} = {self.per_rank} per rank x {self.world_size} "
            f"rank(s) x {self.accum_steps} accumulation step(s)"
        )


def epoch_permutation(num_samples: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 0x5A3]).permutation(num_samples)


def videos_per_batch(clips: int, repeats: int, what: str) -> int:
    """How many videos make ``clips`` clips when each decoded video gives ``repeats`` of them."""
    if repeats < 1 or clips % repeats:
        raise ValueError(
            f"data.repeats={repeats} must be >= 1 and divide {what}={clips} (each decoded video "
            f"gives {repeats} clips of the batch); choose a divisor of {clips}"
        )
    return clips // repeats


class StepBatchSampler:
    """Yields this rank's micro-batches of ``(epoch, index)`` for steps [start_step, end_step).

    With ``repeats`` k, a micro-batch names ``per_rank / k`` videos (each gives k clips), an
    epoch passes over every video once and so has k times the steps of a plain one.
    """

    def __init__(
        self,
        num_samples: int,
        layout: BatchLayout,
        rank: int,
        seed: int,
        start_step: int,
        end_step: int,
        repeats: int = 1,
    ):
        self.videos_per_step = videos_per_batch(layout.global_size, repeats, "batch.global_size")
        self.videos_per_micro = videos_per_batch(layout.per_rank, repeats, "batch.per_rank")
        self.steps_per_epoch = num_samples // self.videos_per_step
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"the dataset has {num_samples} samples, fewer than one global batch "
                f"({self.videos_per_step} videos); lower batch.global_size or use more samples"
            )
        self.num_samples, self.layout, self.rank, self.seed = num_samples, layout, rank, seed
        self.start_step, self.end_step = start_step, end_step

    def __len__(self) -> int:
        return max(0, self.end_step - self.start_step) * self.layout.accum_steps

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, step within the epoch) of global step ``step``."""
        return divmod(step, self.steps_per_epoch)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        L = self.layout
        perm, perm_epoch = None, -1
        for step in range(self.start_step, self.end_step):
            epoch, in_epoch = self.position(step)
            if epoch != perm_epoch:
                perm, perm_epoch = epoch_permutation(self.num_samples, self.seed, epoch), epoch
            per = self.videos_per_micro
            start = in_epoch * self.videos_per_step + self.rank * per * L.accum_steps
            for a in range(L.accum_steps):
                chunk = perm[start + a * per : start + (a + 1) * per]
                yield [(epoch, int(i)) for i in chunk]
