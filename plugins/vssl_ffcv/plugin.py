"""The ffcv fast data path as a vssl plugin: the ``ffcv_video`` dataset and ``vssl data pack``.

Both register without ffcv installed; using them without it names the `ffcv` extra to install.
"""

from vssl_core import hookimpl
from vssl_ffcv import dataset, pack


@hookimpl
def vssl_register_components(registry, plugin):
    registry.add_module(dataset, plugin)


@hookimpl
def vssl_cli_commands():
    return [pack.PACK_COMMAND]
