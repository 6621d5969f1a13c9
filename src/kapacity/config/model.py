"""The root configuration model and its small sections.

Adding a section (e.g. ``[queue]``): write a :class:`~kapacity.config.base.Section`
subclass in its own module, add one field to :class:`Config`. Unknown keys, types,
located errors and semantic :meth:`~kapacity.config.base.Section.problems` then work
without further changes (the loader walks every ``Section`` and ``list[Section]`` field).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from kapacity.config.base import Issue, Section
from kapacity.config.errors import FieldPath, UnknownClusterError
from kapacity.config.kafka import KafkaClusterConfig
from kapacity.config.queue import QueueConfig

__all__ = ["AlertConfig", "Config", "ConfigSource", "HttpConfig", "LoggingConfig"]

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARN", "ERROR")
LOG_FORMATS: Final = ("text", "json")


class HttpConfig(Section):
    """``[http]``: the API listener."""

    bind_address: str = ":9092"

    @field_validator("bind_address")
    @classmethod
    def _bind_address(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not port.isdigit() or int(port) > 65535:
            raise ValueError(
                f'invalid bind-address "{v}": expected "host:port" or ":port" (port 0-65535)'
            )
        del host
        return v


class AlertConfig(Section):
    """``[alert]``: alert topics."""

    persist_topics: bool = True


class LoggingConfig(Section):
    """``[logging]``: level and output format."""

    level: str = "INFO"
    format: str = "text"

    @field_validator("level")
    @classmethod
    def _level(cls, v: str) -> str:
        up = v.strip().upper()
        if up == "WARNING":
            up = "WARN"
        if up not in LOG_LEVELS:
            raise ValueError(f'invalid level "{v}"; valid choices: {", ".join(LOG_LEVELS)}')
        return up

    @field_validator("format")
    @classmethod
    def _format(cls, v: str) -> str:
        low = v.strip().lower()
        if low not in LOG_FORMATS:
            raise ValueError(f'invalid format "{v}"; valid choices: {", ".join(LOG_FORMATS)}')
        return low


@dataclass(frozen=True)
class ConfigSource:
    """Where a loaded config came from: the file name and each key's 1-based (line, column)."""

    name: str
    positions: dict[FieldPath, tuple[int, int]] = field(default_factory=dict)
    document: object = field(default=None, repr=False, compare=False)
    """The parsed document (for labels like ``kafka[1] (id "infra")`` in messages)."""

    def locate(self, path: FieldPath) -> tuple[int, int] | None:
        """The position of ``path`` or of its nearest located ancestor."""
        for end in range(len(path), -1, -1):
            pos = self.positions.get(path[:end])
            if pos is not None:
                return pos
        return None


class Config(BaseModel):
    """The whole configuration file (kapacitor.conf-style keys)."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        hide_input_in_errors=True,
    )

    hostname: str = "localhost"
    data_dir: str = "./kapacity-data"
    http: HttpConfig = Field(default_factory=HttpConfig)
    kafka: list[KafkaClusterConfig] = Field(default_factory=list)
    alert: AlertConfig = Field(default_factory=AlertConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    queue: QueueConfig = Field(default_factory=QueueConfig)

    _source: ConfigSource | None = PrivateAttr(default=None)

    @property
    def source(self) -> ConfigSource | None:
        """The file this config was loaded from (``None`` if built in code)."""
        return self._source

    def problems(self) -> list[Issue]:
        """Semantic problems of every section, plus cross-section rules (duplicate ids)."""
        out: list[Issue] = []
        for path, section in self._sections():
            out.extend((path + sub, msg) for sub, msg in section.problems())
        seen: dict[str, int] = {}
        for i, cluster in enumerate(self.kafka):
            if not cluster.id:
                continue
            if cluster.id in seen:
                out.append(
                    (
                        ("kafka", i, "id"),
                        f'duplicate id "{cluster.id}" for kafka configs '
                        f"(first used by kafka[{seen[cluster.id]}])",
                    )
                )
            else:
                seen[cluster.id] = i
        return out

    def _sections(self) -> Iterator[tuple[FieldPath, Section]]:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, Section):
                yield (name,), value
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, Section):
                        yield (name, i), item

    def enabled_kafka_clusters(self) -> list[KafkaClusterConfig]:
        return [c for c in self.kafka if c.enabled]

    def kafka_cluster(self, cluster_id: str | None = None) -> KafkaClusterConfig:
        """The enabled ``[[kafka]]`` cluster a handler names.

        Exact ``id`` match; ``None``/``""`` picks the only enabled cluster (Kapacitor has no
        default cluster, but its docs' examples omit ``cluster``). Raises
        :class:`UnknownClusterError` naming the configured clusters otherwise.
        """
        enabled = self.enabled_kafka_clusters()
        ids = ", ".join(c.id for c in enabled) or "(none enabled)"
        if not cluster_id:
            if len(enabled) == 1:
                return enabled[0]
            if not enabled:
                raise UnknownClusterError(
                    'unknown cluster "": no [[kafka]] cluster is enabled; '
                    "add one with enabled = true"
                )
            raise UnknownClusterError(
                f'unknown cluster "": several kafka clusters are enabled ({ids}); '
                "set cluster to one of them"
            )
        for c in self.kafka:
            if c.id == cluster_id:
                if not c.enabled:
                    raise UnknownClusterError(
                        f'kafka cluster "{cluster_id}" is disabled; set enabled = true '
                        f"in its [[kafka]] section (enabled clusters: {ids})"
                    )
                return c
        raise UnknownClusterError(f'unknown cluster "{cluster_id}"; configured clusters: {ids}')
