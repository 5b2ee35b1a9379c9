"""Built-in datasets, registered through the `vssl` entry-point group like any plugin."""

from vssl_core import hookimpl
from vssl_datasets import moving_shapes


@hookimpl
def vssl_register_components(registry, plugin):
    registry.add_module(moving_shapes, plugin)
