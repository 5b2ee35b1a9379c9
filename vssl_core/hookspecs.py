"""Hook specifications: every way a plugin can extend vssl.

A plugin is a module (or object) with functions marked ``@vssl_core.hookimpl`` whose names are
hooks below. It is discovered through the ``vssl`` entry-point group. ``docs/reference/hooks.md`` is rendered
from these docstrings (``python -m vssl_core.cli.docs``); keep them exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from vssl_core.cli.commands import CliCommand
    from vssl_core.convert import CheckpointFormat
    from vssl_core.engine.run import RunContext
    from vssl_core.registry import Registry

PROJECT = "vssl"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def vssl_register_components(registry: Registry, plugin: str) -> None:
    """Register this plugin's components.

    Called once per plugin, right after all plugins are loaded and before any recipe is read.
    Call ``registry.add_module(module, plugin)`` for modules whose classes or factories carry the
    ``@component(kind)`` mark, or ``registry.add(obj, plugin, kind=..., name=...)``.
    ``plugin`` is this plugin's name, recorded with every entry. Returns nothing. A name already
    registered by another plugin raises an error naming both plugins.
    """


@hookspec
def vssl_recipe_search_paths() -> list[str | Path]:
    """Return folders in which recipe files are looked up by relative name.

    Called when a recipe (or a ``defaults:`` entry) is not found relative to the file that names
    it. Results of all plugins are searched in plugin load order; the first folder holding the
    file wins. Return an empty list to contribute nothing.
    """


@hookspec
def vssl_cli_commands() -> list[CliCommand]:
    """Subcommands this plugin adds to the ``vssl`` command line (see
    :class:`vssl_core.cli.commands.CliCommand`); e.g. the ffcv plugin adds ``vssl data pack``.
    A name that clashes with a built-in or another plugin's command is an error."""


@hookspec
def vssl_checkpoint_formats() -> list[CheckpointFormat]:
    """Checkpoint layouts this plugin can convert into vssl backbones (see
    :class:`vssl_core.convert.CheckpointFormat`); e.g. the VideoMAE plugin adds ``videomae`` and
    ``videomae_hf``.

    Called whenever formats are looked up (``vssl convert``, ``load_backbone_checkpoint``, an
    eval recipe's ``checkpoint=``). Results of all plugins are combined; a format name used by
    two plugins (or the core's own ``vssl``) is an error. Each format maps every source key to a
    backbone key or drops it with a stated reason; ``detect`` lets ``--from auto`` pick it and
    must not claim another format's checkpoints. Return an empty list to contribute nothing.
    """


@hookspec
def vssl_train_start(run: RunContext) -> None:
    """Called on every rank once the model, optimizer and data are built, before the first step
    (also after a resume). ``run`` holds the resolved recipe, the run directory, the rank, the
    world size, the batch layout and the step the run starts from. Returns nothing.
    """


@hookspec
def vssl_step_end(run: RunContext, step: int, metrics: dict[str, float] | None) -> None:
    """Called on every rank after each optimizer step; ``step`` counts completed steps.

    ``metrics`` (loss, lr, clips/s, and what the objective reports, averaged over ranks and
    since the last log) is a dict on logging steps (every ``log.every_steps``, the last step,
    and every step where the recipe's ``monitor`` is measured, whose values it adds) and
    ``None`` on the others, so that implementations do not force a device sync on every step.
    With a monitor it is also called once before the first step of a new run, with ``step``
    0 and the monitor's values only. Read keys with ``.get``: a window whose steps were all
    skipped (non-finite loss) has no ``loss``.
    """


@hookspec
def vssl_checkpoint_saved(run: RunContext, path: Path, step: int) -> None:
    """Called on rank 0 after a checkpoint was written atomically to ``path`` at ``step``."""


@hookspec
def vssl_train_end(run: RunContext, step: int, status: str) -> None:
    """Called on every rank when training stops. ``status`` is ``"completed"``, ``"preempted"``
    (SIGTERM: a checkpoint was saved) or ``"failed"`` (an exception is propagating).
    """


def hook_names() -> list[str]:
    """Hook names in definition order (registration, then the training lifecycle)."""
    return [n for n in globals() if n.startswith("vssl_")]


def render_markdown() -> str:
    """The hook reference for docs/hooks.md, built from the docstrings above."""
    import dataclasses
    import inspect

    from vssl_core.engine.run import RunContext

    out = [
        "# Hook reference",
        "",
        "Generated from `vssl_core/hookspecs.py` by "
        "`python -m vssl_core.cli.docs`. Implement a hook with a function of the same name "
        "marked `@vssl_core.hookimpl`; accept only the arguments you need.",
        "",
    ]
    for name in hook_names():
        fn: Any = globals()[name]
        sig = str(inspect.signature(fn)).replace("'", "")
        out += [f"## `{name}{sig}`", "", inspect.cleandoc(fn.__doc__ or ""), ""]
    out += [
        "## The `run` object (`vssl_core.engine.run.RunContext`)",
        "",
        inspect.cleandoc(RunContext.__doc__ or ""),
        "",
        "| attribute | type |",
        "|---|---|",
    ]
    out += [f"| `{f.name}` | `{f.type}` |" for f in dataclasses.fields(RunContext)]
    out += ["| `is_main` | `bool` (rank 0) |", "| `checkpoint_dir` | `Path` |", ""]
    return "\n".join(out)
