"""``kapacity serve``: run the server (see :mod:`kapacity.server.runner`)."""

from __future__ import annotations

import sys

import click


@click.command("serve")
@click.option("--config", "-config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="config file (TOML or YAML); embedded defaults without one")
@click.option("--dev-kafka", is_flag=True,
              help="with no [[kafka]] cluster configured, start a local Tansu broker as cluster 'dev'")
@click.option("--instance", default=None, metavar="NAME",
              help='with [queue] type = "kafka": this instance\'s name (default: the config\'s hostname); '
                   "unique per instance, stable across restarts")
def serve(config_path: str | None, dev_kafka: bool, instance: str | None) -> None:
    """Run kapacity: the Kapacitor-compatible HTTP API on [http] bind-address (:9092)."""
    from kapacity.config import ConfigError, load_config
    from kapacity.config.model import Config
    from kapacity.errors import KapacityError
    from kapacity.server.runner import serve as run

    from kapacity.cli.config_cmd import runtime_problems
    from kapacity.config.files import check_files

    try:
        config = load_config(config_path) if config_path else Config()
        # What `config check` finds beyond the file itself (certificates that do not load,
        # GSSAPI on a librdkafka without Kerberos) stops start-up too, before anything runs.
        problems = [*check_files(config), *runtime_problems(config)]
        if problems:
            for problem in problems:
                click.echo(f"error: {problem}", err=True)
            sys.exit(2)
        run(config, dev_kafka=dev_kafka, instance=instance)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KapacityError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
