"""3DRotNet rotation prediction as a vssl plugin: its objective and its recipe fragment."""

from pathlib import Path

from vssl_core import hookimpl
from vssl_rotation import objective


@hookimpl
def vssl_register_components(registry, plugin):
    registry.add_module(objective, plugin)


@hookimpl
def vssl_recipe_search_paths():
    return [Path(__file__).parent / "recipes"]
