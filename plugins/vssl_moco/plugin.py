"""Video MoCo v2 (momentum contrast on clips) as a vssl plugin: its objective and recipe fragments."""

from pathlib import Path

from vssl_core import hookimpl
from vssl_moco import objective


@hookimpl
def vssl_register_components(registry, plugin):
    registry.add_module(objective, plugin)


@hookimpl
def vssl_recipe_search_paths():
    return [Path(__file__).parent / "recipes"]
