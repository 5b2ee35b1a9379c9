"""Built-in datasets, registered through the `vssl` entry-point group like any plugin: the
embedded synthetic videos, real datasets read from their official annotation files, and the
`vssl data synth` command that writes synthetic videos in those datasets' layouts."""

from vssl_core import hookimpl
from vssl_datasets import (
    charades,
    gym,
    hmdb51,
    kinetics,
    moving_shapes,
    ssv2,
    synth_disk,
    ucf101,
    ucfrep,
    video_folder,
    video_list,
)

DATASET_MODULES = (
    moving_shapes,
    ucf101,
    hmdb51,
    kinetics,
    ssv2,
    gym,
    charades,
    ucfrep,
    video_list,
    video_folder,
)


@hookimpl
def vssl_register_components(registry, plugin):
    for module in DATASET_MODULES:
        registry.add_module(module, plugin)


@hookimpl
def vssl_cli_commands():
    return [synth_disk.COMMAND]
