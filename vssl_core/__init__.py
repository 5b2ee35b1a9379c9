"""vssl core: registries, plugin host, recipes, data interfaces, trainer and CLI."""

from vssl_core.hookspecs import hookimpl
from vssl_core.registry import component

__all__ = ["component", "hookimpl"]
__version__ = "0.1.0"
