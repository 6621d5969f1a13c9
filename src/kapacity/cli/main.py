"""Entry point of the ``kapacity`` command: a Click group that subcommand modules extend."""

from __future__ import annotations

import click

from kapacity import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kapacity")
def cli() -> None:
    """kapacity: Kapacitor-compatible alerting with a first-class Kafka event handler."""


def _register() -> None:
    """Attach the subcommands; each lives in its own module under kapacity.cli."""
    from kapacity.cli import commands

    commands.register(cli)


def main() -> None:
    _register()
    cli()
