"""``queue.kafka.client.loggers``: log matching records produced, consumed, committed, acked.

Rules are tried in order; the first rule whose ``type`` and regexps match decides the level.
Regexps must match the **whole** string (``re.fullmatch``), as Java's ``String.matches``.
Line formats (Kestra's)::

    [PRODUCER > kapacity_events] key = {"a":1}
    [CONSUMER > kapacity_events[3]@42 2023-01-01T10:00:00Z] key = {"a":1}
    [CONSUMER_COMMIT> kapacity_events[5]@42]
    [PRODUCER_ACK> kapacity_events[2]@99 2023-01-01T10:00:00.123Z]

Costly (a regexp per record): the Kafka backend installs this interceptor only when at least
one rule is configured; with no rule, no hook runs at all.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from kapacity.config.queue import LoggerRule

__all__ = ["LEVELS", "LOGGER_NAME", "TRACE", "KafkaLoggers", "instant"]

LOGGER_NAME: Final = "kapacity.queue.kafka.loggers"
TRACE: Final = 5
LEVELS: Final = {
    "ERROR": logging.ERROR,
    "WARN": logging.WARNING,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
    "TRACE": TRACE,
}
if logging.getLevelName(TRACE) != "TRACE":
    logging.addLevelName(TRACE, "TRACE")


def instant(ms: int) -> str:
    """Java's ``Instant.toString()`` for epoch ms: ``2023-01-01T10:00:00Z`` / ``...00.123Z``."""
    dt = datetime.fromtimestamp(ms // 1000, UTC)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    frac = ms % 1000
    return f"{text}.{frac:03d}Z" if frac else f"{text}Z"


@dataclass(frozen=True)
class _Rule:
    level: int
    type: str | None
    topic: re.Pattern[str] | None
    key: re.Pattern[str] | None
    value: re.Pattern[str] | None

    def matches(self, type_: str, topic: str, key: str | None, value: str | None) -> bool:
        if self.type is not None and self.type != type_:
            return False
        if self.topic is not None and not self.topic.fullmatch(topic):
            return False
        # Commits and acks carry no key/value: a key/value rule never selects them.
        if self.key is not None and (key is None or not self.key.fullmatch(key)):
            return False
        return self.value is None or (value is not None and self.value.fullmatch(value) is not None)


def _compile(p: str | None) -> re.Pattern[str] | None:
    return re.compile(p, re.DOTALL) if p is not None else None


class KafkaLoggers:
    """The interceptor: one method per hook; each logs at the first matching rule's level."""

    def __init__(self, rules: Sequence[LoggerRule], logger: logging.Logger | None = None) -> None:
        self._rules = [
            _Rule(LEVELS[r.level], r.type, _compile(r.topic_regexp), _compile(r.key_regexp), _compile(r.value_regexp))
            for r in rules
        ]
        self._log = logger or logging.getLogger(LOGGER_NAME)

    def _level(self, type_: str, topic: str, key: str | None, value: str | None) -> int | None:
        for rule in self._rules:
            if rule.matches(type_, topic, key, value):
                return rule.level if self._log.isEnabledFor(rule.level) else None
        return None

    @staticmethod
    def _text(raw: bytes | None) -> str:
        return "null" if raw is None else raw.decode("utf-8", "replace")

    def produced(self, topic: str, key: str, value: bytes | None) -> None:
        text = self._text(value)
        level = self._level("PRODUCER", topic, key, text)
        if level is not None:
            self._log.log(level, "[PRODUCER > %s] %s = %s", topic, key, text)

    def consumed(
        self, topic: str, partition: int, offset: int, timestamp_ms: int, key: str, value: bytes | None
    ) -> None:
        text = self._text(value)
        level = self._level("CONSUMER", topic, key, text)
        if level is not None:
            self._log.log(
                level, "[CONSUMER > %s[%d]@%d %s] %s = %s",
                topic, partition, offset, instant(timestamp_ms), key, text,
            )

    def committed(self, topic: str, partition: int, offset: int) -> None:
        level = self._level("CONSUMER_COMMIT", topic, None, None)
        if level is not None:
            self._log.log(level, "[CONSUMER_COMMIT> %s[%d]@%d]", topic, partition, offset)

    def acked(self, topic: str, partition: int, offset: int, timestamp_ms: int) -> None:
        level = self._level("PRODUCER_ACK", topic, None, None)
        if level is not None:
            self._log.log(
                level, "[PRODUCER_ACK> %s[%d]@%d %s]", topic, partition, offset, instant(timestamp_ms)
            )
