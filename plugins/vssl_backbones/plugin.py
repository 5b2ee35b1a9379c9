"""Built-in backbones, registered through the `vssl` entry-point group like any plugin."""

from vssl_backbones import vit
from vssl_core import hookimpl


@hookimpl
def vssl_register_components(registry, plugin):
    registry.add_module(vit, plugin)
