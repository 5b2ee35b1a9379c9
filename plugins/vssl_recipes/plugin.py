"""Registers the recipe folder through the same hook every method plugin uses."""

from pathlib import Path

from vssl_core import hookimpl

# resolved: in a checkout the link's target, so messages name the files users edit
RECIPES = (Path(__file__).parent / "recipes").resolve()


@hookimpl
def vssl_recipe_search_paths():
    return [RECIPES]
