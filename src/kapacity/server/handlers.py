"""Creates alert handlers by kind (kafka, log, post, tcp, exec) from their options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kapacity.handlers.base import Handler
from kapacity.handlers.errors import HandlerOptionError
from kapacity.handlers.exec import ExecHandler, parse_exec_options
from kapacity.handlers.log import LogHandler, parse_log_options
from kapacity.handlers.post import PostHandler, parse_post_options
from kapacity.handlers.tcp import TCPHandler, parse_tcp_options

if TYPE_CHECKING:
    from kapacity.config.model import Config

KINDS = ("kafka", "log", "post", "tcp", "exec")


class HandlerRegistry:
    """The engine's :class:`~kapacity.server.contracts.HandlerFactory`.

    Kafka handlers share one producer per cluster (``ProducerPool``); the others are
    independent. The Kafka modules are imported on first use so that a server without
    ``[[kafka]]`` does not load librdkafka needlessly.
    """

    kinds: tuple[str, ...] = KINDS

    def __init__(self, config: Config) -> None:
        self.config = config
        self._pool: Any = None

    def _kafka_pool(self) -> Any:
        if self._pool is None:
            from kapacity.handlers.kafka import ProducerPool

            self._pool = ProducerPool()
        return self._pool

    def validate(self, kind: str, options: Mapping[str, Any]) -> None:
        if kind == "kafka":
            from kapacity.handlers.kafka import parse_kafka_options

            parse_kafka_options(options, self.config)
        elif kind == "log":
            parse_log_options(options)
        elif kind == "post":
            parse_post_options(options)
        elif kind == "tcp":
            parse_tcp_options(options)
        elif kind == "exec":
            parse_exec_options(options)
        else:
            raise HandlerOptionError(kind, "", f"unknown handler kind {kind!r}; valid kinds: {', '.join(KINDS)}")

    def create(self, kind: str, options: Mapping[str, Any]) -> Handler:
        if kind == "kafka":
            from kapacity.handlers.kafka import KafkaHandler

            return KafkaHandler.create(options, self.config, self._kafka_pool())
        if kind == "log":
            return LogHandler(parse_log_options(options))
        if kind == "post":
            return PostHandler(parse_post_options(options))
        if kind == "tcp":
            return TCPHandler(parse_tcp_options(options))
        if kind == "exec":
            return ExecHandler(parse_exec_options(options))
        raise HandlerOptionError(kind, "", f"unknown handler kind {kind!r}; valid kinds: {', '.join(KINDS)}")

    def stats(self) -> dict[str, dict[str, Any]]:
        if self._pool is None:
            return {}
        kafka = {
            f"{cluster}:{topic}": {"tags": {"cluster": cluster, "topic": topic}, "values": s.as_dict()}
            for (cluster, topic), s in self._pool.stats().items()
        }
        return {"kafka": kafka}

    def close(self, timeout: float) -> None:
        if self._pool is not None:
            self._pool.close(timeout)
