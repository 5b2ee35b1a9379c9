"""The run object handed to lifecycle hooks: what a logging or monitoring plugin may read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from vssl_core.data.sampler import BatchLayout


@dataclass
class RunContext:
    """What a lifecycle hook may read about the run; ``state`` is free for plugins to use."""

    recipe: dict  # the resolved recipe, every default filled in
    run_dir: Path
    rank: int
    world_size: int
    layout: BatchLayout
    start_step: int
    total_steps: int
    steps_per_epoch: int
    model: nn.Module  # the objective (owning the backbone), unwrapped from DDP
    state: dict[str, Any] = field(default_factory=dict)  # scratch space for plugins

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"
