"""Downstream evaluation as a vssl plugin: heads, the ``supervised`` objective, the protocols
(finetune, linear, knn), the ``knn`` monitor (during pretraining), their recipe fragments (``eval/*.yaml``) and the ``vssl severe``
command (the SEVERE benchmark and its report)."""

from pathlib import Path

from vssl_core import hookimpl
from vssl_eval import heads, knn, monitor, protocols
from vssl_eval.supervised import make_supervised


@hookimpl
def vssl_register_components(registry, plugin):
    registry.add_module(heads, plugin)
    registry.add_module(protocols, plugin)
    registry.add_module(knn, plugin)
    registry.add_module(monitor, plugin)
    # bound to this registry so that its head is built from the registry by name
    registry.add(make_supervised(registry), plugin, kind="objective", name="supervised")


@hookimpl
def vssl_recipe_search_paths():
    return [Path(__file__).parent / "recipes"]


@hookimpl
def vssl_cli_commands():
    from vssl_eval import extract
    from vssl_eval.severe import COMMAND

    return [COMMAND, extract.COMMAND]
