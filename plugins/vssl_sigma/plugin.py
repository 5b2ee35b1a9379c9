"""SIGMA (Salehi et al., ECCV 2024) as a vssl plugin: its objective and its recipe fragments."""

from pathlib import Path

from vssl_core import hookimpl
from vssl_sigma import converters, objective


@hookimpl
def vssl_register_components(registry, plugin):
    registry.add_module(objective, plugin)


@hookimpl
def vssl_recipe_search_paths():
    return [Path(__file__).parent / "recipes"]


@hookimpl
def vssl_checkpoint_formats():
    return converters.FORMATS
