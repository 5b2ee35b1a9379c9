"""`vssl` subcommands of this module (being written)."""

from vssl_core.cli.commands import CliCommand

COMMANDS: list[CliCommand] = []
