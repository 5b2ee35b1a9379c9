"""Built-in backbones, registered through the `vssl` entry-point group like any plugin."""

from vssl_backbones import cnn3d, converters, resnet3d, vit
from vssl_core import hookimpl


@hookimpl
def vssl_register_components(registry, plugin):
    for module in (vit, resnet3d, cnn3d):
        registry.add_module(module, plugin)


@hookimpl
def vssl_checkpoint_formats():
    return converters.FORMATS
