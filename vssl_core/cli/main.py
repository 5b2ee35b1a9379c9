"""The `vssl` command line: train, config, validate, info, list, plugins.

Knobs live in recipes, not in flags: every command takes a recipe and ``key.path=value``
overrides. Errors that a user can fix are printed as one clear message (exit code 2), not a
traceback; set VSSL_DEBUG=1 to see the traceback too.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence

from vssl_core.cli.commands import CliCommand, add_commands
from vssl_core.registry import KINDS, RegistryError

EPILOG = "Overrides: key.path=value pairs applied after the recipe (values are YAML), e.g. train.epochs=3."


# Core commands kept in their own modules, each with a ``COMMANDS: list[CliCommand]``.
CORE_COMMAND_MODULES = (
    "vssl_core.cli.data_check_cmd",
    "vssl_core.cli.eval_cmd",
    "vssl_core.cli.convert_cmd",
    "vssl_core.cli.new_plugin_cmd",
)


def _global_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-plugin",
        action="append",
        default=[],
        metavar="NAME",
        help="do not load this plugin (repeatable)",
    )
    p.add_argument(
        "-p",
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="also load this importable module as a plugin (repeatable), e.g. while "
        "developing a plugin that is not installed yet",
    )


def _parser(extra: Sequence[CliCommand] = ()) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vssl",
        description="vssl: video self-supervised learning from plugins and recipes.",
        epilog="Start here: `vssl list recipes` lists the recipes found by name from any folder; "
        "`vssl train rotation.yaml train.max_steps=100` trains one on the embedded synthetic "
        "videos in about a minute on a CPU. `vssl COMMAND --help` explains each command.",
    )
    _global_options(p)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def recipe_cmd(name: str, help_text: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_text, description=help_text, epilog=EPILOG)
        c.add_argument(
            "recipe", help="recipe file (a path, or a name found in the plugins' recipe folders)"
        )
        c.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides")
        return c

    recipe_cmd(
        "train", "Train the recipe's objective. Continue an interrupted run with resume=true."
    )
    c = recipe_cmd("config", "Print the resolved recipe, with every default filled in.")
    c.add_argument(
        "--provenance",
        action="store_true",
        help="mark each key with the file (or the command line) that set it",
    )
    c.add_argument(
        "--gpus",
        type=int,
        metavar="N",
        help="also show, as header comments, the batch layout and the scaled learning rate "
        "that training on N GPUs (the world size, all nodes together) would use",
    )
    recipe_cmd(
        "validate",
        "Check the recipe, all problems at once: its keys and values, then its datasets (their "
        "folders and annotation files are read; no video is decoded, no model is built).",
    )
    recipe_cmd("info", "Parameters and FLOPs per clip of the recipe's model at its input size.")
    c = sub.add_parser(
        "list",
        help="List registered components with their plugins, or the recipes (`vssl list recipes`).",
        description="List registered components and the plugin providing each; `vssl list "
        "recipes` lists the recipes found by name from any folder.",
    )
    c.add_argument("kind", nargs="?", choices=[*KINDS, "recipes"], help="only this kind")
    sub.add_parser(
        "plugins",
        help="List discovered plugins: loaded, failed (with the reason), blocked.",
        description="List discovered plugins: loaded, failed (with the reason), blocked.",
    )
    add_commands(sub, list(extra), EPILOG)
    return p


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Like ``parse_args``, but key=value overrides may also follow a flag (``vssl config R
    --gpus 8 train.epochs=3``): argparse stops filling a positional list at the first flag."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if not hasattr(args, "overrides") or any(
            u.startswith("-") or "=" not in u for u in unknown
        ):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.overrides = [*args.overrides, *unknown]
    return args


def _extra_commands(host) -> list[CliCommand]:
    """The core modules' commands, then the plugins'; a name used twice is an error."""
    import importlib

    found: list[tuple[str, CliCommand]] = []
    for module in CORE_COMMAND_MODULES:
        found += [("vssl", c) for c in importlib.import_module(module).COMMANDS]
    for plugin, result in _plugin_results(host):
        found += [(plugin, c) for c in result]
    owner = {name: "vssl" for name in COMMANDS}
    for plugin, cmd in found:
        if cmd.name in owner or cmd.name.split()[0] in COMMANDS:
            raise RegistryError(
                f"command {cmd.name!r} of plugin {plugin!r} clashes with one of {owner.get(cmd.name, 'vssl')!r}; rename it"
            )
        owner[cmd.name] = plugin
    return [c for _, c in found]


def _plugin_results(host) -> list[tuple[str, list[CliCommand]]]:
    out = []
    for impl in host.pm.hook.vssl_cli_commands.get_hookimpls():
        result = impl.function()
        out.append((impl.plugin_name, list(result or [])))
    return out


def _host(args: argparse.Namespace):
    import importlib

    from vssl_core.plugins import VsslPluginWarning, load_plugins

    extra = []
    for name in args.plugin:
        try:
            extra.append((name, importlib.import_module(name)))
        except ImportError as exc:
            raise RegistryError(f"-p {name}: cannot import plugin module {name!r}: {exc}") from exc
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VsslPluginWarning)
        host = load_plugins(blocked=args.no_plugin, extra=extra)
    for w in caught:
        if issubclass(w.category, VsslPluginWarning):
            print(f"warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return host


def cmd_train(args, host) -> int:
    from vssl_core.config import load_config
    from vssl_core.engine.trainer import train

    config = load_config(args.recipe, args.overrides, host)
    result = train(config, host)
    if int(os.environ.get("RANK", "0")) == 0:
        loss = f", last logged loss {result.last_loss:.4f}" if result.last_loss is not None else ""
        print(f"{result.status} at step {result.step}{loss}; run directory {result.run_dir}")
    return result.exit_code  # 0, or 128 + the signal that pre-empted it (143, 130)


def cmd_config(args, host) -> int:
    from vssl_core.config import load_config
    from vssl_core.recipe import dump_with_provenance, dump_yaml

    config = load_config(args.recipe, args.overrides, host)
    text = (
        dump_with_provenance(config.data, config.provenance)
        if args.provenance
        else dump_yaml(config.data)
    )
    header = f"# {config.path}\n"
    if args.gpus is not None:  # as the trainer computes them, for a world size of args.gpus
        from vssl_core.data.sampler import BatchLayout
        from vssl_core.engine.optim import scale_lr

        if args.gpus < 1:
            raise ValueError(f"--gpus {args.gpus}: give the number of GPUs, 1 or more")
        batch, optim = config.batch, config.optim
        layout = BatchLayout.from_recipe(batch.global_size, batch.per_rank, args.gpus)
        lr = scale_lr(optim, config.schedule, layout.global_size)
        header += f"# on {args.gpus} GPU(s): {layout.describe()}\n"
        header += f"# {lr.describe(optim.lr, layout.global_size, optim.lr_base_batch)}\n"
    print(f"{header}{text}", end="")
    return 0


def cmd_validate(args, host) -> int:
    from vssl_core.build import dataset_problems
    from vssl_core.config import load_config
    from vssl_core.recipe import display_path
    from vssl_core.schema import RecipeValidationError

    config = load_config(args.recipe, args.overrides, host)
    problems = dataset_problems(host.registry, config.data)
    if problems:
        raise RecipeValidationError(problems, display_path(config.path))
    print(f"{config.path}: ok")
    return 0


def cmd_info(args, host) -> int:
    from vssl_core.build import build_objective
    from vssl_core.config import load_config
    from vssl_core.info import describe_model

    config = load_config(args.recipe, args.overrides, host)
    model = build_objective(host.registry, config.data)
    info = describe_model(model, model.views())
    bb, obj = config.data["backbone"]["name"], config.data["objective"]["name"]

    def g(x):
        return "n/a (fvcore could not trace it); " if x is None else f"{x / 1e9:.3f} G"

    print(f"recipe     {config.path}")
    print(f"input      {' x '.join(map(str, info.input_shape[1:]))} (C x T x H x W) per clip")
    print(
        f"backbone   {bb}: {info.backbone_params:,} parameters; {g(info.backbone_flops)}FLOPs per clip (full clip)"
    )
    print(
        f"objective  {obj}: {info.objective_params:,} parameters in all ({info.trainable_params:,} trainable); "
        f"{g(info.objective_flops)}FLOPs per clip (training forward)"
    )
    print(
        "FLOPs are fvcore's count: one multiply-add = 1 FLOP (double it for the hardware-peak convention)."
    )
    heavy = [op for op in info.unsupported_ops if any(w in op for w in HEAVY_OPS)]
    if heavy:
        print(f"warning: not counted (fvcore has no handler): {', '.join(sorted(heavy))}")
    return 0


# ops whose cost matters; fvcore's convention leaves element-wise ops out on purpose
HEAVY_OPS = ("conv", "mm", "matmul", "linear", "einsum", "attention", "bmm")


RECIPE_KINDS = {
    "train": "train (vssl train NAME)",
    "eval": "evaluate (vssl eval NAME checkpoint=PATH)",
    "fragment": "fragments (list them under defaults: in a recipe of your own)",
}


def cmd_list_recipes(host) -> int:
    from vssl_core.recipe_catalog import catalog

    entries = catalog(host.recipe_folders())
    width = max((len(e.name) for e in entries), default=0)
    print("recipes, found by name from any folder (a path to a file of your own works too):")
    for kind, title in RECIPE_KINDS.items():
        chosen = [e for e in entries if e.kind == kind]
        print(f"{title}:" if chosen else f"{title}: (none)")
        for e in chosen:
            needs = f"needs {e.needs}; " if e.needs else ""
            print(f"  {e.name:<{width}} [{e.source}]  {needs}{e.summary}")
    return 0


def cmd_list(args, host) -> int:
    if args.kind == "recipes":
        return cmd_list_recipes(host)
    kinds = [args.kind] if args.kind else list(KINDS)
    for kind in kinds:
        entries = [host.registry.entries[kind][n] for n in host.registry.names(kind)]
        print(f"{kind}s:" if entries else f"{kind}s: (none registered)")
        for e in entries:
            notes = [f"alias of {e.alias_of}"] if e.alias_of else []
            if e.mark.capabilities:
                notes.append("supports " + ", ".join(sorted(e.mark.capabilities)))
            if e.mark.requires:
                notes.append("needs " + ", ".join(sorted(e.mark.requires)))
            extra = f" ({'; '.join(notes)})" if notes else ""
            print(f"  {e.name:<24} [{e.plugin}]{extra}  {e.doc}")
    if not args.kind:
        print("recipes: vssl list recipes")
    return 0


def cmd_plugins(args, host) -> int:
    for p in host.plugins:
        detail = f"{p.components} component(s)" if p.status == "loaded" else p.reason
        print(f"{p.name:<16} {p.status:<8} {p.distribution} {p.version}  {detail}")
    return 0


COMMANDS = {
    "train": cmd_train,
    "config": cmd_config,
    "validate": cmd_validate,
    "info": cmd_info,
    "list": cmd_list,
    "plugins": cmd_plugins,
}


def main(argv: Sequence[str] | None = None) -> int:
    from vssl_core.data.failures import DataLoadingError
    from vssl_core.engine.checkpoint import CheckpointError
    from vssl_core.engine.errors import TrainingError
    from vssl_core.engine.writes import first_fault
    from vssl_core.schema import RecipeError

    pre = argparse.ArgumentParser(add_help=False)
    _global_options(pre)
    first, _ = pre.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        host = _host(first)
        args = _parse(_parser(_extra_commands(host)), argv)
        handler = getattr(args, "handler", None) or COMMANDS[args.command]
        code = handler(args, host)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            _exit_rank(code)  # no teardown of the process group: see _exit_rank
        return code
    except KeyboardInterrupt:  # Ctrl-C twice during training, or once outside of it
        if os.environ.get("VSSL_DEBUG"):
            raise
        print("error: interrupted (Ctrl-C); nothing more was saved", file=sys.stderr)
        return 130
    except (
        RecipeError,
        RegistryError,
        TrainingError,
        CheckpointError,
        DataLoadingError,
        ValueError,
        OSError,  # a missing or unreadable file named in a recipe
    ) as exc:
        if os.environ.get("VSSL_DEBUG"):
            raise
        print(f"error: {first_fault(exc)}", file=sys.stderr)
        code = getattr(exc, "exit_code", 2)  # 2: fix and rerun; 143/130: a start-up stopped
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            _exit_rank(code)
        return code


def _exit_rank(code: int) -> None:
    """End a torchrun rank now, without the interpreter's teardown: destroying a gloo process
    group can deadlock (its work thread waits for the GIL the destructor holds). Seen in the
    fault campaign after a peer died (a rank left running for 18 minutes) and after a run that
    completed (a loaded machine, tests/core/test_distributed.py)."""
    logging.shutdown()  # train.log's last lines
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
