"""Registers the objective and the recipe folder, through vssl's public hooks only."""

from pathlib import Path

from vssl_core import hookimpl
from vssl_speed import objective


@hookimpl
def vssl_register_components(registry, plugin):
    registry.add_module(objective, plugin)


@hookimpl
def vssl_recipe_search_paths():
    return [Path(__file__).parent / "recipes"]
