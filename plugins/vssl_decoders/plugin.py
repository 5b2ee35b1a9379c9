"""Built-in decoders, registered through the `vssl` entry-point group like any plugin."""

from vssl_core import hookimpl
from vssl_decoders import decord_backend, frames, pyav, torchcodec_backend


@hookimpl
def vssl_register_components(registry, plugin):
    for module in (pyav, frames, torchcodec_backend, decord_backend):
        registry.add_module(module, plugin)
