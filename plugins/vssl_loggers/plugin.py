"""Experiment trackers as vssl plugins: the ``wandb`` and ``mlflow`` logger components, used with
``log.loggers: [{name: wandb, project: my-project}]``. Their packages are optional: vssl does not
depend on them, and a recipe that names one without its package installed stops before training
with the ``pip install`` line."""

from vssl_core import hookimpl
from vssl_loggers import trackers


@hookimpl
def vssl_register_components(registry, plugin):
    registry.add_module(trackers, plugin)
