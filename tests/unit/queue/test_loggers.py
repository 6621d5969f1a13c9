"""Kestra-style record loggers: first matching rule wins, full-string regexps, exact lines."""

from __future__ import annotations

import logging

import pytest

from kapacity.config.queue import LoggerRule
from kapacity.queue.loggers import LOGGER_NAME, TRACE, KafkaLoggers, instant


def rules(*raw: dict[str, str]) -> KafkaLoggers:
    return KafkaLoggers([LoggerRule.model_validate(r, by_alias=True) for r in raw])


@pytest.fixture
def caplog_all(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(TRACE, logger=LOGGER_NAME)
    return caplog


def test_line_formats(caplog_all: pytest.LogCaptureFixture) -> None:
    log = rules({"level": "INFO"})
    log.produced("kapacity_events", "cpu", b'{"a":1}')
    log.consumed("kapacity_events", 3, 42, 1672567200000, "cpu", b'{"a":1}')
    log.committed("kapacity_events", 5, 42)
    log.acked("kapacity_events", 2, 99, 1672567200123)
    log.produced("kapacity_tasks", "gone", None)
    assert caplog_all.messages == [
        '[PRODUCER > kapacity_events] cpu = {"a":1}',
        '[CONSUMER > kapacity_events[3]@42 2023-01-01T10:00:00Z] cpu = {"a":1}',
        "[CONSUMER_COMMIT> kapacity_events[5]@42]",
        "[PRODUCER_ACK> kapacity_events[2]@99 2023-01-01T10:00:00.123Z]",
        "[PRODUCER > kapacity_tasks] gone = null",
    ]
    assert {r.levelno for r in caplog_all.records} == {logging.INFO}
    assert {r.name for r in caplog_all.records} == {LOGGER_NAME}


def test_regexps_match_the_whole_string_and_the_first_rule_wins(caplog_all: pytest.LogCaptureFixture) -> None:
    log = rules(
        {"level": "WARN", "type": "PRODUCER", "topic-regexp": "kapacity_(events|points)", "key-regexp": ".*parallel.*"},
        {"level": "TRACE", "type": "PRODUCER", "value-regexp": ".*parallel.*"},
    )
    log.produced("kapacity_events", "a-parallel-b", b"{}")  # rule 1
    log.produced("kapacity_events_x", "parallel", b"{}")  # topic is not a full match: rule 2 on value? no
    log.produced("kapacity_tasks", "k", b'{"parallel":1}')  # rule 2
    log.consumed("kapacity_events", 0, 1, 0, "parallel", b"{}")  # type CONSUMER: no rule
    log.committed("kapacity_events", 0, 1)  # no key: the key rule cannot select it
    assert [(r.levelno, r.getMessage()) for r in caplog_all.records] == [
        (logging.WARNING, "[PRODUCER > kapacity_events] a-parallel-b = {}"),
        (TRACE, '[PRODUCER > kapacity_tasks] k = {"parallel":1}'),
    ]


def test_nothing_is_logged_when_the_logger_is_above_the_rule_level(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    log = rules({"level": "DEBUG"})
    log.produced("t", "k", b"{}")
    assert caplog.records == []


def test_instant_is_javas_format() -> None:
    assert instant(0) == "1970-01-01T00:00:00Z"
    assert instant(1672567200005) == "2023-01-01T10:00:00.005Z"
