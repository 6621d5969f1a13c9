"""Registry of the CLI's subcommands (one module per group of verbs)."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add every subcommand to ``group``."""
    from kapacity.cli import serve, verbs

    group.add_command(serve.serve)
    from kapacity.cli.config_cmd import config_group  # `kapacity config check|show`

    group.add_command(config_group)
    from kapacity.cli.service_tests import service_tests_group  # `kapacity service-tests kafka`

    group.add_command(service_tests_group)
    from kapacity.cli.runtime_cmd import engine_group  # `kapacity engine run|status`

    group.add_command(engine_group)
    from kapacity.cli.cluster import cluster_group; group.add_command(cluster_group)  # noqa: E702 - `cluster status`
    verbs.register(group)  # client verbs; keep last: it joins an existing `service-tests` group
