"""``[queue]`` (TOML) / ``queue:`` (YAML): the internal queue, Kestra-style.

Kestra's ``kestra.kafka.*`` keys live under ``queue.kafka.*``::

    queue:
      type: kafka
      kafka:
        client:
          properties: {bootstrap.servers: "localhost:9092"}
        defaults:
          topic: {partitions: 16, replication-factor: 1}
          topic-prefix: kapacity_
          consumer-prefix: kapacity_
        message-protection: {soft-limit: 1048576, hard-limit: 10485760}

Property layers (later wins): built-in defaults < ``defaults.<client>.properties`` and
``client.properties`` applies to every client. Java property names are translated by
:mod:`kapacity.queue.kafka_props`; a Java-only key is reported at its place. TOML's
unquoted ``bootstrap.servers = "x"`` (nested tables) means the same as the quoted key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator

from kapacity.config.base import Issue, Section
from kapacity.config.durations import DurationNs
from kapacity.queue.kafka_props import (
    PropertyError,
    PropValue,
    flatten,
    is_secret_key,
    plain,
    to_librdkafka,
)
from kapacity.queue.kinds import PARTITIONS_LIKE, SPECS, Kind, parse_kind
from kapacity.queue.naming import DEFAULT_PREFIX, Naming

__all__ = [
    "DEFAULT_CONSUMER_PROPERTIES",
    "DEFAULT_PRODUCER_PROPERTIES",
    "DEFAULT_STREAM_PROPERTIES",
    "LOGGER_LEVELS",
    "LOGGER_TYPES",
    "QUEUE_TYPES",
    "ClientConfig",
    "EmbeddedQueueConfig",
    "KafkaDefaults",
    "KafkaQueueConfig",
    "LoggerRule",
    "MessageProtection",
    "PropertiesSection",
    "QueueConfig",
    "TopicConfig",
    "TopicDefaults",
]

QUEUE_TYPES: Final = ("embedded", "kafka")
LOGGER_LEVELS: Final = ("ERROR", "WARN", "INFO", "DEBUG", "TRACE")
LOGGER_TYPES: Final = ("CONSUMER", "PRODUCER", "CONSUMER_COMMIT", "PRODUCER_ACK")

DEFAULT_CONSUMER_PROPERTIES: Final[Mapping[str, str]] = {
    "isolation.level": "read_committed",
    "auto.offset.reset": "earliest",
    "enable.auto.commit": "false",
}
DEFAULT_PRODUCER_PROPERTIES: Final[Mapping[str, str]] = {
    "acks": "all",
    "compression.type": "lz4",
    "max.request.size": "10485760",
}
DEFAULT_STREAM_PROPERTIES: Final[Mapping[str, str]] = {
    "processing.guarantee": "exactly_once",
    "acks": "all",
    "compression.type": "lz4",
    "max.request.size": "10485760",
}
_SECOND: Final = 1_000_000_000


def _properties(raw: object) -> object:
    if not isinstance(raw, Mapping):
        return raw  # pydantic reports the wrong type
    flat = flatten(raw)
    return {
        k: SecretStr(v) if isinstance(v, str) and is_secret_key(k) else v for k, v in flat.items()
    }


Properties = Annotated[dict[str, PropValue], BeforeValidator(_properties)]


def _empty_is_unset(raw: object) -> object:
    # TOML has no null: "" means "not set" (what `kapacity config show` writes for None).
    return None if raw == "" else raw


OptInt = Annotated[int | None, BeforeValidator(_empty_is_unset)]
OptStr = Annotated[str | None, BeforeValidator(_empty_is_unset)]


def _translate(props: Mapping[str, PropValue], path: tuple[str, ...], stream: bool = False) -> list[Issue]:
    try:
        to_librdkafka(props, allow_stream=stream)
    except PropertyError as exc:
        return [((*path, exc.key), str(exc).removeprefix(f"{exc.key}: "))]
    return []


class PropertiesSection(Section):
    """``{consumer,producer,stream}: {properties: {...}}``."""

    properties: Properties = Field(default_factory=dict)


class TopicDefaults(Section):
    partitions: int = 16
    replication_factor: int = 1
    properties: Properties = Field(default_factory=dict)


class TopicConfig(Section):
    """``topics.<kind>``: a per-kind name and topic settings; unset keys take the defaults."""

    name: OptStr = None
    partitions: OptInt = None
    replication_factor: OptInt = None
    properties: Properties = Field(default_factory=dict)


class LoggerRule(Section):
    """One ``client.loggers`` rule; the first rule that matches a record decides its level."""

    level: str
    type: OptStr = None
    topic_regexp: OptStr = None
    key_regexp: OptStr = None
    value_regexp: OptStr = None

    @field_validator("level")
    @classmethod
    def _level(cls, v: str) -> str:
        up = v.strip().upper()
        up = "WARN" if up == "WARNING" else up
        if up not in LOGGER_LEVELS:
            raise ValueError(f'invalid level "{v}"; valid choices: {", ".join(LOGGER_LEVELS)}')
        return up

    @field_validator("type")
    @classmethod
    def _type(cls, v: str | None) -> str | None:
        if v is None:
            return None
        up = v.strip().upper()
        if up not in LOGGER_TYPES:
            raise ValueError(f'invalid type "{v}"; valid choices: {", ".join(LOGGER_TYPES)}')
        return up

    @field_validator("topic_regexp", "key_regexp", "value_regexp")
    @classmethod
    def _regexp(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f'invalid regular expression "{v}": {exc}') from None
        return v


class ClientConfig(Section):
    properties: Properties = Field(default_factory=dict)
    loggers: list[LoggerRule] = Field(default_factory=list)


class KafkaDefaults(Section):
    topic: TopicDefaults = Field(default_factory=TopicDefaults)
    topics: dict[str, TopicConfig] = Field(default_factory=dict)
    """The docs' spelling ``defaults.topics.<kind>``; ``queue.kafka.topics`` wins per key."""
    consumer: PropertiesSection = Field(default_factory=PropertiesSection)
    producer: PropertiesSection = Field(default_factory=PropertiesSection)
    stream: PropertiesSection = Field(default_factory=PropertiesSection)
    topic_prefix: str = DEFAULT_PREFIX
    consumer_prefix: str = DEFAULT_PREFIX


class MessageProtection(Section):
    """Payloads above ``soft-limit`` bytes go to storage; above ``hard-limit`` are refused."""

    soft_limit: OptInt = None
    hard_limit: OptInt = None

    def problems(self) -> list[Issue]:
        out: list[Issue] = []
        for name in ("soft_limit", "hard_limit"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                out.append(((name.replace("_", "-"),), f"must be a positive number of bytes, got {v}"))
        if self.soft_limit and self.hard_limit and self.hard_limit < self.soft_limit:
            out.append(
                (
                    ("hard-limit",),
                    f"hard-limit ({self.hard_limit}) must be at least soft-limit ({self.soft_limit})",
                )
            )
        return out


class KafkaQueueConfig(Section):
    client: ClientConfig = Field(default_factory=ClientConfig)
    defaults: KafkaDefaults = Field(default_factory=KafkaDefaults)
    topics: dict[str, TopicConfig] = Field(default_factory=dict)
    stream: PropertiesSection = Field(default_factory=PropertiesSection)
    message_protection: MessageProtection = Field(default_factory=MessageProtection)

    # --- effective values ---------------------------------------------------------

    def topic_config(self, kind: Kind) -> TopicConfig:
        """The merged ``topics.<kind>`` (``queue.kafka.topics`` over ``defaults.topics``)."""
        found: list[TopicConfig] = []
        for table in (self.defaults.topics, self.topics):
            for key, cfg in table.items():
                try:
                    if parse_kind(key) is kind:
                        found.append(cfg)
                except ValueError:
                    continue
        merged = TopicConfig()
        for cfg in found:
            merged = merged.model_copy(
                update={
                    "name": cfg.name or merged.name,
                    "partitions": cfg.partitions or merged.partitions,
                    "replication_factor": cfg.replication_factor or merged.replication_factor,
                    "properties": {**merged.properties, **cfg.properties},
                }
            )
        return merged

    def naming(self) -> Naming:
        overrides = {k: n for k in Kind if (n := self.topic_config(k).name)}
        return Naming(self.defaults.topic_prefix, self.defaults.consumer_prefix, overrides)

    def topic_properties(self, kind: Kind) -> dict[str, str]:
        """Topic configs: the kind's retention/cleanup < defaults.topic < topics.<kind>."""
        layers: list[Mapping[str, PropValue]] = [
            SPECS[kind].properties,
            self.defaults.topic.properties,
            self.topic_config(kind).properties,
        ]
        return {k: plain(v) for layer in layers for k, v in layer.items()}

    def partitions(self, kind: Kind) -> int:
        like = PARTITIONS_LIKE.get(kind)
        if like is not None:  # a changelog / repartition topic follows its source by default
            return self.topic_config(kind).partitions or self.partitions(like)
        return self.topic_config(kind).partitions or self.defaults.topic.partitions

    def replication_factor(self, kind: Kind) -> int:
        return self.topic_config(kind).replication_factor or self.defaults.topic.replication_factor

    def client_properties(self) -> dict[str, str]:
        """librdkafka properties for every client (the admin client uses only these)."""
        return to_librdkafka(self.client.properties)

    def producer_properties(self) -> dict[str, str]:
        return {
            **to_librdkafka(DEFAULT_PRODUCER_PROPERTIES),
            **to_librdkafka(self.defaults.producer.properties),
            **self.client_properties(),
        }

    def consumer_properties(self) -> dict[str, str]:
        return {
            **to_librdkafka(DEFAULT_CONSUMER_PROPERTIES),
            **to_librdkafka(self.defaults.consumer.properties),
            **self.client_properties(),
        }

    def stream_properties(self) -> dict[str, str]:
        """Kafka-Streams-style keys (``processing.guarantee``, ``state.dir``, ...), raw."""
        layers: list[Mapping[str, PropValue]] = [
            DEFAULT_STREAM_PROPERTIES,
            {"replication.factor": self.defaults.topic.replication_factor},
            self.defaults.stream.properties,
            self.stream.properties,
        ]
        return {k: plain(v) for layer in layers for k, v in layer.items()}

    def state_dir(self, data_dir: str) -> Path:
        """``stream.properties.state.dir``; default ``<data-dir>/kafka-streams``."""
        given = self.stream_properties().get("state.dir")
        return Path(given) if given else Path(data_dir) / "kafka-streams"

    def problems(self) -> list[Issue]:
        out: list[Issue] = []
        out += _translate(self.client.properties, ("client", "properties"))
        for name in ("consumer", "producer"):
            section: PropertiesSection = getattr(self.defaults, name)
            out += _translate(section.properties, ("defaults", name, "properties"))
        out += _translate(self.defaults.stream.properties, ("defaults", "stream", "properties"), True)
        out += _translate(self.stream.properties, ("stream", "properties"), True)
        for where, table in ((("defaults", "topics"), self.defaults.topics), (("topics",), self.topics)):
            for key, cfg in table.items():
                try:
                    parse_kind(key)
                except ValueError as exc:
                    out.append(((*where, key), str(exc)))
                if cfg.partitions is not None and cfg.partitions < 1:
                    out.append(((*where, key, "partitions"), f"must be at least 1, got {cfg.partitions}"))
                if cfg.replication_factor is not None and cfg.replication_factor < 1:
                    out.append(
                        (
                            (*where, key, "replication-factor"),
                            f"must be at least 1, got {cfg.replication_factor}",
                        )
                    )
        if self.defaults.topic.partitions < 1:
            out.append((("defaults", "topic", "partitions"), "must be at least 1"))
        if self.defaults.topic.replication_factor < 1:
            out.append((("defaults", "topic", "replication-factor"), "must be at least 1"))
        # A changelog's state of partition p is written to its partition p.
        state, source = Kind.REGROUP_STATE, PARTITIONS_LIKE[Kind.REGROUP_STATE]
        if self.partitions(state) != self.partitions(source):
            out.append((("topics", state.value, "partitions"),
                        f"must equal the partitions of {source.value} ({self.partitions(source)}), "
                        f"got {self.partitions(state)}"))
        out += [(("message-protection", *p), m) for p, m in self.message_protection.problems()]
        return out


class EmbeddedQueueConfig(Section):
    """The single-machine backend: SQLite in the data dir."""

    path: str = ""
    """The SQLite file; default ``<data-dir>/queue.db``."""
    lease: DurationNs = 30 * _SECOND
    """How long a claimed, uncommitted batch stays invisible before another consumer takes it."""
    cleaner_interval: DurationNs = 60 * _SECOND
    """How often retention and compaction run (0 disables the background cleaner)."""


class QueueConfig(Section):
    """``[queue]``."""

    type: str = "embedded"
    embedded: EmbeddedQueueConfig = Field(default_factory=EmbeddedQueueConfig)
    kafka: KafkaQueueConfig = Field(default_factory=KafkaQueueConfig)

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        low = v.strip().lower()
        if low not in QUEUE_TYPES:
            raise ValueError(f'invalid type "{v}"; valid choices: {", ".join(QUEUE_TYPES)}')
        return low

    def sqlite_path(self, data_dir: str) -> Path:
        return Path(self.embedded.path) if self.embedded.path else Path(data_dir) / "queue.db"

    def problems(self) -> list[Issue]:
        out: list[Issue] = [(("kafka", *p), m) for p, m in self.kafka.problems()]
        bootstrap = self.kafka.client.properties.get("bootstrap.servers")
        if self.type == "kafka" and not bootstrap:
            out.append(
                (
                    ("kafka", "client", "properties"),
                    'queue type "kafka" needs bootstrap.servers in queue.kafka.client.properties',
                )
            )
        if self.embedded.lease <= 0:
            out.append((("embedded", "lease"), "must be positive"))
        return out

