"""``[queue]`` / ``queue:``: every key parses, the seed's examples load, Java-only keys are located."""

from __future__ import annotations

import textwrap

import pytest
from pydantic import SecretStr

from kapacity.cli.config_cmd import effective_config
from kapacity.config import Config, ConfigError, parse_config
from kapacity.queue import Kind


def yaml(text: str) -> Config:
    return parse_config(textwrap.dedent(text), "yaml", "kapacity.yaml")


def problems(text: str, fmt: str = "yaml") -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(textwrap.dedent(text), fmt, "kapacity." + fmt)  # type: ignore[arg-type]
    return [str(p) for p in info.value.problems]


def test_defaults_are_embedded_with_kestras_kafka_defaults() -> None:
    q = Config().queue
    assert q.type == "embedded"
    k = q.kafka
    assert (k.partitions(Kind.POINTS), k.replication_factor(Kind.POINTS)) == (16, 1)
    assert k.naming().topic(Kind.EVENTS) == "kapacity_events"
    assert k.naming().group(Kind.EVENTS, "h") == "kapacity_events_h"
    assert k.consumer_properties() == {
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": "false",
    }
    assert k.producer_properties() == {"acks": "all", "compression.type": "lz4", "message.max.bytes": "10485760"}
    assert k.stream_properties()["processing.guarantee"] == "exactly_once"
    assert k.state_dir("/var/lib/kapacity").as_posix() == "/var/lib/kapacity/kafka-streams"
    assert q.sqlite_path("/data").as_posix() == "/data/queue.db"
    assert k.message_protection.soft_limit is None and k.message_protection.hard_limit is None


def test_retention_is_explicit_for_work_and_unlimited_compacted_for_definitions_and_state() -> None:
    k = Config().queue.kafka
    for kind in (Kind.POINTS, Kind.EVENTS, Kind.LOGS, Kind.DEAD_LETTER):
        assert k.topic_properties(kind) == {"cleanup.policy": "delete", "retention.ms": "604800000"}
    for kind in (Kind.TASKS, Kind.HANDLERS, Kind.TOPIC_STATE, Kind.ALERT_STATE):
        assert k.topic_properties(kind) == {"cleanup.policy": "compact", "retention.ms": "-1"}


def test_seed_minimal_example_loads() -> None:
    cfg = yaml(
        """
        queue:
          type: kafka
          kafka:
            client:
              properties:
                bootstrap.servers: "localhost:9092"
        """
    )
    assert cfg.queue.type == "kafka"
    assert cfg.queue.kafka.client_properties() == {"bootstrap.servers": "localhost:9092"}


SEED_SSL = """
queue:
  type: kafka
  kafka:
    client:
      properties:
        bootstrap.servers: "host:port"
        security.protocol: "SSL"
        ssl.endpoint.identification.algorithm: ""
        ssl.key.password: "<your-password>"
        ssl.keystore.location: "/etc/ssl/private/keystore.p12"
        ssl.keystore.password: "<your-password>"
        ssl.keystore.type: "PKCS12"
        ssl.truststore.location: "/etc/ssl/private/truststore.jks"
        ssl.truststore.password: "<your-password>"
"""


def test_seed_ssl_example_names_the_jks_truststore_and_the_remedy() -> None:
    assert problems(SEED_SSL) == [
        "kapacity.yaml:14:9: queue.kafka.client.properties.ssl.truststore.location: librdkafka "
        "cannot read JKS truststores; convert it to PEM (keytool -exportcert -rfc) and set "
        "ssl.ca.location"
    ]


def test_seed_ssl_example_with_a_pem_truststore_translates_to_librdkafka() -> None:
    text = SEED_SSL.replace("truststore.jks", "ca.pem").replace(
        '        ssl.truststore.password: "<your-password>"\n', ""
    )
    props = yaml(text).queue.kafka.client_properties()
    assert props == {
        "bootstrap.servers": "host:port",
        "security.protocol": "SSL",
        "ssl.endpoint.identification.algorithm": "none",
        "ssl.key.password": "<your-password>",
        "ssl.keystore.location": "/etc/ssl/private/keystore.p12",
        "ssl.keystore.password": "<your-password>",
        "ssl.ca.location": "/etc/ssl/private/ca.pem",
    }


def test_passwords_are_secrets_in_the_model() -> None:
    text = SEED_SSL.replace("truststore.jks", "ca.pem").replace(
        '        ssl.truststore.password: "<your-password>"\n', ""
    )
    cfg = yaml(text)
    assert isinstance(cfg.queue.kafka.client.properties["ssl.key.password"], SecretStr)
    assert "<your-password>" not in repr(cfg)
    shown = effective_config(cfg)["queue"]["kafka"]["client"]["properties"]
    assert shown["ssl.key.password"] == "**********"  # `kapacity config show`
    assert cfg.queue.kafka.client_properties()["ssl.key.password"] == "<your-password>"


def test_seed_defaults_example_and_every_key_parses() -> None:
    cfg = yaml(
        """
        data_dir: /srv/kapacity
        queue:
          type: kafka
          embedded:
            path: /srv/q.db
            lease: 10s
            cleaner-interval: 5s
          kafka:
            client:
              properties:
                bootstrap.servers: "k1:9092,k2:9092"
              loggers:
                - level: INFO
                  type: PRODUCER
                  topic-regexp: "kapacity_(events|points)"
                  key-regexp: .*parallel.*
                  value-regexp: .*parallel.*
                - level: trace
                  type: consumer_commit
            defaults:
              topic:
                partitions: 8
                replication-factor: 3
                properties:
                  min.insync.replicas: "2"
              consumer:
                properties:
                  isolation.level: "read_committed"
                  auto.offset.reset: "earliest"
                  enable.auto.commit: "false"
                  session.timeout.ms: 6000
              producer:
                properties:
                  acks: "all"
                  compression.type: "lz4"
                  max.request.size: "10485760"
              stream:
                properties:
                  processing.guarantee: "exactly_once"
                  replication.factor: "${kestra.kafka.defaults.topic.replication-factor}"
                  acks: "all"
                  compression.type: "lz4"
                  max.request.size: "10485760"
                  state.dir: "/tmp/kafka-streams"
              topic-prefix: "uat_kapacity_"
              consumer-prefix: "uat_kapacity"
              topics:
                events:
                  properties:
                    retention.ms: "86400000"
            topics:
              points:
                name: metrics_in
                partitions: 32
                replication-factor: 2
                properties:
                  retention.ms: "3600000"
            stream:
              properties:
                state.dir: /srv/kapacity/streams
            message-protection:
              soft-limit: 1048576
              hard-limit: 10485760
        """
    )
    q = cfg.queue
    k = q.kafka
    assert (q.embedded.path, q.embedded.lease, q.embedded.cleaner_interval) == ("/srv/q.db", 10**10, 5 * 10**9)
    assert [r.level for r in k.client.loggers] == ["INFO", "TRACE"]
    assert k.client.loggers[1].type == "CONSUMER_COMMIT"
    n = k.naming()
    assert n.topic(Kind.POINTS) == "metrics_in"  # an explicit name is used verbatim
    assert n.topic(Kind.EVENTS) == "uat_kapacity_events"
    assert n.group(Kind.EVENTS, "h") == "uat_kapacityevents_h"
    assert n.transactional_id("engine", 1) == "uat_kapacityengine_1"
    assert (k.partitions(Kind.POINTS), k.replication_factor(Kind.POINTS)) == (32, 2)
    assert (k.partitions(Kind.EVENTS), k.replication_factor(Kind.EVENTS)) == (8, 3)
    assert k.topic_properties(Kind.POINTS)["retention.ms"] == "3600000"
    assert k.topic_properties(Kind.EVENTS) == {
        "cleanup.policy": "delete",
        "retention.ms": "86400000",
        "min.insync.replicas": "2",
    }
    assert k.consumer_properties()["session.timeout.ms"] == "6000"
    assert k.producer_properties()["message.max.bytes"] == "10485760"
    assert k.state_dir(cfg.data_dir).as_posix() == "/srv/kapacity/streams"
    assert (k.message_protection.soft_limit, k.message_protection.hard_limit) == (1048576, 10485760)


def test_toml_spelling_with_unquoted_dotted_property_names() -> None:
    cfg = parse_config(
        textwrap.dedent(
            """
            [queue]
            type = "kafka"
            [queue.kafka.client.properties]
            bootstrap.servers = "k:9092"
            "security.protocol" = "PLAINTEXT"
            [queue.kafka.defaults]
            topic-prefix = "a_"
            [queue.kafka.topics.alert-state]
            partitions = 4
            [queue.kafka.message-protection]
            soft-limit = 1048576
            """
        )
    )
    k = cfg.queue.kafka
    assert k.client_properties() == {"bootstrap.servers": "k:9092", "security.protocol": "PLAINTEXT"}
    assert k.partitions(Kind.ALERT_STATE) == 4
    assert k.naming().topic(Kind.ALERT_STATE) == "a_alert_state"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("max.poll.records", "500", "max.poll.records: Java-only property with no librdkafka equivalent"),
        ("sasl.jaas.config", "x", "set sasl.mechanism with sasl.username and sasl.password"),
        ("ssl.keystore.type", "JKS", "librdkafka cannot read JKS keystores; convert it to PKCS12"),
        ("ssl.truststore.location", "/t.p12", "librdkafka cannot read PKCS12 truststores"),
        ("processing.guarantee", "exactly_once", "set it under queue.kafka.stream.properties"),
    ],
)
def test_java_only_keys_are_reported_at_their_place(key: str, value: str, message: str) -> None:
    text = f"""
    queue:
      kafka:
        defaults:
          producer:
            properties:
              {key}: "{value}"
    """
    (only,) = problems(text)
    assert only.startswith(f"kapacity.yaml:7:11: queue.kafka.defaults.producer.properties.{key}: ")
    assert message in only


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("queue:\n  type: rabbit\n", 'kapacity.yaml:2:3: queue.type: invalid type "rabbit"; valid choices: embedded, kafka'),
        ("queue:\n  type: kafka\n", "queue type \"kafka\" needs bootstrap.servers"),
        (
            "queue:\n  kafka:\n    topics:\n      executions: {partitions: 2}\n",
            'unknown queue kind "executions"; valid choices: points, tasks, handlers, events',
        ),
        (
            "queue:\n  kafka:\n    client:\n      loggers:\n        - type: PRODUCER\n",
            "queue.kafka.client.loggers[0]: level: required key is missing",
        ),
        (
            "queue:\n  kafka:\n    client:\n      loggers:\n        - {level: LOUD}\n",
            'invalid level "LOUD"; valid choices: ERROR, WARN, INFO, DEBUG, TRACE',
        ),
        (
            "queue:\n  kafka:\n    client:\n      loggers:\n        - {level: INFO, type: ADMIN}\n",
            'invalid type "ADMIN"; valid choices: CONSUMER, PRODUCER, CONSUMER_COMMIT, PRODUCER_ACK',
        ),
        (
            "queue:\n  kafka:\n    client:\n      loggers:\n        - {level: INFO, key-regexp: '(('}\n",
            'invalid regular expression "(("',
        ),
        (
            "queue:\n  kafka:\n    message-protection: {soft-limit: 100, hard-limit: 10}\n",
            "hard-limit (10) must be at least soft-limit (100)",
        ),
        ("queue:\n  kafka:\n    defaults:\n      topic: {partitions: 0}\n", "must be at least 1"),
        ("queue:\n  kafka:\n    defaults:\n      topic-prefixx: a\n", 'did you mean "topic-prefix"?'),
    ],
)
def test_invalid_values_are_located_and_list_choices(text: str, message: str) -> None:
    found = problems(text)
    assert any(message in p for p in found), found
    assert all(p.startswith("kapacity.yaml:") for p in found)
