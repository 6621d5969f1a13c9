"""Registry of the CLI's subcommands (one module per group of verbs)."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add every subcommand to ``group``."""
    del group
