"""``kapacity kafka tail TOPIC``: print the messages of a Kafka topic (alerts, usually).

Reads the ``[[kafka]]`` cluster from ``--config`` (``--cluster`` picks one; the only
enabled cluster by default) or takes ``--brokers`` directly; with neither, it reads the
broker ``kapacity serve --dev-kafka`` starts (``localhost:9093``). Prints ``key<TAB>value`` per
message, or JSON objects with ``--json``. Stops after ``-n`` messages or on Ctrl-C.
"""

from __future__ import annotations

import json
import sys
import uuid

import click

#: Poll slice: Ctrl-C is noticed within this long.
POLL_S = 0.5


@click.group("kafka")
def kafka_group() -> None:
    """Kafka helpers."""


@kafka_group.command("tail")
@click.argument("topic")
@click.option("--config", "-config", "config_path", type=click.Path(dir_okay=False, exists=True), default=None)
@click.option("--cluster", default="", help="[[kafka]] cluster id (default: the only enabled one)")
@click.option("--brokers", default="",
              help="host:port[,host:port] instead of a config file (default: the --dev-kafka broker, localhost:9093)")
@click.option("--from-beginning", is_flag=True, help="start at the oldest message, not the newest")
@click.option("-n", "count", type=int, default=0, help="stop after N messages (0 = never)")
@click.option("--json", "as_json", is_flag=True, help='one {"key","value","partition","offset"} per line')
def tail(topic: str, config_path: str | None, cluster: str, brokers: str, from_beginning: bool,
         count: int, as_json: bool) -> None:
    """Consume TOPIC and print each message."""
    from confluent_kafka import Consumer

    from kapacity.config import ConfigError, load_config
    from kapacity.config.model import Config
    from kapacity.errors import KapacityError
    from kapacity.kafka.clientconfig import consumer_config

    group = f"kapacity-tail-{uuid.uuid4().hex[:8]}"
    if not brokers and not config_path:
        from kapacity.server.runner import DEV_KAFKA_PORT

        brokers = f"localhost:{DEV_KAFKA_PORT}"
    try:
        if brokers:
            conf: dict[str, object] = {"bootstrap.servers": brokers, "group.id": group}
        else:
            config = load_config(config_path) if config_path else Config()
            conf = dict(consumer_config(config.kafka_cluster(cluster), group))
    except (ConfigError, KapacityError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    conf.update({"auto.offset.reset": "earliest" if from_beginning else "latest",
                 "enable.auto.commit": False, "session.timeout.ms": 6000})
    consumer = Consumer(conf)
    seen = 0
    try:
        consumer.subscribe([topic])
        while count == 0 or seen < count:
            msg = consumer.poll(POLL_S)
            if msg is None:
                continue
            if msg.error():
                click.echo(f"error: {msg.error()}", err=True)
                continue
            seen += 1
            key = (msg.key() or b"").decode("utf-8", "replace")
            value = (msg.value() or b"").decode("utf-8", "replace").rstrip("\n")
            if as_json:
                click.echo(json.dumps({"key": key, "value": value, "partition": msg.partition(),
                                       "offset": msg.offset()}))
            else:
                click.echo(f"{key}\t{value}")
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
