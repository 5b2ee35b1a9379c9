"""Subcommands defined outside ``main.py``: by core modules and by plugins (the
``vssl_cli_commands`` hook), so that e.g. the ffcv plugin can add ``vssl data pack``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    return None


@dataclass(frozen=True)
class CliCommand:
    """One subcommand. ``name`` is a command ("eval") or a group and its subcommand
    ("data pack"); ``configure`` adds its arguments; ``run(args, host)`` returns the exit code."""

    name: str
    help: str
    run: Callable[[argparse.Namespace, Any], int]
    configure: Callable[[argparse.ArgumentParser], None] = field(default=_no_arguments)
    description: str = ""
    takes_overrides: bool = False  # its --help then explains key.path=value overrides

    def __post_init__(self) -> None:
        if not 1 <= len(self.name.split()) <= 2:
            raise ValueError(f"command name {self.name!r}: use 'cmd' or 'group cmd'")


GROUP_HELP = {"data": "Datasets on disk: write synthetic data, check videos, pack to ffcv."}


def add_commands(
    sub: argparse._SubParsersAction, commands: list[CliCommand], epilog: str
) -> dict[str, argparse._SubParsersAction]:
    """Add ``commands`` to ``sub``; two-word names go under a group parser made on first use.
    ``epilog`` (how overrides work) goes to the commands that take overrides."""
    groups: dict[str, argparse._SubParsersAction] = {}
    for cmd in commands:
        words = cmd.name.split()
        target = sub
        if len(words) == 2:
            if words[0] not in groups:
                text = GROUP_HELP.get(words[0], f"{words[0]} commands")
                g = sub.add_parser(words[0], help=text, description=text)
                groups[words[0]] = g.add_subparsers(
                    dest=f"{words[0]}_command", required=True, metavar="COMMAND"
                )
            target = groups[words[0]]
        p = target.add_parser(
            words[-1],
            help=cmd.help,
            description=cmd.description or cmd.help,
            epilog=epilog if cmd.takes_overrides else None,
        )
        cmd.configure(p)
        p.set_defaults(handler=cmd.run)
    return groups
