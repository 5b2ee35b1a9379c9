"""A recipe, composed and validated against the loaded plugins: what `vssl train` runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vssl_core.plugins import PluginHost
from vssl_core.recipe import (
    ComposedRecipe,
    RecipeNotFoundError,
    add_default_provenance,
    compose_recipe,
    display_path,
)
from vssl_core.schema import (
    BatchSection,
    CheckpointSection,
    DataSection,
    LogSection,
    OptimSection,
    RunSection,
    ScheduleSection,
    TrainSection,
    to_section,
    validate_recipe,
)


@dataclass
class Config:
    path: Path
    data: dict  # validated, defaults filled: this is what gets saved in the run directory
    provenance: dict[str, str]

    def section(self, cls: type):
        name = {
            RunSection: "run",
            DataSection: "data",
            BatchSection: "batch",
            OptimSection: "optim",
            ScheduleSection: "schedule",
            TrainSection: "train",
            CheckpointSection: "checkpoint",
            LogSection: "log",
        }[cls]
        return to_section(cls, self.data[name])

    @property
    def run(self) -> RunSection:
        return self.section(RunSection)

    @property
    def batch(self) -> BatchSection:
        return self.section(BatchSection)

    @property
    def optim(self) -> OptimSection:
        return self.section(OptimSection)

    @property
    def schedule(self) -> ScheduleSection:
        return self.section(ScheduleSection)

    @property
    def train(self) -> TrainSection:
        return self.section(TrainSection)

    @property
    def checkpoint(self) -> CheckpointSection:
        return self.section(CheckpointSection)

    @property
    def log(self) -> LogSection:
        return self.section(LogSection)

    @property
    def loader(self) -> DataSection:
        return self.section(DataSection)


def compose(recipe: str | Path, overrides: Sequence[str], host: PluginHost) -> ComposedRecipe:
    """The recipe with its defaults and overrides, found in the plugins' recipe folders; a
    recipe not found names the plugins that failed to load (one of them may provide it)."""
    try:
        return compose_recipe(recipe, overrides, host.recipe_search_paths())
    except RecipeNotFoundError as exc:
        note = host.failed_note()
        raise RecipeNotFoundError(f"{exc}\n{note}" if note else str(exc)) from None


def load_config(recipe: str | Path, overrides: Sequence[str], host: PluginHost) -> Config:
    composed = compose(recipe, overrides, host)
    data = validate_recipe(composed.data, host.registry, source=display_path(composed.path))
    return Config(composed.path, data, add_default_provenance(data, composed.provenance))
