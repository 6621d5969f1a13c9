"""``kapacity service-tests kafka``: check a ``[[kafka]]`` cluster by sending one message.

It reads the config file and talks to the cluster directly, with the semantics of
Kapacitor's ``POST /kapacitor/v1/service-tests/kafka`` (success only once the broker
acknowledged, within the cluster's ``timeout``). Once a kapacity server is running,
``kapacity service-tests server kafka`` asks the server instead, which tests the
configuration the server actually loaded.
"""

from __future__ import annotations

import json
import sys

import click

from kapacity.handlers.kafka_service_test import SERVICE_TEST_DEFAULTS


@click.group("service-tests")
def service_tests_group() -> None:
    """Test that services are reachable: ``kafka`` directly from a config file."""


@service_tests_group.command("kafka")
@click.option("--config", "-config", "config_path", type=click.Path(dir_okay=False, exists=True),
              default=None, help="config file (TOML or YAML) with the [[kafka]] clusters")
@click.option("--cluster", default="",
              help="cluster id; default: the only enabled cluster "
                   f'(the server API defaults to "{SERVICE_TEST_DEFAULTS["cluster"]}")')
@click.option("--topic", default=SERVICE_TEST_DEFAULTS["topic"], show_default=True)
@click.option("--key", default=SERVICE_TEST_DEFAULTS["key"], show_default=True)
@click.option("--message", default=SERVICE_TEST_DEFAULTS["message"], show_default=True)
@click.option("--json", "as_json", is_flag=True, help='print {"success": ..., "message": ...}')
def kafka(config_path: str | None, cluster: str, topic: str, key: str, message: str, as_json: bool) -> None:
    """Send MESSAGE with KEY to TOPIC and wait for the broker's acknowledgement.

    Exits 0 on success, 1 with the reason on failure (unknown cluster, authentication
    refused, untrusted certificate, broker unreachable within the cluster's timeout).
    """
    from kapacity.config import ConfigError, load_config
    from kapacity.config.model import Config
    from kapacity.handlers.kafka_service_test import run_kafka_service_test

    try:
        config = load_config(config_path) if config_path else Config()
    except ConfigError as exc:
        click.echo(f"{config_path}: {exc}", err=True)
        sys.exit(2)
    ok, reason = run_kafka_service_test(
        config, {"cluster": cluster, "topic": topic, "key": key, "message": message}
    )
    if as_json:
        click.echo(json.dumps({"success": ok, "message": reason}))
    elif ok:
        click.echo(f"kafka: success (message acknowledged by topic {topic!r})")
    else:
        click.echo(f"kafka: failed: {reason}", err=True)
    if not ok:
        sys.exit(1)
