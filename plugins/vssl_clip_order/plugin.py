"""VCOP clip order prediction as a vssl plugin: its objective and its recipe fragment."""

from pathlib import Path

from vssl_clip_order import objective
from vssl_core import hookimpl


@hookimpl
def vssl_register_components(registry, plugin):
    registry.add_module(objective, plugin)


@hookimpl
def vssl_recipe_search_paths():
    return [Path(__file__).parent / "recipes"]
